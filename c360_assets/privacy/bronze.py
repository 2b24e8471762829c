"""Erasure and suppression where data enters: bronze and quarantine.

`erase_rows` deletes the scope's rows from every bronze table - the rows of its records
(main tables by record id, secondary tables through their attachment), and any row
whose e-mail or phone column holds one of the scope's identifiers - and every quarantine
row whose raw text or reason holds one of the proof's targets. A row of another record
that names an erased one (a Salesforce asset's `contact_id`) keeps its own data: the
cell is set to null. Deletes and updates are Delta commits whose predicates name landing
files and lines only (never a value), so the change feed tells silver which records
changed, exactly as for any other change.

`apply_suppression` runs in bronze before anything is written: a landed row whose record
id, e-mail, phone or table key matches a fingerprint on the suppression list is dropped
and counted, nothing of it kept; a cell naming a suppressed record is set to null.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from deltalake import CommitProperties, DeltaTable

from c360_assets.bronze.contract import (
    LANDING_DATE_COL,
    SOURCE_FILE_COL,
    SOURCE_LINE_COL,
    ColType,
    Pii,
    TableSpec,
)
from c360_assets.lib import delta, layout, normalise
from c360_assets.privacy import ledger
from c360_assets.privacy.proof import Target, whole_in

ERASURE_KEY = "c360.erasure"  # commit metadata: the request id(s), never a value


@dataclass
class Deleted:
    table: str
    rows: int
    bytes_rewritten: int
    version_before: int | None
    version_after: int | None


@dataclass
class BronzeErasure:
    deleted: list[Deleted] = field(default_factory=list)
    suppress: set[tuple[str, str]] = field(default_factory=set)  # (kind, fingerprint)


def _pii_columns(spec: TableSpec, kind: Pii) -> list[str]:
    return [c.name for c in spec.columns if c.pii == kind]


def identifier_columns(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """(email, phone) as silver normalises them, for each row of `frame` (a bronze
    table's rows): the first non-null of the table's e-mail and phone columns each, and
    one row per column (a row may carry a mobile and a landline)."""
    parts = []
    for kind, pii in (("email", Pii.EMAIL), ("phone", Pii.PHONE)):
        for column in _pii_columns(spec, pii):
            if column not in frame.columns:
                continue
            raw = frame.get_column(column).cast(pl.String)
            if kind == "email":
                value = pl.DataFrame({"v": raw}).select(normalise.email(pl.col("v"))[0]).to_series()
            else:
                value = normalise.phone_frame(raw, pl.Series([None] * raw.len(), dtype=pl.String)
                                              ).get_column("value")
            parts.append(pl.DataFrame({"row": pl.Series(range(raw.len()), dtype=pl.Int64),
                                       "kind": kind, "value": value}))
    if not parts:
        return pl.DataFrame(schema={"row": pl.Int64, "kind": pl.String, "value": pl.String})
    return pl.concat(parts).drop_nulls("value")


def _row_key(spec: TableSpec, frame: pl.DataFrame) -> pl.Series | None:
    """`<table key>:<json of its key columns>` per row (the table's record key)."""
    if spec.records is None:
        return None
    cols = [c for c in spec.records.key_columns if c in frame.columns]
    if not cols:
        return None
    return frame.select(pl.lit(f"{spec.key}:") + pl.struct(
        [pl.col(c).cast(pl.String) for c in cols]).struct.json_encode()).to_series()


def _record_ids(spec: TableSpec, frame: pl.DataFrame) -> pl.Series | None:
    if spec.records is None or spec.records.attachment is not None:
        return None
    return frame.select(pl.lit(spec.node_prefix()) + spec.records.record_id()).to_series()


def _erasure_commit(path: Path, label: str, request_ids: list[str],
                    change: Callable[[DeltaTable, CommitProperties], int]) -> Deleted:
    """Run `change` (a DELETE or UPDATE, returning the rows it changed) on the table at
    `path`, committed with the request ids (never a value) as its metadata; what it
    did, with the bytes of the files it wrote."""
    table = DeltaTable(str(path))
    before, files = table.version(), delta.file_sizes(path)
    rows = change(table, CommitProperties(custom_metadata={ERASURE_KEY: ",".join(request_ids)}))
    written = sum(size for p, size in delta.file_sizes(path).items() if p not in files)
    return Deleted(f"{path.parent.name}/{path.name}{label}", rows, written, before,
                   delta.table_version(path))


def delete_where(path: Path, predicate: str, request_ids: list[str]) -> Deleted:
    """A Delta DELETE of the rows `predicate` names (see `_erasure_commit`)."""
    return _erasure_commit(path, "", request_ids, lambda table, props: int(table.delete(
        predicate, commit_properties=props).get("num_deleted_rows", 0)))


def _delete_lines(path: Path, lines: pl.DataFrame, request_ids: list[str]) -> Deleted:
    """Delete the rows at (`_landing_date`, `_source_file`, `_source_line`)."""
    return delete_where(path, _lines_predicate(lines), request_ids)


def _lines_predicate(lines: pl.DataFrame) -> str:
    """A predicate naming rows by landing day, file and line (never a value)."""
    clauses = []
    for (file,), group in lines.group_by(SOURCE_FILE_COL):
        nums = ", ".join(str(int(n)) for n in sorted(group.get_column(SOURCE_LINE_COL).to_list()))
        days = ", ".join(f"'{d}'" for d in sorted(set(group.get_column(LANDING_DATE_COL).to_list())))
        quoted = str(file).replace("'", "''")
        clauses.append(f"({LANDING_DATE_COL} IN ({days}) AND {SOURCE_FILE_COL} = '{quoted}' "
                       f"AND {SOURCE_LINE_COL} IN ({nums}))")
    return " OR ".join(clauses)


def erase_rows(lake: Path, tables: tuple[TableSpec, ...], records: set[str],
               identifiers: set[tuple[str, str]], targets: list[Target], key: bytes,
               request_ids: list[str]) -> BronzeErasure:
    """Delete the scope's rows from bronze and quarantine (see the module docstring)."""
    from c360_assets.silver.build import read_bronze

    out = BronzeErasure()
    main_first = tuple(sorted((t for t in tables if t.records is not None),
                              key=lambda t: t.main_ref is not None))
    of_records = read_bronze(lake, records, main_first) if records else {}
    emails = {v for k, v in identifiers if k == "email"}
    phones = {v for k, v in identifiers if k == "phone"}
    for spec in tables:
        path = layout.bronze_table(lake, spec.key)
        if not delta.table_exists(path):
            continue
        hit = of_records.get(spec.ref, pl.DataFrame())
        pii = _pii_columns(spec, Pii.EMAIL) + _pii_columns(spec, Pii.PHONE)
        if pii and (emails or phones):
            scan = pl.scan_delta(str(path))
            frame = scan.select([c for c in pii] + [LANDING_DATE_COL, SOURCE_FILE_COL,
                                                    SOURCE_LINE_COL]).collect()
            ids = identifier_columns(spec, frame)
            rows = ids.filter(((pl.col("kind") == "email") & pl.col("value").is_in(list(emails)))
                              | ((pl.col("kind") == "phone") & pl.col("value").is_in(list(phones))))
            if rows.height:
                lines = frame[rows.get_column("row").unique().sort().to_list()]
                keys = [SOURCE_FILE_COL, SOURCE_LINE_COL]
                full = (pl.scan_delta(str(path)).join(lines.lazy().select(keys), on=keys)
                        .collect())
                hit = pl.concat([hit, full], how="diagonal_relaxed") if hit.height else full
        if not hit.height:
            continue
        hit = hit.unique([SOURCE_FILE_COL, SOURCE_LINE_COL])
        for kind, v in identifier_columns(spec, hit).select("kind", "value").iter_rows():
            out.suppress.add((kind, ledger.fingerprint(key, kind, v)))
        for name, series in (("row", _row_key(spec, hit)), ("record", _record_ids(spec, hit))):
            if series is not None:
                out.suppress |= {(name, ledger.fingerprint(key, name, v))
                                 for v in series.drop_nulls().unique().to_list()}
        out.deleted.append(_delete_lines(path, hit.select(
            LANDING_DATE_COL, SOURCE_FILE_COL, SOURCE_LINE_COL), request_ids))
    out.deleted += _redact_references(lake, tables, records, request_ids)
    texts = sorted({t.text.lower() for t in targets if t.other is None})
    if texts:
        for spec in tables:
            path = layout.quarantine_table(lake, spec.key)
            if not delta.table_exists(path):
                continue
            text = pl.concat_str([pl.col("raw").fill_null(""), pl.col("reason").fill_null("")],
                                 separator="\x1f")
            found = (pl.scan_delta(str(path))
                     .filter(text.str.contains_any(texts, ascii_case_insensitive=True))
                     .select(LANDING_DATE_COL, SOURCE_FILE_COL,
                             pl.col("line").alias(SOURCE_LINE_COL), text.alias("_text"))
                     .collect())
            # Whole values only: a phone inside a longer number is someone else's.
            found = found.filter(pl.Series([any(whole_in(t.lower(), x) for x in texts)
                                            for t in found.get_column("_text").to_list()],
                                           dtype=pl.Boolean)).drop("_text")
            if found.height:
                out.deleted.append(_delete_quarantine(path, found, request_ids))
    return out


def _redact_references(lake: Path, tables: tuple[TableSpec, ...], records: set[str],
                       request_ids: list[str]) -> list[Deleted]:
    """Rows of other records that name an erased record (a Salesforce asset's
    `contact_id`) keep their own data; the cell naming the customer is set to null.
    Text columns holding exactly an erased record's id of the same source (ids of at
    least 8 characters: a short number may be another entity's id too)."""
    out = []
    bare: dict[str, set[str]] = {}
    for node in records:
        parts = node.split(":", 2)
        if len(parts) == 3 and len(parts[2]) >= 8:
            bare.setdefault(parts[1], set()).add(parts[2])
    for spec in tables:
        ids = bare.get(spec.source)
        path = layout.bronze_table(lake, spec.key)
        if not ids or not delta.table_exists(path):
            continue
        own = set(spec.records.key_columns) if spec.records else set()
        columns = [c.name for c in spec.columns if c.type == ColType.STR and c.name not in own]
        if not columns:
            continue
        found = (pl.scan_delta(str(path))
                 .filter(pl.any_horizontal(pl.col(c).is_in(list(ids)) for c in columns))
                 .select(*columns, LANDING_DATE_COL, SOURCE_FILE_COL, SOURCE_LINE_COL).collect())
        for column in columns:
            lines = found.filter(pl.col(column).is_in(list(ids)))
            if lines.height:
                out.append(_null_cells(path, column, lines, request_ids))
    return out


def _null_cells(path: Path, column: str, lines: pl.DataFrame, request_ids: list[str]
                ) -> Deleted:
    """Set `column` to null in the rows at (`_landing_date`, `_source_file`,
    `_source_line`); counted as rows changed."""
    predicate = _lines_predicate(lines)
    return _erasure_commit(path, f".{column} (cells set to null)", request_ids,
                           lambda table, props: int(table.update(
                               updates={column: "NULL"}, predicate=predicate,
                               commit_properties=props).get("num_updated_rows", 0)))


def _delete_quarantine(path: Path, lines: pl.DataFrame, request_ids: list[str]) -> Deleted:
    """Quarantine rows are addressed by file and line (`line`; null for a whole file)."""
    clauses = []
    for (file,), group in lines.group_by(SOURCE_FILE_COL):
        quoted = str(file).replace("'", "''")
        nums = [int(n) for n in group.get_column(SOURCE_LINE_COL).drop_nulls().to_list()]
        parts = []
        if nums:
            parts.append(f"line IN ({', '.join(map(str, sorted(set(nums))))})")
        if group.get_column(SOURCE_LINE_COL).null_count():
            parts.append("line IS NULL")
        clauses.append(f"({SOURCE_FILE_COL} = '{quoted}' AND ({' OR '.join(parts)}))")
    return delete_where(path, " OR ".join(clauses), request_ids)


def _listed(entries: pl.DataFrame) -> dict[str, set[str]]:
    return {k: set(g.get_column("fingerprint")) for (k,), g in entries.group_by("kind")}


def _identifier_hits(spec: TableSpec, frame: pl.DataFrame, listed: dict[str, set[str]],
                     key: bytes) -> pl.Series:
    rows: set[int] = set()
    ids = identifier_columns(spec, frame)
    for kind in ("email", "phone"):
        fps = listed.get(kind)
        part = ids.filter(pl.col("kind") == kind)
        if fps and part.height:
            found = ledger.fingerprints(key, kind, part.get_column("value")).is_in(list(fps))
            rows |= set(part.filter(found).get_column("row").to_list())
    return pl.Series([i in rows for i in range(frame.height)], dtype=pl.Boolean)


def _key_hits(spec: TableSpec, frame: pl.DataFrame, listed: dict[str, set[str]],
              key: bytes) -> pl.Series:
    drop = pl.Series([False] * frame.height, dtype=pl.Boolean)
    for name, series in (("row", _row_key(spec, frame)), ("record", _record_ids(spec, frame))):
        fps = listed.get(name)
        if fps and series is not None:
            drop = drop | ledger.fingerprints(key, name, series).is_in(list(fps)).fill_null(False)
    return drop


def suppression_filter(spec: TableSpec, frame: pl.DataFrame, entries: pl.DataFrame,
                       key: bytes) -> pl.Series:
    """True for each row of `frame` (typed bronze rows of `spec`) that the suppression
    list (`entries`: kind, fingerprint) names: by e-mail, phone, table key or record id."""
    if not frame.height or not entries.height:
        return pl.Series([False] * frame.height, dtype=pl.Boolean)
    listed = _listed(entries)
    return _identifier_hits(spec, frame, listed, key) | _key_hits(spec, frame, listed, key)


def suppress_quarantine(frame: pl.DataFrame, spec: TableSpec, entries: pl.DataFrame,
                        key: bytes) -> pl.Series:
    """Quarantined rows keep their raw values as JSON: the same match on the fields it
    holds, read as text (keys and record ids where they type as the table's columns)."""
    if not frame.height or not entries.height:
        return pl.Series([False] * frame.height, dtype=pl.Boolean)
    names = [c.name for c in spec.columns]
    decoded = []
    for raw in frame.get_column("raw").to_list():
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        decoded.append({n: None if data.get(n) is None else str(data[n]) for n in names})
    text = pl.DataFrame(decoded, schema=dict.fromkeys(names, pl.String))
    listed = _listed(entries)
    drop = _identifier_hits(spec, text, listed, key)
    typed = text.cast({n: t for n, t in spec.schema().items() if n in names},  # type: ignore[arg-type]
                      strict=False)
    return drop | _key_hits(spec, typed, listed, key)


def apply_suppression(lake: Path, spec: TableSpec, good: pl.DataFrame,
                      quarantine: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """`good` and `quarantine` (one table's ingested rows) without the rows the lake's
    suppression list names, and how many were dropped. No list: nothing read, no key."""
    entries = ledger.suppression(lake) if delta.table_exists(ledger.table(lake, "suppression")) \
        else pl.DataFrame()
    if not entries.height:
        return good, quarantine, 0
    key = ledger.privacy_key(lake)
    drop = suppression_filter(spec, good, entries, key)
    qdrop = suppress_quarantine(quarantine, spec, entries, key)
    good = _null_suppressed_references(spec, good.filter(~drop), entries, key)
    return good, quarantine.filter(~qdrop), int(drop.sum()) + int(qdrop.sum())


def _null_suppressed_references(spec: TableSpec, frame: pl.DataFrame, entries: pl.DataFrame,
                                key: bytes) -> pl.DataFrame:
    """Text cells (not the row's own key) holding the id of a suppressed customer record
    of the same source are set to null (as `_redact_references` did at the erasure)."""
    records = set(entries.filter(pl.col("kind") == "record").get_column("fingerprint"))
    if not records or not frame.height:
        return frame
    own = set(spec.records.key_columns) if spec.records else set()
    for c in spec.columns:
        if c.type != ColType.STR or c.name in own or c.name not in frame.columns:
            continue
        values = frame.get_column(c.name)
        ids = values.filter(values.str.len_chars() >= 8)
        if not ids.len():
            continue
        prints = ledger.fingerprints(key, "record", f"customer:{spec.source}:" + ids.unique())
        named = set(ids.unique().filter(prints.is_in(list(records))).to_list())
        if named:
            frame = frame.with_columns(pl.when(pl.col(c.name).is_in(list(named)))
                                       .then(None).otherwise(pl.col(c.name)).alias(c.name))
    return frame
