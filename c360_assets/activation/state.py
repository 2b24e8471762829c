"""What destinations acknowledged, and the logs of every sync, as Delta under
`<lake>/activation/`:

    <lake>/activation/<sync>/state      one row per person with a record in the
                                        destination: its match key, the destination's
                                        record id and, per field, the value the
                                        destination acknowledged (`v:<field>`, as text)
    <lake>/activation/<sync>/_journal   the running (or a dead) run's batches
    <lake>/activation/runs              one row per run (append-only)
    <lake>/activation/changelog         per field: before, after, status, error
                                        (append-only; a create is one row, field `*`)
    <lake>/activation/echoes            what syncs wrote into a source's records (read
                                        by silver to recognise echoes)

Per batch, the engine writes a journal file (Parquet, fsync'd, renamed into place):
`intent` before creates are sent, `ack` / `reject` with the outcome. The journal is
folded into `state` (one overwrite), `changelog` and `echoes` (one append each) when the
run ends, or by the next run when it died: acknowledged work is never sent again, and
creates whose outcome was never heard (an `intent` without `ack`) are looked up in the
destination before anything is resent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl

from c360_assets.lib import delta, layout

UTC = pl.Datetime("us", "UTC")
STATE_BASE = pl.Schema({"_person": pl.String(), "_key_field": pl.String(), "_key": pl.String(),
                        "_dest_id": pl.String(), "_merged_into": pl.String(),
                        "_acked_at": UTC, "_run_id": pl.String()})
CHANGELOG_SCHEMA = pl.Schema({
    "run_id": pl.String(), "sync": pl.String(), "at": UTC, "person_id": pl.String(),
    "key_field": pl.String(), "key": pl.String(), "dest_id": pl.String(), "op": pl.String(),
    "field": pl.String(), "before": pl.String(), "after": pl.String(), "status": pl.String(),
    "error": pl.String()})
ECHO_SCHEMA = pl.Schema({
    "source_system": pl.String(), "record_id": pl.String(), "field": pl.String(),
    "attribute": pl.String(), "value": pl.String(), "field_time": UTC, "sent_at": UTC,
    "until": UTC, "sync": pl.String()})
RUNS_SCHEMA = pl.Schema({
    "run_id": pl.String(), "sync": pl.String(), "started_at": UTC, "finished_at": UTC,
    "status": pl.String(), "dry_run": pl.Boolean(), "mode": pl.String(),
    "gold_version": pl.Int64(), "model_rows": pl.Int64(), "planned_creates": pl.Int64(),
    "planned_updates": pl.Int64(), "planned_deletes": pl.Int64(), "planned_flags": pl.Int64(),
    "acknowledged": pl.Int64(), "rejected": pl.Int64(), "rejected_model": pl.Int64(),
    "skipped_consent": pl.Int64(), "skipped_guard": pl.Int64(), "skipped_filter": pl.Int64(),
    "not_found": pl.Int64(), "recovered": pl.Int64(), "rate_limited_s": pl.Float64(),
    "requests": pl.Int64(), "message": pl.String()})


def root(lake: Path) -> Path:
    return layout.activation(lake)


def sync_dir(lake: Path, sync: str) -> Path:
    return root(lake) / sync


def state_table(lake: Path, sync: str) -> Path:
    return sync_dir(lake, sync) / "state"


def journal_dir(lake: Path, sync: str) -> Path:
    return sync_dir(lake, sync) / "_journal"


def rejected_table(lake: Path, sync: str) -> Path:
    """Persons whose last operation the destination refused as it was (`_digest`: the
    content refused): held back until their content changes."""
    return sync_dir(lake, sync) / "rejected"


REJECTED_SCHEMA = pl.Schema({"_person": pl.String(), "_digest": pl.String(),
                             "error": pl.String(), "at": UTC})


def read_rejected(lake: Path, sync: str) -> pl.DataFrame:
    path = rejected_table(lake, sync)
    return delta.read_table(path) if delta.table_exists(path) else pl.DataFrame(
        schema=REJECTED_SCHEMA)


def log_table(lake: Path, name: str) -> Path:
    """`runs`, `changelog` or `echoes`."""
    return root(lake) / name


def value_column(field: str) -> str:
    return f"v:{field}"


def read_state(lake: Path, sync: str, fields: list[str]) -> pl.DataFrame:
    """The acknowledged state, with a `v:<field>` column for every field of `fields`
    (null where c360 never had one acknowledged)."""
    path = state_table(lake, sync)
    frame = delta.read_table(path) if delta.table_exists(path) else pl.DataFrame(schema=STATE_BASE)
    missing = [pl.lit(None, pl.String).alias(value_column(f)) for f in fields
               if value_column(f) not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def write_state(lake: Path, sync: str, state: pl.DataFrame) -> None:
    delta.write_rows(state_table(lake, sync), state, append=False, partition_col=None)


def append(lake: Path, name: str, rows: pl.DataFrame, schema: pl.Schema) -> None:
    if rows.height:
        delta.write_rows(log_table(lake, name), rows.select(list(schema)).cast(dict(schema)),  # type: ignore[arg-type]
                         append=True, partition_col=None)


class Journal:
    """One run's batch journal: numbered Parquet files, each complete or absent."""

    def __init__(self, lake: Path, sync: str, run_id: str):
        self.folder = journal_dir(lake, sync)
        self.run_id = run_id
        self.seq = 0

    def write(self, kind: str, rows: pl.DataFrame) -> None:
        """`kind`: intent | ack | reject. `rows`: _op, _person, _prev_person, _key_field,
        _key, _dest_id, (ack) `s:<f>` sent flags and `v:<f>` values, `_before:<f>`,
        `_ft:<f>`; (reject) `_error`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.seq += 1
        name = f"{self.run_id}-{self.seq:07d}-{kind}.parquet"
        tmp = self.folder / f".{name}.tmp"
        rows.with_columns(pl.lit(self.seq, pl.Int64).alias("_seq"),
                          pl.lit(kind).alias("_kind")).write_parquet(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.folder / name)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# `<run id>-<seq>-<kind>.parquet`; run ids start with their UTC start time, so names
# sort in the order the batches were written.
_JOURNAL_FILE = re.compile(r"^(?P<run>\d{8}T\d{6}Z_[0-9a-f]{8})-(?P<seq>\d{7})-"
                           r"(?P<kind>intent|ack|reject)\.parquet$")


def new_run_id(now: dt.datetime) -> str:
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}_{os.urandom(4).hex()}"


def journal_files(lake: Path, sync: str) -> list[Path]:
    folder = journal_dir(lake, sync)
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if _JOURNAL_FILE.match(p.name)]
    return sorted(files, key=lambda p: p.name)


def read_journal(lake: Path, sync: str) -> pl.DataFrame:
    files = journal_files(lake, sync)
    if not files:
        return pl.DataFrame()
    frames = []
    for order, path in enumerate(files):
        frame = pl.read_parquet(path)
        run = _JOURNAL_FILE.match(path.name)["run"]  # type: ignore[index]
        frames.append(frame.with_columns(pl.lit(order, pl.Int64).alias("_order"),
                                         pl.lit(run).alias("_journal_run")))
    return pl.concat(frames, how="diagonal_relaxed")


def clear_journal(lake: Path, sync: str, keep: str | None = None) -> None:
    """Delete the journal files (but those of run `keep`)."""
    for path in journal_files(lake, sync):
        if keep is None or not path.name.startswith(keep + "-"):
            path.unlink(missing_ok=True)


def _sent_json(fields: list[str]) -> pl.Expr:
    """The sent fields of an ack row as one JSON object (a create's changelog row;
    fields not sent are null)."""
    if not fields:
        return pl.lit("{}")
    return pl.struct([pl.when(pl.col(f"s:{f}").fill_null(False)).then(pl.col(value_column(f)))
                      .alias(f) for f in fields]).struct.json_encode()


def fold(lake: Path, sync: str, fields: list[str], *, echo_source: str | None,
         attributes: dict[str, str], echo_window_h: float = 72.0,
         now: dt.datetime | None = None, state: pl.DataFrame | None = None,
         residual: Journal | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the journal to the state and logs; returns (the new state, creates whose
    outcome is unknown: `intent` rows without an `ack` or `reject` - to look up).
    `state`: the state as read before (saves reading it again). `residual`: where the
    unresolved intents are written back (kept until an ack resolves them).
    `attributes`: destination field (`key:<field>` for a match key) -> the canonical
    attribute it carries (echoes)."""
    now = now or dt.datetime.now(dt.UTC)
    journal = read_journal(lake, sync)
    if journal.is_empty():
        return (state if state is not None else read_state(lake, sync, fields),
                pl.DataFrame(schema={"_person": pl.String(), "_key_field": pl.String(),
                                     "_key": pl.String()}))
    state = state if state is not None else read_state(lake, sync, fields)
    for f in fields:
        for prefix, dtype in (("s:", pl.Boolean), ("v:", pl.String), ("_before:", pl.String),
                              ("_ft:", UTC)):
            if prefix + f not in journal.columns:
                journal = journal.with_columns(pl.lit(None, dtype).alias(prefix + f))
    for name, dtype in (("_prev_person", pl.String), ("_dest_id", pl.String),
                        ("_error", pl.String), ("_merged_into", pl.String),
                        ("_digest", pl.String), ("_permanent", pl.Boolean),
                        ("_key_ft", UTC)):
        if name not in journal.columns:
            journal = journal.with_columns(pl.lit(None, dtype).alias(name))
    acks = journal.filter(pl.col("_kind") == "ack").sort("_order")
    heard = journal.filter(pl.col("_kind").is_in(["ack", "reject"])).select(
        "_person", "_key", "_journal_run")
    uncertain = (journal.filter(pl.col("_kind") == "intent")
                 .join(heard, on=["_person", "_key", "_journal_run"], how="anti")
                 .select("_person", "_key_field", "_key").unique(maintain_order=True))

    # State: each ack replaces its person's row (a repoint replaces the loser's), its sent
    # fields overwrite the acknowledged values; a delete removes the row. A run
    # acknowledges a person once; where a dead run and this one both did, the later wins.
    state = _apply(state, acks.unique("_person", keep="last", maintain_order=True),
                   fields, now)

    # Changelog: creates as one row, updates per sent field, deletes and flags as one row.
    log_rows = []
    creates = acks.filter(pl.col("_op") == "create")
    if creates.height:
        log_rows.append(creates.select(
            "_journal_run", "_person", "_key_field", "_key", "_dest_id", "_op",
            pl.lit("*").alias("field"), pl.lit(None, pl.String).alias("before"),
            _sent_json(fields).alias("after"), pl.lit("acknowledged").alias("status"),
            pl.lit(None, pl.String).alias("error")))
    updates = acks.filter(pl.col("_op").is_in(["update", "repoint"]))
    for f in fields:
        part = updates.filter(pl.col(f"s:{f}").fill_null(False))
        if part.height:
            log_rows.append(part.select(
                "_journal_run", "_person", "_key_field", "_key", "_dest_id", "_op",
                pl.lit(f).alias("field"), pl.col(f"_before:{f}").alias("before"),
                pl.col(value_column(f)).alias("after"), pl.lit("acknowledged").alias("status"),
                pl.lit(None, pl.String).alias("error")))
    others = acks.filter(pl.col("_op").is_in(["delete", "flag", "not_found"]))
    if others.height:
        log_rows.append(others.select(
            "_journal_run", "_person", "_key_field", "_key", "_dest_id", "_op",
            pl.lit(None, pl.String).alias("field"), pl.lit(None, pl.String).alias("before"),
            pl.col("_merged_into").alias("after"),
            pl.when(pl.col("_op") == "not_found").then(pl.lit("not_found"))
            .otherwise(pl.lit("acknowledged")).alias("status"),
            pl.lit(None, pl.String).alias("error")))
    rejects = journal.filter(pl.col("_kind") == "reject")
    if rejects.height:
        log_rows.append(rejects.select(
            "_journal_run", "_person", "_key_field", "_key", "_dest_id", "_op",
            pl.lit(None, pl.String).alias("field"), pl.lit(None, pl.String).alias("before"),
            pl.lit(None, pl.String).alias("after"), pl.lit("rejected").alias("status"),
            pl.col("_error").alias("error")))
    if log_rows:
        log = pl.concat(log_rows, how="vertical_relaxed").select(
            pl.col("_journal_run").alias("run_id"), pl.lit(sync).alias("sync"),
            pl.lit(now).cast(UTC).alias("at"), pl.col("_person").alias("person_id"),
            pl.col("_key_field").alias("key_field"), pl.col("_key").alias("key"),
            pl.col("_dest_id").alias("dest_id"), pl.col("_op").alias("op"),
            "field", "before", "after", "status", "error")
        append(lake, "changelog", log, CHANGELOG_SCHEMA)

    if echo_source:
        echoes = []
        written = acks.filter(pl.col("_op").is_in(["create", "update", "repoint"])
                              & pl.col("_dest_id").is_not_null())
        for f, attribute in attributes.items():
            if f.startswith("key:"):
                continue
            part = written.filter(pl.col(f"s:{f}").fill_null(False)
                                  & pl.col(value_column(f)).is_not_null())
            if part.height:
                echoes.append(part.select(
                    pl.lit(echo_source).alias("source_system"),
                    pl.col("_dest_id").alias("record_id"), pl.lit(f).alias("field"),
                    pl.lit(attribute).alias("attribute"),
                    pl.col(value_column(f)).alias("value"), pl.col(f"_ft:{f}").alias("field_time"),
                    pl.lit(now).cast(UTC).alias("sent_at"),
                    pl.lit(now + dt.timedelta(hours=echo_window_h)).cast(UTC).alias("until"),
                    pl.lit(sync).alias("sync")))
        keys = {f.removeprefix("key:"): a for f, a in attributes.items() if f.startswith("key:")}
        for key_field, attribute in keys.items():  # the match key is written too
            part = written.filter(pl.col("_key_field") == key_field)
            if part.height:
                echoes.append(part.select(
                    pl.lit(echo_source).alias("source_system"),
                    pl.col("_dest_id").alias("record_id"), pl.lit(key_field).alias("field"),
                    pl.lit(attribute).alias("attribute"), pl.col("_key").alias("value"),
                    pl.col("_key_ft").alias("field_time"), pl.lit(now).cast(UTC).alias("sent_at"),
                    pl.lit(now + dt.timedelta(hours=echo_window_h)).cast(UTC).alias("until"),
                    pl.lit(sync).alias("sync")))
        if echoes:
            append(lake, "echoes", pl.concat(echoes), ECHO_SCHEMA)

    # Refused as they were: held back until they change; acknowledged: forgotten.
    held = read_rejected(lake, sync)
    refused = rejects.filter(pl.col("_permanent").fill_null(False)
                             & pl.col("_digest").is_not_null())
    settled = pl.concat([acks.select("_person"), refused.select("_person"),
                         acks.select(pl.col("_prev_person").alias("_person")).drop_nulls()])
    if held.height or refused.height:
        held = pl.concat([held.join(settled, on="_person", how="anti"), refused.select(
            "_person", "_digest", pl.col("_error").alias("error"),
            pl.lit(now).cast(UTC).alias("at")).unique("_person", keep="last")],
            how="vertical_relaxed")
        delta.write_rows(rejected_table(lake, sync), held.cast(dict(REJECTED_SCHEMA)),  # type: ignore[arg-type]
                         append=False, partition_col=None)
    write_state(lake, sync, state)
    if residual is not None and uncertain.height:
        residual.write("intent", uncertain.with_columns(pl.lit("create").alias("_op")))
    clear_journal(lake, sync, keep=residual.run_id if residual is not None else None)
    return state, uncertain


