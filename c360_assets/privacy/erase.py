"""Erasure: delete a customer everywhere the lake holds them, purge history, prove it.

Two steps of one `c360 materialize` under the lake's lock (`begin`, then the pipeline's
usual runs, then `finish`; the Dagster assets in `assets.py` call them):

1. **Scope** (`scope.py`): the records carrying the named identifiers, their persons and
   every record of those; what the proof must not find.
2. **Bronze and quarantine** (`bronze.py`): their rows deleted, the deleted records'
   identifiers and keys put on the suppression list (so a re-sync cannot bring them back).
3. **The pipeline runs**: silver reads the deletes from bronze's change feed like any
   change and removes the records' field changes, edges and entity nodes, and value
   nodes left without an edge; identity re-resolves the persons that shared a cluster or
   a block with them; gold re-resolves the persons that changed and drops the erased.
4. **What the pipeline keeps as history** goes by key: identity events of the erased
   persons, change-log rows of the records, and anything a derived table still holds
   (`derived_leftovers`, listed in the receipt as `kept_as_history`).
5. **Copies outside Delta**: the DuckDB file is copied into a new file and renamed into
   place (DuckDB keeps deleted bytes in free blocks); Dagster's run and event storage and
   text logs under the lake and the Dagster home have each occurrence replaced by
   `[erased]` (SQLite files are then vacuumed).
6. **Purge** (`purge.py`): every Delta table's log checkpointed and cleaned at zero
   retention, and vacuumed in full at zero hours: no old file, change-data file, statistic
   or commit predicate keeps a value.
7. **Proof** (`proof.py`): every file under the lake and the Dagster home scanned; a
   receipt written to `<lake>/privacy/receipts` and returned. A hit is an error
   (`ErasureNotProven`), never a warning.

Commits carry the request ids (`c360.erasure` metadata), never an identifier. The scope
lives in this process's memory between the steps, and sealed (encrypted) on disk so a
run killed in between is finished by the next one (`seal`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from c360_assets.activation import state as activation_state
from c360_assets.bronze import catalogue, record_tables
from c360_assets.lib import delta, failpoints, layout
from c360_assets.lib.config import C360Config
from c360_assets.lib.registry import load_registry
from c360_assets.privacy import bronze as privacy_bronze
from c360_assets.privacy import inbox, ledger, proof, purge
from c360_assets.privacy.scope import Scope, normalised, resolve
from c360_assets.serving import store as serving_store

REDACTED = "[erased]"


class ErasureNotProven(RuntimeError):
    """The proof scan found a target after the purge."""

    def __init__(self, receipt: dict) -> None:
        self.receipt = receipt
        hits = receipt["hit_list"]
        super().__init__(f"erasure {', '.join(receipt['request_ids'])} NOT proven: "
                         f"{len(hits)} occurrence(s) left, e.g. "
                         + "; ".join(f"{h['kind']} in {h['path']} ({h['where']})"
                                     for h in hits[:5]))


# ---------------------------------------------------------------------------- derived tables

# Columns that hold a record node id, a node id or a person id, in silver and gold tables.
RECORD_COLUMNS = ("record_node_id", "source_node_id", "node_l", "node_r")
NODE_COLUMNS = ("node_id", "target_node_id")
PERSON_COLUMNS = ("customer_id", "person_id", "from_person_id", "to_person_id")


def _in_list(column: str, values: list[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def derived_leftovers(lake: Path, scope: Scope, request_ids: list[str]
                      ) -> list[privacy_bronze.Deleted]:
    """Delete, from every silver and gold table, rows keyed by one of the scope's records,
    its own value nodes or its persons. After the pipeline has run these are the
    history it keeps by design (identity events, the change log) and orphaned value
    nodes; any other table listed in the result is a gap the pipeline left."""
    records = sorted(scope.records)
    nodes = sorted(scope.value_nodes | scope.records)
    persons = sorted(scope.persons)
    emails_phones = sorted(t.text for t in scope.targets if t.kind in ("email", "phone"))
    out = []
    for layer in (layout.SILVER, layout.GOLD):
        folder = layout.layer(lake, layer)
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if delta.table_exists(p)):
            schema = pl.scan_delta(str(path)).collect_schema()
            parts: list[tuple[str, list[str]]] = []
            parts += [(c, records) for c in RECORD_COLUMNS if c in schema and records]
            parts += [(c, nodes) for c in NODE_COLUMNS if c in schema and nodes]
            parts += [(c, persons) for c in PERSON_COLUMNS if c in schema and persons]
            if path.name == "identity_shared_values" and emails_phones:
                parts.append(("value", emails_phones))
            if not parts:
                continue
            found = pl.scan_delta(str(path)).filter(pl.any_horizontal(
                [pl.col(c).is_in(v) for c, v in parts])).select(pl.len()).collect().item()
            if found:
                predicate = " OR ".join(_in_list(c, v) for c, v in parts)
                out.append(privacy_bronze.delete_where(path, predicate, request_ids))
    return out


# ---------------------------------------------------------------------------- outside Delta


def rebuild_duckdb(path: Path) -> int:
    """Copy the DuckDB file into a new one and rename it into place (a deleted row's
    bytes stay in the old file's free blocks). Returns the new file's size."""
    if not path.exists():
        return 0
    fresh = path.with_name(f"{path.name}.{os.getpid()}.rebuild")
    fresh.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{path}' AS old_db (READ_ONLY)")
        con.execute(f"ATTACH '{fresh}' AS new_db")
        con.execute("COPY FROM DATABASE old_db TO new_db")
        con.execute("DETACH old_db")
        con.execute("DETACH new_db")
    finally:
        con.close()
    wal = path.with_name(path.name + ".wal")
    wal.unlink(missing_ok=True)
    os.replace(fresh, path)
    return path.stat().st_size


def _pattern(targets: list[proof.Target]) -> re.Pattern[str] | None:
    texts = sorted({t.text for t in targets if t.other is None and t.text}, key=len, reverse=True)
    if not texts:
        return None
    return re.compile("|".join(re.escape(t) for t in texts), re.IGNORECASE)


def _holding(values: list[str], needles: list[str]) -> list[int]:
    """Indexes of `values` holding any of `needles` (case-insensitive; Aho-Corasick)."""
    if not values:
        return []
    found = pl.Series(values, dtype=pl.String).str.contains_any(needles,
                                                                ascii_case_insensitive=True)
    return [i for i, hit in enumerate(found.to_list()) if hit]


def redact_sqlite(path: Path, pattern: re.Pattern[str], needles: list[str],
                  batch: int = 20_000) -> int:
    """Replace every occurrence in every column of every table; then VACUUM (free pages
    would keep the old bytes) and fold the write-ahead log in. Returns values changed."""
    changed = 0
    con = sqlite3.connect(str(path))
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
            for col in cols:
                cur = con.execute(f'SELECT rowid, "{col}" FROM "{table}" '
                                  f'WHERE "{col}" IS NOT NULL')
                updates = []
                while rows := cur.fetchmany(batch):
                    # A blob byte for byte (latin-1), a text as itself.
                    texts = [v.decode("latin-1") if isinstance(v, bytes) else str(v)
                             for _, v in rows]
                    for i in _holding(texts, needles):
                        rowid, value = rows[i]
                        new = pattern.sub(REDACTED, texts[i])
                        updates.append((new.encode("latin-1") if isinstance(value, bytes)
                                        else new, rowid))
                con.executemany(f'UPDATE "{table}" SET "{col}" = ? WHERE rowid = ?', updates)
                changed += len(updates)
        con.commit()
        if changed:
            con.execute("VACUUM")
        # A write-ahead log holds pages too: copied into the file, then truncated.
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return changed


def redact_files(root: Path, targets: list[proof.Target], *, skip: set[Path]) -> int:
    """Replace each occurrence of a target in the text files and SQLite files under
    `root` (Delta tables and the DuckDB file, in `skip`, are handled as data)."""
    pattern = _pattern(targets)
    if pattern is None or not root.exists():
        return 0
    needles = sorted({t.text.lower() for t in targets if t.other is None and t.text})
    changed = 0
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    # SQLite files first: their write-ahead logs (`-wal`) are folded into them; the
    # `-shm` index holds no rows.
    files.sort(key=lambda p: not p.name.endswith(".db"))
    for path in files:
        if any(path == s or s in path.parents for s in skip) or path.name.endswith("-shm"):
            continue
        try:
            kind = proof.kind_of_file(path)
        except FileNotFoundError:  # a SQLite journal that came and went
            continue
        if kind == "sqlite":
            changed += redact_sqlite(path, pattern, needles)
            continue
        if kind != "bytes":  # Parquet, DuckDB: data, handled as such
            continue
        data = path.read_bytes().decode("latin-1")
        if not _holding([data], needles):
            continue
        new, n = pattern.subn(REDACTED, data)
        if n:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.redact")
            tmp.write_bytes(new.encode("latin-1"))
            os.replace(tmp, path)
            changed += n
    return changed


# ---------------------------------------------------------------------------- the sealed scope

SEAL_AAD = b"c360 erasure scope v1"


def sealed_path(lake: Path) -> Path:
    return Path(lake) / layout.OPS / "erasure-scope.sealed"


def _seal_key(key: bytes) -> bytes:
    return hmac.new(key, b"c360 erasure scope sealing key", hashlib.sha256).digest()


def seal(lake: Path, key: bytes, scope: Scope) -> None:
    """Keep the scope (what the proof must look for) across a crash, encrypted with a key
    derived from the privacy key (AES-256-GCM): the proof never finds it in clear, and it
    is deleted once the erasure is proven."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = json.dumps({"records": sorted(scope.records), "persons": sorted(scope.persons),
                       "identifiers": sorted(scope.identifiers),
                       "value_nodes": sorted(scope.value_nodes),
                       "targets": [[t.kind, t.text, t.other] for t in scope.targets]}).encode()
    nonce = os.urandom(12)
    layout.write_bytes_atomic(sealed_path(lake), nonce + AESGCM(_seal_key(key)).encrypt(
        nonce, data, SEAL_AAD), mode=0o600)


