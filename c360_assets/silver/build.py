"""Build the silver tables from bronze, incrementally.

A run reads what bronze changed since its watermark (Delta Change Data Feed from the
bronze versions of the last run), finds the source records touched (plus merged
records whose merge chain passes through one), reads *all* bronze rows of
those records, recomputes their full history (`field_changes`, then the graph), and
replaces exactly those records' rows in the silver tables. Silver tables are
partitioned by a hash bucket of the record (or node) id. Rows a run only adds are
appended; buckets holding rows that must go (a closed edge, history rewritten by a
backfill) are rewritten; a run with nothing new commits nothing.

The watermark (`<lake>/silver/_watermarks.json`: bronze table -> Delta version, and the
data version each silver table had then) is written after the three tables. A run that
dies in between leaves the previous watermark: the next run sees silver tables that
changed after it, recomputes every record touched since it (a superset of what the dead
run did) and writes the same rows a clean run would (every write replaces the records'
rows by key). A full build removes the watermark before its first write. No watermark,
a missing silver table, a silver table older than its watermark, or a bronze history no
longer readable through CDF means a full rebuild.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from c360_assets.bronze.contract import TableSpec
from c360_assets.lib import change_log, delta, failpoints, layout
from c360_assets.lib.hashing import BUCKETS, bucket_of
from c360_assets.lib.registry import Registry
from c360_assets.silver import echo, graph, sources
from c360_assets.silver.field_changes import FIELD_CHANGES_SCHEMA, field_changes

log = logging.getLogger(__name__)

FIELD_CHANGES = "field_changes"
NODES = "nodes"
RELATIONSHIPS = "relationships"
TABLE_NAMES = (FIELD_CHANGES, NODES, RELATIONSHIPS)
WATERMARK_FORMAT = 2  # 2: edges carry ingestion_order (an older silver is rebuilt)


@dataclass
class SilverReport:
    mode: str  # full | incremental | no-op
    records_touched: int = 0
    changes_emitted: int = 0  # change rows computed (touched records' whole history)
    # Edges that became / stopped being current in this run (a full build: current
    # edges, and closed edges of the history it rebuilt).
    edges_opened: int = 0
    edges_closed: int = 0
    nodes_orphaned: int = 0  # value nodes removed: no edge reaches them any more
    rows_added: dict[str, int] = field(default_factory=dict)  # silver table -> rows
    rows_removed: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int | None] = field(default_factory=dict)  # silver table -> version
    committed: dict[str, bool] = field(default_factory=dict)  # did this run commit to it
    watermark: dict[str, int] = field(default_factory=dict)  # bronze table -> version
    seconds: float = 0.0


# ---------------------------------------------------------------------------- watermarks


def _read_watermark_file(lake: Path) -> dict | None:
    path = layout.silver_watermarks(lake)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("unreadable silver watermark %s: rebuilding silver in full", path)
        return None
    return data if isinstance(data, dict) and data.get("format") == WATERMARK_FORMAT else None


def load_watermark(lake: Path) -> dict[str, int] | None:
    data = _read_watermark_file(lake)
    if data is None:
        return None
    return {str(k): int(v) for k, v in data.get("bronze_versions", {}).items()}


def silver_versions(lake: Path) -> dict[str, int | None]:
    return {n: delta.data_version(layout.silver_table(lake, n)) for n in TABLE_NAMES}


def watermark_state(lake: Path) -> str:
    """How silver stands against its watermark: `clean` (as the last run left it),
    `interrupted` (a table changed after it: a run died part-way; replaying from the
    watermark redoes it), `inconsistent` (a table older than the watermark or gone:
    only a full rebuild can tell) or `none`."""
    data = _read_watermark_file(lake)
    if data is None:
        return "none"
    recorded = data.get("silver_versions")
    if not isinstance(recorded, dict):
        return "clean"  # written before silver versions were recorded
    now = silver_versions(lake)
    if any(now[n] is None or (recorded.get(n) is not None and now[n] < recorded[n])
           for n in TABLE_NAMES):
        return "inconsistent"
    return "interrupted" if any(now[n] != recorded.get(n) for n in TABLE_NAMES) else "clean"


def save_watermark(lake: Path, versions: dict[str, int]) -> None:
    layout.write_json_atomic(layout.silver_watermarks(lake), {
        "format": WATERMARK_FORMAT, "bronze_versions": versions,
        "silver_versions": silver_versions(lake)})


def bronze_versions(lake: Path, tables: tuple[TableSpec, ...]) -> dict[str, int]:
    out = {}
    for table in tables:
        version = delta.table_version(layout.bronze_table(lake, table.key))
        if version is not None:
            out[table.key] = version
    return out


# ---------------------------------------------------------------------------- touched records


def _record_ids(table: TableSpec, rows: pl.DataFrame, lake: Path,
                tables: tuple[TableSpec, ...]) -> pl.Series:
    assert table.records is not None
    attachment = table.records.attachment
    if attachment is not None:
        main = next(t for t in tables if t.ref == table.main_ref)
        ids = attachment.record_ids(rows, lambda columns: _read(lake, main, columns=columns))
        return main.node_prefix() + ids
    return rows.select(pl.lit(table.node_prefix()) + table.records.record_id()).to_series(
        ).drop_nulls().unique()


def changed_records(lake: Path, watermark: dict[str, int], versions: dict[str, int],
                    tables: tuple[TableSpec, ...]) -> set[str] | None:
    """Record node ids touched in bronze since `watermark`; None when only a full
    rebuild can tell (a table's CDF range is gone)."""
    touched: set[str] = set()
    for table in tables:
        assert table.records is not None
        key = table.key
        if key not in versions:
            continue
        since = watermark.get(key, -1)
        if versions[key] <= since:
            continue
        try:
            # From the first commit that changed data: maintenance commits (compaction,
            # vacuum) in between hold no changes, and a log cleanup may have removed them.
            path = layout.bronze_table(lake, key)
            changed = delta.data_versions_after(path, since)
            if not changed:
                continue
            reader = DeltaTable(str(path)).load_cdf(
                starting_version=changed[0], columns=list(table.records.key_columns))
            rows = pl.from_arrow(reader.read_all())
        except Exception as exc:  # noqa: BLE001 - any CDF gap means: rebuild
            log.warning("no change feed for %s since version %d (%s): full rebuild", key,
                        since, exc)
            return None
        if isinstance(rows, pl.Series):  # a one-batch reader can come back as a struct
            rows = rows.struct.unnest()
        touched.update(_record_ids(table, rows, lake, tables).to_list())
    return touched


# ---------------------------------------------------------------------------- reading bronze


def _read(lake: Path, table: TableSpec, columns: list[str] | None = None,
          filter_: pl.Expr | None = None) -> pl.DataFrame:
    path = layout.bronze_table(lake, table.key)
    if not delta.table_exists(path):
        empty = pl.DataFrame(schema=table.schema())
        return empty.select(columns) if columns else empty
    scan = pl.scan_delta(str(path))
    if filter_ is not None:
        scan = scan.filter(filter_)
    if columns:
        scan = scan.select(columns)
    return scan.collect()


def read_bronze(lake: Path, records: set[str] | None, tables: tuple[TableSpec, ...]
                ) -> dict[str, pl.DataFrame]:
    """All bronze rows of `records` (every row when None), by `source/table`; `tables`
    main tables first (`bronze.record_tables`)."""
    frames: dict[str, pl.DataFrame] = {}
    ids = None if records is None else pl.Series("id", sorted(records), dtype=pl.String)
    for table in tables:
        assert table.records is not None
        if ids is None:
            frames[table.ref] = _read(lake, table)
            continue
        attachment = table.records.attachment
        wanted = _suffixes(ids, table.node_prefix())
        if attachment is not None:
            assert table.main_ref is not None
            flt = attachment.rows_of(frames[table.main_ref], wanted)
        elif table.schema().get("id") == pl.Int64:
            # An integer id filters as itself (no string formatting of every row).
            wanted_int = wanted.cast(pl.Int64, strict=False).drop_nulls()
            flt = pl.col("id").is_in(wanted_int.implode())
        else:
            flt = table.records.record_id().is_in(wanted.implode())
        frames[table.ref] = _read(lake, table, filter_=flt)
    return frames


def _suffixes(ids: pl.Series, prefix: str) -> pl.Series:
    return ids.filter(ids.str.starts_with(prefix)).str.slice(len(prefix))


# ---------------------------------------------------------------------------- the build


def _with_bucket(frame: pl.DataFrame, key: str, offset: int = 0) -> pl.DataFrame:
    return frame.with_columns(bucket_of(pl.col(key)) + offset)


# Nodes: entity nodes in buckets 0..15, value and named-entity nodes in 16..31, so a day
# that updates entity nodes never rewrites the (append-mostly) value nodes.
VALUE_NODE_BUCKETS = BUCKETS


def _keys(ids: set[str], name: str) -> pl.Series:
    return pl.Series(name, sorted(ids), dtype=pl.String)


def _existing_direct_merges(lake: Path) -> pl.DataFrame:
    path = layout.silver_table(lake, FIELD_CHANGES)
    if not delta.table_exists(path):
        return pl.DataFrame(schema=FIELD_CHANGES_SCHEMA)
    return (pl.scan_delta(str(path)).filter(pl.col("attribute") == "mergedInto")
            .select(list(FIELD_CHANGES_SCHEMA)).collect())


def _display_specs(tables: tuple[TableSpec, ...]) -> dict[str, dict]:
    return {t.ref: {"display": t.records.display, "created": t.records.created,
                    "prefix": t.node_prefix(), "record_id": t.records.record_id,
                    "record_time": t.silver_record_time, "deleted": t.records.deleted,
                    "entity_type": t.records.entity_type}
            for t in tables if t.records is not None and t.main_ref is None}


def _upsert_first_seen(lake: Path, fresh: pl.DataFrame) -> pl.DataFrame:
    """Value and named-entity nodes keep the earliest created_at ever seen."""
    path = layout.silver_table(lake, NODES)
    if fresh.height == 0 or not delta.table_exists(path):
        return fresh
    old = (pl.scan_delta(str(path))
           .filter(pl.col("node_id").is_in(fresh.get_column("node_id").implode()))
           .select(fresh.columns).collect())
    return _first_seen([fresh, old.cast(dict(fresh.schema))])  # type: ignore[arg-type]


@dataclass
class _Chunk:
    changes: pl.DataFrame
    relationships: pl.DataFrame
    entities: pl.DataFrame
    first_seen: pl.DataFrame  # value and named-entity nodes: created_at = first seen


def _compute(bronze: dict[str, pl.DataFrame], registry: Registry, tables: tuple[TableSpec, ...],
             old_merges: pl.DataFrame | None, touched: set[str] | None,
             echoes: pl.DataFrame | None = None) -> _Chunk:
    """Pure: bronze rows of some records -> their silver rows (with buckets). `echoes`:
    what syncs wrote into sources (`silver/echo.py`)."""
    changes = field_changes(bronze, registry, tables)
    changes = graph.with_targets(changes)
    edges = graph.attribute_edges(echo.mark(changes, echoes) if echoes is not None else changes,
                                  registry.kinds())
    direct = graph.direct_merges(changes)
    if old_merges is not None and touched is not None:
        # Chains run through records not recomputed now: their known direct merges.
        direct = pl.concat([old_merges.filter(~pl.col("record_node_id").is_in(list(touched))),
                            direct])
    merged = graph.merge_edges(direct, touched)
    relationships = pl.concat([edges.cast(dict(graph.RELATIONSHIPS_SCHEMA)),  # type: ignore[arg-type]
                               merged])
    del edges
    with_records = {(t.source, t.records.entity_type) for t in tables if t.records}
    first_seen = pl.concat([graph.value_nodes(changes),
                            graph.named_entity_nodes(changes, with_records)])
    return _Chunk(changes=_with_bucket(changes.drop("_target"), "record_node_id"),
                  relationships=_with_bucket(relationships, "record_node_id"),
                  entities=_with_bucket(graph.entity_nodes(bronze, _display_specs(tables)),
                                        "node_id"),
                  first_seen=first_seen)


def _first_seen(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """One row per node: the one with the earliest created_at."""
    both = pl.concat(parts)
    # A node's other columns are functions of its id (type, value) or equal across its
    # rows; only created_at varies.
    return (both.group_by("node_id")
            .agg(pl.col("created_at").min(), pl.all().exclude("created_at").first())
            .select(both.columns))


def _orphaned_values(lake: Path, removed: pl.DataFrame, added: pl.DataFrame) -> pl.Series:
    """Value nodes that lost their last edge: targets of removed edges (a record deleted
    or erased, history rewritten) that no edge reaches now. A full build has no node
    for a value no change holds; shared values keep their node."""
    lost = removed.select("target_node_id").unique().join(
        added.select("target_node_id"), on="target_node_id", how="anti")
    lost = lost.filter(~pl.col("target_node_id").str.contains(":"))  # entity nodes stay
    if lost.height == 0:
        return pl.Series("node_id", [], dtype=pl.String)
    held = (pl.scan_delta(str(layout.silver_table(lake, RELATIONSHIPS)))
            .filter(pl.col("target_node_id").is_in(lost.get_column("target_node_id").implode()))
            .select("target_node_id").unique().collect())
    return lost.join(held, on="target_node_id", how="anti").get_column(
        "target_node_id").alias("node_id")


def _add(counts: dict[str, int], name: str, n: int) -> None:
    counts[name] = counts.get(name, 0) + n


def up_to_date(lake: Path, tables: tuple[TableSpec, ...]) -> bool:
    """Whether a silver run now would be a no-op: silver as its last run left it, every
    table there, and bronze at the versions that run read."""
    return (watermark_state(lake) == "clean"
            and all(delta.table_exists(layout.silver_table(lake, n)) for n in TABLE_NAMES)
            and load_watermark(lake) == bronze_versions(lake, tables))


def build_silver(lake: Path, registry: Registry, tables: tuple[TableSpec, ...], *,
                 full: bool = False, progress: Callable[[str], None] = log.info) -> SilverReport:
    """Bring the silver tables up to date with bronze (see the module docstring).
    `tables`: the record tables of the sources read (`bronze.record_tables`)."""
    t0 = time.perf_counter()
    lake = Path(lake)
    versions = bronze_versions(lake, tables)
    state = watermark_state(lake)
    if state == "interrupted":
        progress("silver: the previous run ended part-way (a silver table changed after "
                 "its watermark): recomputing every record touched since the watermark")
    elif state == "inconsistent":
        progress("silver: a silver table is older than its watermark or gone: rebuilding "
                 "in full")
    watermark = None if full or state == "inconsistent" else load_watermark(lake)
    have_tables = all(delta.table_exists(layout.silver_table(lake, n)) for n in TABLE_NAMES)
    touched = (changed_records(lake, watermark, versions, tables)
               if watermark is not None and have_tables else None)
    if touched is not None and not touched:
        if versions != watermark or state != "clean":
            save_watermark(lake, versions)
        return SilverReport(mode="no-op", watermark=versions,
                            versions={n: delta.table_version(layout.silver_table(lake, n))
                                      for n in TABLE_NAMES},
                            committed=dict.fromkeys(TABLE_NAMES, False),
                            seconds=time.perf_counter() - t0)
    if touched is None:
        report = _full_build(lake, registry, tables, progress, t0)
    else:
        report = _incremental(lake, registry, tables, touched, progress, t0)
    for name in TABLE_NAMES:
        report.versions[name] = delta.table_version(layout.silver_table(lake, name))
    save_watermark(lake, versions)
    report.watermark = versions
    report.seconds = time.perf_counter() - t0
    return report


def _full_build(lake: Path, registry: Registry, tables: tuple[TableSpec, ...],
                progress: Callable[[str], None], t0: float) -> SilverReport:
    """Every record, one source system at a time (peak memory: the largest source)."""
    layout.silver_watermarks(lake).unlink(missing_ok=True)  # a crash means: full again
    report = SilverReport(mode="full")
    first_seen: list[pl.DataFrame] = []
    # One writer thread: a source's rows are written while the next source is computed.
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: list = []
        for i, source in enumerate(dict.fromkeys(t.source for t in tables)):
            mine = tuple(t for t in tables if t.source == source)
            bronze = {t.ref: _read(lake, t) for t in mine}
            sources.check_registry(registry, tables,
                                   {t.key: bronze[t.ref].schema for t in mine}, source)
            chunk = _compute(bronze, registry, tables, None, None,
                             echo.read_echoes(lake, {source}))
            del bronze
            report.changes_emitted += chunk.changes.height
            current = int(chunk.relationships.get_column("is_current").sum())
            report.edges_opened += current
            report.edges_closed += chunk.relationships.height - current
            report.records_touched += chunk.entities.height
            for name, frame in ((FIELD_CHANGES, chunk.changes),
                                (RELATIONSHIPS, chunk.relationships), (NODES, chunk.entities)):
                _add(report.rows_added, name, frame.height)
            for future in pending:  # the previous source's writes, before these append
                future.result()
                failpoints.reached("silver.table_written")
            pending = [writer.submit(delta.write_rows, layout.silver_table(lake, name), frame,
                                     append=i > 0)
                       for name, frame in ((FIELD_CHANGES, chunk.changes),
                                           (RELATIONSHIPS, chunk.relationships),
                                           (NODES, chunk.entities))]
            first_seen.append(chunk.first_seen)
            progress(f"silver: {source}: {chunk.changes.height:,} field changes, "
                     f"{chunk.relationships.height:,} edges, {chunk.entities.height:,} records "
                     f"({time.perf_counter() - t0:.1f}s)")
            del chunk
        for future in pending:
            future.result()
    report.committed.update(dict.fromkeys(TABLE_NAMES, True))
    values = _with_bucket(_first_seen(first_seen), "node_id", VALUE_NODE_BUCKETS)
    _add(report.rows_added, NODES, values.height)
    delta.write_rows(layout.silver_table(lake, NODES), values, append=True)
    progress(f"silver: {values.height:,} value nodes ({time.perf_counter() - t0:.1f}s)")
    return report


def _incremental(lake: Path, registry: Registry, tables: tuple[TableSpec, ...],
                 touched: set[str], progress: Callable[[str], None], t0: float) -> SilverReport:
    """Recompute the touched records in full and replace exactly their rows."""
    old_merges = graph.direct_merges(_existing_direct_merges(lake))
    touched |= graph.merge_dependents(old_merges, touched)
    progress(f"silver: {len(touched):,} records touched since the last run")
    bronze = read_bronze(lake, touched, tables)
    progress(f"silver: read {sum(f.height for f in bronze.values()):,} bronze rows "
             f"({time.perf_counter() - t0:.1f}s)")
    sources.check_registry(registry, tables, {t.key: bronze[t.ref].schema for t in tables})
    chunk = _compute(bronze, registry, tables, old_merges, touched, echo.read_echoes(lake))
    report = SilverReport(mode="incremental", records_touched=len(touched),
                          changes_emitted=chunk.changes.height)
    first_seen = _with_bucket(chunk.first_seen, "node_id", VALUE_NODE_BUCKETS)
    first_seen = _upsert_first_seen(lake, first_seen)
    nodes = pl.concat([chunk.entities, first_seen])
    record_keys = _keys(touched, "record_node_id")
    node_keys = pl.concat([_keys(touched, "node_id"), nodes.get_column("node_id")]).unique()
    orphans = pl.Series("node_id", [], dtype=pl.String)
    for name, frame, keys, key in (
            (FIELD_CHANGES, chunk.changes, record_keys, "record_node_id"),
            (RELATIONSHIPS, chunk.relationships, record_keys, "record_node_id"),
            (NODES, nodes, node_keys, "node_id")):
        if name == NODES:  # value nodes the touched records' edges no longer reach go
            keys = pl.concat([keys, orphans]).unique()
        result = delta.replace_keyed_rows(layout.silver_table(lake, name), frame, key=key,
                                          keys=keys)
        if name == RELATIONSHIPS:
            orphans = _orphaned_values(lake, result.removed, result.added)
            report.nodes_orphaned = orphans.len()
        if name in change_log.LOGGED:  # what gold re-resolves
            change_log.append(lake, name, result.versions, pl.concat(
                [result.added.get_column(key), result.removed.get_column(key)]))
        failpoints.reached("silver.table_written")
        version = result.version
        report.committed[name] = version is not None
        report.rows_added[name] = result.added.height
        report.rows_removed[name] = result.removed.height
        if name == RELATIONSHIPS:
            report.edges_opened = int(result.added.get_column("is_current").sum())
            report.edges_closed = int(result.removed.get_column("is_current").sum())
        progress(f"silver: {name} " + ("unchanged" if version is None else f"-> version {version}")
                 + f" ({time.perf_counter() - t0:.1f}s)")
    return report