def _apply(state: pl.DataFrame, acks: pl.DataFrame, fields: list[str], now: dt.datetime
           ) -> pl.DataFrame:
    """Acks onto the state, vectorised: one anti-join and one concat for the lot."""
    if not acks.height:
        return state
    op = pl.col("_op")
    upserts = acks.filter(op.is_in(["create", "update", "repoint"]))
    flags = acks.filter(op == "flag")
    gone = pl.concat([acks.filter(op.is_in(["delete", "not_found"])).select("_person"),
                      upserts.select("_person"),
                      upserts.select(pl.col("_prev_person").alias("_person")).drop_nulls()])
    kept = state.join(gone, on="_person", how="anti")
    if flags.height:
        flagged = flags.select("_person", pl.col("_merged_into").alias("_new_merged"))
        kept = (kept.join(flagged, on="_person", how="left")
                .with_columns(pl.coalesce("_new_merged", "_merged_into").alias("_merged_into"))
                .drop("_new_merged"))
    if not upserts.height:
        return kept
    base_key = pl.coalesce("_prev_person", "_person")
    base = state.join(upserts.select(base_key.alias("_person")), on="_person", how="semi")
    base = base.rename({c: f"_old{c}" for c in base.columns})
    merged = upserts.join(base, left_on=base_key, right_on="_old_person", how="left",
                          coalesce=False)
    new_rows = merged.select(
        pl.col("_person"), pl.col("_key_field"), pl.col("_key"),
        pl.coalesce("_dest_id", "_old_dest_id").alias("_dest_id"),
        pl.lit(None, pl.String).alias("_merged_into"),
        pl.lit(now).cast(UTC).alias("_acked_at"), pl.col("_journal_run").alias("_run_id"),
        *[pl.when(pl.col(f"s:{f}").fill_null(False)).then(pl.col(value_column(f)))
          .otherwise(pl.col(f"_old{value_column(f)}")).alias(value_column(f)) for f in fields])
    return pl.concat([kept, new_rows.select(kept.columns)], how="vertical_relaxed")