def unseal(lake: Path, key: bytes) -> Scope | None:
    """The scope a killed process sealed, or None (none, or sealed under another key)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    path = sealed_path(lake)
    if not path.exists():
        return None
    blob = path.read_bytes()
    try:
        data = json.loads(AESGCM(_seal_key(key)).decrypt(blob[:12], blob[12:], SEAL_AAD))
    except (InvalidTag, ValueError):
        return None
    return Scope(records=set(data["records"]), persons=set(data["persons"]),
                 identifiers={(k, v) for k, v in data["identifiers"]},
                 value_nodes=set(data["value_nodes"]),
                 targets=[proof.Target(k, t, o) for k, t, o in data["targets"]])


# ---------------------------------------------------------------------------- the step


@dataclass
class Pending:
    """An erasure between its bronze deletes and its proof. Its scope holds the values
    the proof looks for: in memory, and on disk only sealed (`seal`)."""

    requests: list[inbox.Request]
    files: list[Path]
    scope: Scope
    bronze: privacy_bronze.BronzeErasure
    subjects: dict[str, str]  # request id -> fingerprint of what it named
    received_at: dt.datetime
    due_days: int = ledger.DUE_DAYS
    started: float = dataclasses.field(default_factory=time.perf_counter)

    @property
    def request_ids(self) -> list[str]:
        return [r.request_id for r in self.requests]


_PENDING: dict[Path, Pending] = {}  # lake -> the erasure this process has begun


def _status(lake: Path, pending: Pending, status: str, detail: dict | None = None) -> None:
    for r in pending.requests:
        ledger.record_status(lake, r.request_id, r.kind, pending.subjects[r.request_id],
                             status, r.origin, pending.received_at, detail, pending.due_days)


def begin(landing: Path, lake: Path, config: C360Config,
          echo: Callable[[str], None] = print) -> Pending | None:
    """Steps 1-2: read the inbox, resolve the scope, delete from bronze and quarantine,
    extend the suppression list. None when the inbox is empty. The caller holds the
    lake's lock and then runs the pipeline, then `finish`."""
    requests, files, problems = inbox.pending(landing)
    for p in problems:
        echo(f"erase: {p}")
    if not requests:
        return None
    key = ledger.privacy_key(lake)
    subjects = {r.request_id: ledger.fingerprint(key, r.kind, normalised(r.kind, r.value))
                for r in requests}
    sources = catalogue(config)
    registry = load_registry(sources=tuple(s.name for s in sources))
    scope = resolve(lake, registry, [(r.kind, r.value) for r in requests])
    # An erasure a killed process began: what it found before its deletes still counts.
    sealed = unseal(lake, key)
    if sealed is not None:
        scope = scope.union(sealed)
    seal(lake, key, scope)
    pending = Pending(requests, files, scope, privacy_bronze.BronzeErasure(), subjects,
                      ledger.now(), config.privacy.request_due_days)
    _status(lake, pending, "received")
    echo(f"erase: {len(requests)} request(s): {len(scope.records):,} record(s) of "
         f"{len(scope.persons):,} person(s); {len(scope.targets):,} value(s) and id(s) "
         "to prove gone")
    tables = tuple(t for s in sources for t in s.tables)
    pending.bronze = privacy_bronze.erase_rows(lake, tables, scope.records, scope.identifiers,
                                               scope.targets, key, pending.request_ids)
    suppress = pending.bronze.suppress | {
        (kind, ledger.fingerprint(key, kind, value))
        for kind, value in scope.identifiers if kind in ("email", "phone")}
    added = ledger.add_suppressed(lake, ",".join(pending.request_ids), suppress)
    _status(lake, pending, "applied", {"records": len(scope.records)})
    echo(f"erase: bronze and quarantine: {sum(d.rows for d in pending.bronze.deleted):,} "
         f"row(s) deleted from {len(pending.bronze.deleted)} table(s); {added} "
         "fingerprint(s) added to the suppression list")
    _PENDING[Path(lake).absolute()] = pending
    return pending


