"""Build the silver tables from bronze, incrementally.

A run reads what bronze changed since its watermark (Delta Change Data Feed from the
bronze versions of the last run), finds the source records touched (plus merged
Salesforce contacts whose merge chain passes through one), reads *all* bronze rows of
those records, recomputes their full history (`field_changes`, then the graph), and
replaces exactly those records' rows in the silver tables. Silver tables are
partitioned by a hash bucket of the record (or node) id; a run rewrites only buckets
whose content changed, so re-running with nothing new commits nothing.

The watermark (`<lake>/silver/_watermarks.json`: bronze table -> Delta version) is
written after the three tables; a run that dies in between recomputes the same records
next time and writes the same rows. No watermark, a missing silver table, or a bronze
history no longer readable through CDF means a full rebuild.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from c360_assets.lib import delta
from c360_assets.lib.hashing import bucket_of
from c360_assets.lib.registry import Registry
from c360_assets.silver import graph, sources
from c360_assets.silver.field_changes import FIELD_CHANGES_SCHEMA, field_changes

log = logging.getLogger(__name__)

FIELD_CHANGES = "field_changes"
NODES = "nodes"
RELATIONSHIPS = "relationships"
TABLE_NAMES = (FIELD_CHANGES, NODES, RELATIONSHIPS)
WATERMARK_FILE = "_watermarks.json"
WATERMARK_FORMAT = 1

SORT = {
    FIELD_CHANGES: ["record_node_id", "attribute", "field_time", "record_time",
                    "fivetran_synced", "landing_date", "source_file", "source_line"],
    RELATIONSHIPS: ["record_node_id", "rel_type", "version"],
    NODES: ["node_id"],
}


@dataclass
class SilverReport:
    mode: str  # full | incremental | no-op
    records_touched: int = 0
    changes_emitted: int = 0
    edges_written: int = 0
    edges_current: int = 0
    edges_closed: int = 0
    nodes_written: int = 0
    versions: dict[str, int | None] = field(default_factory=dict)  # silver table -> version
    committed: dict[str, bool] = field(default_factory=dict)  # did this run commit to it
    watermark: dict[str, int] = field(default_factory=dict)  # bronze table -> version
    seconds: float = 0.0


def silver_path(lake: Path, name: str) -> Path:
    return lake / "silver" / name


def bronze_path(lake: Path, table: sources.RecordTable) -> Path:
    return lake / "bronze" / table.bronze_key


# ---------------------------------------------------------------------------- watermarks


def load_watermark(lake: Path) -> dict[str, int] | None:
    path = lake / "silver" / WATERMARK_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("unreadable silver watermark %s: rebuilding silver in full", path)
        return None
    if data.get("format") != WATERMARK_FORMAT:
        return None
    return {str(k): int(v) for k, v in data.get("bronze_versions", {}).items()}


def save_watermark(lake: Path, versions: dict[str, int]) -> None:
    path = lake / "silver" / WATERMARK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": WATERMARK_FORMAT, "bronze_versions": versions},
                              indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def bronze_versions(lake: Path) -> dict[str, int]:
    out = {}
    for table in sources.TABLES:
        version = delta.table_version(bronze_path(lake, table))
        if version is not None:
            out[table.bronze_key] = version
    return out


# ---------------------------------------------------------------------------- touched records


def _record_ids(table: sources.RecordTable, rows: pl.DataFrame, lake: Path) -> pl.Series:
    if table.key == "sap/adr6":
        kna1 = _read(lake, sources.TABLES_BY_KEY["sap/kna1"], columns=["mandt", "kunnr", "adrnr"])
        addr = rows.select(pl.format("{}:{}", "client", "addrnumber").alias("_addr")).unique()
        owners = kna1.select(pl.format("{}:{}", "mandt", "adrnr").alias("_addr"),
                             pl.format("customer:sap:{}:{}", "mandt", "kunnr").alias("id"))
        return addr.join(owners, on="_addr").get_column("id").unique()
    if table.key == "shopify/customer_address":
        return rows.select(pl.format("customer:shopify:{}", "customer_id")).to_series().unique()
    return rows.select(pl.lit(table.node_prefix()) + table.record_id()).to_series().drop_nulls(
        ).unique()


def changed_records(lake: Path, watermark: dict[str, int], versions: dict[str, int]
                    ) -> set[str] | None:
    """Record node ids touched in bronze since `watermark`; None when only a full
    rebuild can tell (a table's CDF range is gone)."""
    touched: set[str] = set()
    for table in sources.TABLES:
        key = table.bronze_key
        if key not in versions:
            continue
        since = watermark.get(key, -1)
        if versions[key] <= since:
            continue
        try:
            reader = DeltaTable(str(bronze_path(lake, table))).load_cdf(
                starting_version=since + 1, columns=list(table.key_columns))
            rows = pl.from_arrow(reader.read_all())
        except Exception as exc:  # noqa: BLE001 - any CDF gap means: rebuild
            log.warning("no change feed for %s since version %d (%s): full rebuild", key,
                        since, exc)
            return None
        if isinstance(rows, pl.Series):
            rows = rows.struct.unnest()
        touched.update(_record_ids(table, rows, lake).to_list())
    return touched


# ---------------------------------------------------------------------------- reading bronze


def _read(lake: Path, table: sources.RecordTable, columns: list[str] | None = None,
          filter_: pl.Expr | None = None) -> pl.DataFrame:
    path = bronze_path(lake, table)
    if not delta.table_exists(path):
        from c360_assets.bronze import SOURCES_BY_NAME
        spec = next(t for t in SOURCES_BY_NAME[table.source].tables if t.name == table.table)
        empty = pl.DataFrame(schema=spec.schema())
        return empty.select(columns) if columns else empty
    scan = pl.scan_delta(str(path))
    if filter_ is not None:
        scan = scan.filter(filter_)
    if columns:
        scan = scan.select(columns)
    return scan.collect()


def read_bronze(lake: Path, records: set[str] | None) -> dict[str, pl.DataFrame]:
    """All bronze rows of `records` (every row when None), by `source/table`."""
    frames: dict[str, pl.DataFrame] = {}
    ids = None if records is None else pl.Series("id", sorted(records), dtype=pl.String)
    for table in sources.TABLES:
        if ids is None:
            frames[table.key] = _read(lake, table)
            continue
        if table.key == "sap/adr6":
            kna1 = frames["sap/kna1"]
            addrs = kna1.select(pl.format("{}:{}", "mandt", "adrnr")).to_series().unique()
            frames[table.key] = _read(lake, table, filter_=pl.format(
                "{}:{}", "client", "addrnumber").is_in(addrs.implode()))
        elif table.key == "shopify/customer_address":
            wanted = _suffixes(ids, "customer:shopify:").cast(pl.Int64, strict=False).drop_nulls()
            frames[table.key] = _read(lake, table,
                                      filter_=pl.col("customer_id").is_in(wanted.implode()))
        else:
            wanted = _suffixes(ids, table.node_prefix())
            record_id = table.record_id()
            if table.key in ("shopify/customer", "zendesk/user", "zendesk/organization"):
                wanted_int = wanted.cast(pl.Int64, strict=False).drop_nulls()
                flt = pl.col("id").is_in(wanted_int.implode())
            else:
                flt = record_id.is_in(wanted.implode())
            frames[table.key] = _read(lake, table, filter_=flt)
    return frames


def _suffixes(ids: pl.Series, prefix: str) -> pl.Series:
    return ids.filter(ids.str.starts_with(prefix)).str.slice(len(prefix))


# ---------------------------------------------------------------------------- the build


def _with_bucket(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    return frame.with_columns(bucket_of(frame.get_column(key)))


def _keys(ids: set[str], name: str) -> pl.DataFrame:
    frame = pl.DataFrame({name: sorted(ids)}, schema={name: pl.String})
    return _with_bucket(frame, name)


def _existing_direct_merges(lake: Path) -> pl.DataFrame:
    path = silver_path(lake, FIELD_CHANGES)
    if not delta.table_exists(path):
        return pl.DataFrame(schema=FIELD_CHANGES_SCHEMA)
    return (pl.scan_delta(str(path)).filter(pl.col("attribute") == "mergedInto")
            .select(list(FIELD_CHANGES_SCHEMA)).collect())


def _display_specs() -> dict[str, dict]:
    return {t.key: {"display": t.display, "created": t.created, "prefix": t.node_prefix(),
                    "record_id": t.record_id, "record_time": t.record_time,
                    "deleted": t.deleted, "entity_type": t.entity_type}
            for t in sources.TABLES if t.main is None}


def _upsert_first_seen(lake: Path, fresh: pl.DataFrame) -> pl.DataFrame:
    """Value / SAP company nodes keep the earliest created_at ever seen."""
    path = silver_path(lake, NODES)
    if fresh.height == 0 or not delta.table_exists(path):
        return fresh
    old = delta.read_partitions(path, "bucket", sorted(set(fresh.get_column("bucket"))))
    old = old.join(fresh.select("node_id"), on="node_id", how="semi").select(fresh.columns)
    both = pl.concat([fresh, old.cast(dict(fresh.schema))])  # type: ignore[arg-type]
    return both.sort("node_id", "created_at").group_by("node_id", maintain_order=True).agg(
        pl.all().first()).select(fresh.columns)


def build_silver(lake: Path, registry: Registry, *, full: bool = False,
                 progress: Callable[[str], None] = log.info) -> SilverReport:
    t0 = time.perf_counter()
    lake = Path(lake)
    versions = bronze_versions(lake)
    watermark = None if full else load_watermark(lake)
    have_tables = all(delta.table_exists(silver_path(lake, n)) for n in TABLE_NAMES)
    touched = (changed_records(lake, watermark, versions)
               if watermark is not None and have_tables else None)
    if touched is not None and not touched:
        if versions != watermark:
            save_watermark(lake, versions)
        return SilverReport(mode="no-op", watermark=versions,
                            versions={n: delta.table_version(silver_path(lake, n))
                                      for n in TABLE_NAMES},
                            committed=dict.fromkeys(TABLE_NAMES, False),
                            seconds=time.perf_counter() - t0)
    old_merges = None
    if touched is not None:
        old_merges = graph.direct_merges(_existing_direct_merges(lake))
        touched |= graph.merge_dependents(old_merges, touched)
        progress(f"silver: {len(touched):,} records touched since the last run")
    else:
        progress("silver: full build")
    bronze = read_bronze(lake, touched)
    progress(f"silver: read {sum(f.height for f in bronze.values()):,} bronze rows "
             f"({time.perf_counter() - t0:.1f}s)")
    sources.check_registry(registry, {sources.TABLES_BY_KEY[k].bronze_key: f.schema
                                      for k, f in bronze.items()})
    changes, snaps = field_changes(bronze, registry)
    progress(f"silver: {changes.height:,} field changes ({time.perf_counter() - t0:.1f}s)")

    node_ids = graph.value_node_ids(changes)
    edges = graph.attribute_edges(changes, node_ids)
    direct = graph.direct_merges(changes)
    if old_merges is not None:
        direct = pl.concat([old_merges.join(direct.select("record_node_id").unique(),
                                            on="record_node_id", how="anti")
                            .filter(~pl.col("record_node_id").is_in(list(touched))), direct])
    merged = graph.merge_edges(direct, touched)
    relationships = pl.concat([edges.cast(dict(graph.RELATIONSHIPS_SCHEMA)),  # type: ignore[arg-type]
                               merged])
    entities = graph.entity_nodes(bronze, _display_specs())
    first_seen = pl.concat([graph.value_nodes(changes, node_ids), graph.sap_company_nodes(changes)])
    progress(f"silver: {relationships.height:,} edges, {entities.height + first_seen.height:,} "
             f"nodes ({time.perf_counter() - t0:.1f}s)")

    changes = _with_bucket(changes, "record_node_id")
    relationships = _with_bucket(relationships, "record_node_id")
    first_seen = _with_bucket(first_seen, "node_id")
    entities = _with_bucket(entities, "node_id")
    if touched is not None:
        first_seen = _upsert_first_seen(lake, first_seen)
    nodes = pl.concat([entities, first_seen])
    record_keys = None if touched is None else _keys(touched, "record_node_id")
    node_keys = None if touched is None else pl.concat([
        _keys(touched, "node_id"), nodes.select("node_id", "bucket")]).unique()
    report = SilverReport(mode="full" if touched is None else "incremental",
                          records_touched=len(touched) if touched is not None else
                          sum(s.select("record_node_id").n_unique() for s in snaps.values()),
                          changes_emitted=changes.height, edges_written=relationships.height,
                          edges_current=int(relationships.get_column("is_current").sum()),
                          edges_closed=int((~relationships.get_column("is_current")).sum()),
                          nodes_written=nodes.height)
    for name, frame, keys, key in ((FIELD_CHANGES, changes, record_keys, "record_node_id"),
                                   (RELATIONSHIPS, relationships, record_keys, "record_node_id"),
                                   (NODES, nodes, node_keys, "node_id")):
        version = delta.replace_keyed_rows(silver_path(lake, name), frame, key=key, keys=keys,
                                           sort_by=SORT[name])
        report.committed[name] = version is not None
        report.versions[name] = delta.table_version(silver_path(lake, name))
        progress(f"silver: {name} " + ("unchanged" if version is None else f"-> version {version}")
                 + f" ({time.perf_counter() - t0:.1f}s)")
    save_watermark(lake, versions)
    report.watermark = versions
    report.seconds = time.perf_counter() - t0
    return report