def tables(lake: Path) -> list[Path]:
    """Every Delta table under `<lake>/activation/` (the logs and each sync's state)."""
    folder = root(lake)
    if not folder.is_dir():
        return []
    out = [p for p in folder.iterdir() if delta.table_exists(p)]
    for sync in (p for p in folder.iterdir() if p.is_dir() and not delta.table_exists(p)):
        out += [p for p in sync.iterdir() if delta.table_exists(p)]
    return sorted(out)


PERSON_COLUMNS = ("person_id", "_person", "_prev_person")
KEY_COLUMNS = ("key", "_key", "value")
RECORD_COLUMNS = ("record_id", "dest_id", "_dest_id")


def forget(lake: Path, persons: set[str], values: set[str], record_ids: set[str],
           delete: Callable[[Path, str], object], *, wait_s: float = 300.0) -> list[object]:
    """Erasure: remove every trace of `persons` from the activation tables (state, held
    rejects, changelog, echoes) and from journal files of a dead run: their rows, rows
    keyed by one of their identifier `values` (e-mails, phones), and rows naming one of
    their records in a destination (`record_ids` plus the destination ids their state
    rows hold). `delete(path, predicate)` runs one Delta DELETE (the erasure's own, with
    its commit metadata). Returns what `delete` returned, per table with rows to go.

    Holds every sync's lock meanwhile (waiting up to `wait_s` for a running sync), so no
    sync folds rows back in between. The destinations keep what they were sent: c360 no
    longer knows those records once this ran (docs/activation.md, erasure)."""
    from c360_assets.lib.lock import lake_lock

    folder = root(lake)
    syncs = sorted(p for p in folder.iterdir() if p.is_dir() and not delta.table_exists(p)) \
        if folder.is_dir() else []
    with contextlib.ExitStack() as locks:
        for sync in syncs:
            locks.enter_context(lake_lock(sync, "c360 erase", wait_s=wait_s))
        return _forget(lake, persons, values, record_ids, delete)