def finish(landing: Path, lake: Path, home: Path, config: C360Config,
           echo: Callable[[str], None] = print) -> dict | None:
    """Steps 4-7, after the pipeline carried the deletes downstream: the leftovers, the
    DuckDB file, logs and Dagster's storage, the purge, the proof; the receipt (also in
    `<lake>/privacy/receipts`). Raises `ErasureNotProven` when anything is found.

    Without an erasure begun by this process (a crash in between, or another process ran
    the pipeline) the inbox's requests are resolved again: what silver still holds of
    them is erased and proven if it is already gone downstream, else this says to run the
    whole pipeline again."""
    lake = Path(lake).absolute()
    failpoints.reached("privacy.before_proof")
    pending = _PENDING.pop(lake, None)
    if pending is None:  # begun by another process: the sealed scope, if it left one
        pending = begin(landing, lake, config, echo)
        _PENDING.pop(lake, None)
        if pending is None:
            return None
        if pending.bronze.deleted:
            raise RuntimeError("erase: the requests' rows were still in bronze: run the "
                               "whole pipeline (c360 materialize) to carry the deletes "
                               "downstream and prove them")
    scope = pending.scope
    leftovers = derived_leftovers(lake, scope, pending.request_ids)
    synced = activation_state.forget(
        lake, scope.persons, {t.text for t in scope.targets if t.kind in ("email", "phone")},
        {r.split(":", 2)[-1] for r in scope.records},
        lambda path, predicate: privacy_bronze.delete_where(path, predicate,
                                                            pending.request_ids))
    served = serving_store.forget(lake, set(scope.persons))
    if served:
        echo(f"erase: serving store written again without {served:,} person(s)")
    for d in leftovers:
        echo(f"erase: {d.table}: {d.rows:,} row(s) kept as history deleted")
    for d in synced:
        echo(f"erase: {d.table}: {d.rows:,} row(s) of what syncs sent deleted")
    _acknowledge(lake, leftovers)
    leftovers += synced
    db_size = rebuild_duckdb(layout.gold_db(lake))
    # Data stores are rewritten, never edited in place (the serving store's readers open
    # it immutable): the proof finds anything left in them.
    skip = {layout.gold_db(lake), layout.serving(lake)} \
        | {layout.layer(lake, x) for x in layout.LAYERS} \
        | {ledger.folder(lake)} | set(activation_state.tables(lake))
    redacted = (redact_files(lake, scope.targets, skip=skip)
                + redact_files(home, scope.targets, skip=set()))
    echo(f"erase: DuckDB file rebuilt ({db_size / 2**20:,.1f} MiB); {redacted} "
         "occurrence(s) in logs and Dagster's storage replaced")
    sources = catalogue(config)
    purged = purge.purge_lake(lake, config.maintenance.retention_hours,
                              record_tables(sources), echo=echo)
    report = proof.scan({"lake": lake, "dagster_home": home}, scope.targets, progress=echo)
    deleted = pending.bronze.deleted + leftovers
    receipt = {
        "request_ids": pending.request_ids, "request_id": ",".join(pending.request_ids),
        "subjects": pending.subjects, "records_erased": len(scope.records),
        "persons_erased": len(scope.persons),
        "rows_deleted": sum(d.rows for d in deleted),
        "bytes_rewritten": sum(d.bytes_rewritten for d in deleted)
        + purged.bytes_rewritten + db_size,
        "tables": {d.table: {"rows_deleted": d.rows, "version_before": d.version_before,
                             "version_after": d.version_after} for d in deleted},
        "kept_as_history": [d.table for d in leftovers],
        "purged_tables": purged.tables, "files_vacuumed": purged.files_vacuumed,
        "log_entries_removed": purged.log_entries_removed,
        "files_scanned": report.files, "bytes_scanned": report.bytes,
        "targets": len(scope.targets), "target_kinds": _count_kinds(scope.targets),
        "hits": len(report.hits),
        "hit_list": [dataclasses.asdict(h) for h in report.hits[:100]],
        "scan_seconds": round(report.seconds, 2),
        "seconds": round(time.perf_counter() - pending.started, 2),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _status(lake, pending, "proven" if report.clean else "failed", {"hits": len(report.hits)})
    ledger.add_receipt(lake, receipt)
    if not report.clean:
        raise ErasureNotProven(receipt)
    sealed_path(lake).unlink(missing_ok=True)  # before the requests: never a stale seal
    inbox.remove(pending.files)
    return receipt


def _acknowledge(lake: Path, deleted: list[privacy_bronze.Deleted]) -> None:
    """History rows an erasure deleted (identity events) are not news: identity's state
    records the tables' new versions, so the next run does not redo its work."""
    from c360_assets.silver import identity_build

    identity_build.acknowledge(lake, {Path(d.table).name: d.version_after for d in deleted})


def _count_kinds(targets: list[proof.Target]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in targets:
        out[t.kind] = out.get(t.kind, 0) + 1
    return out


def render_receipt(receipt: dict) -> str:
    """The receipt as the CLI prints it (JSON, no identifier in it)."""
    shown = {k: v for k, v in receipt.items() if k != "hit_list" or v}
    return json.dumps(shown, indent=2, sort_keys=True, default=str)