def _forget(lake: Path, persons: set[str], values: set[str], record_ids: set[str],
            delete: Callable[[Path, str], object]) -> list[object]:
    found = set(record_ids)
    for path in tables(lake):
        if path.name == "state":
            state = pl.scan_delta(str(path))
            found |= set(state.filter(pl.col("_person").is_in(sorted(persons)))
                         .select("_dest_id").drop_nulls().collect()["_dest_id"].to_list())
    parts = [(PERSON_COLUMNS, sorted(persons)), (KEY_COLUMNS, sorted(values)),
             (RECORD_COLUMNS, sorted(found))]
    out = []
    for path in tables(lake):
        schema = pl.scan_delta(str(path)).collect_schema()
        wanted = [(c, v) for cols, v in parts for c in cols if c in schema and v]
        if not wanted:
            continue
        hit = pl.scan_delta(str(path)).filter(pl.any_horizontal(
            [pl.col(c).is_in(v) for c, v in wanted])).select(pl.len()).collect().item()
        if hit:
            out.append(delete(path, " OR ".join(
                f'"{c}" IN (' + ", ".join("'" + x.replace("'", "''") + "'" for x in v) + ")"
                for c, v in wanted)))
    for folder in (p for p in root(lake).glob("*/_journal") if p.is_dir()):
        for file in journal_files(lake, folder.parent.name):
            frame = pl.read_parquet(file)
            cols = [(c, v) for names, v in parts for c in names if c in frame.columns and v]
            if cols and frame.filter(pl.any_horizontal(
                    [pl.col(c).is_in(v) for c, v in cols])).height:
                file.unlink()
    return out
