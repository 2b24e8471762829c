"""Dagster assets for silver: field changes and the attribute graph (one multi-asset).

The asset function only calls `build.build_silver` (pure transforms + Delta writes)
and reports. It depends on every bronze table; a run reads only what bronze changed
since the last silver run (its watermark) and rewrites only the touched records' rows.
"""

import dagster as dg

from c360_assets.bronze import SOURCES
from c360_assets.bronze.assets import OWNERS, bronze_key
from c360_assets.lib import delta
from c360_assets.lib.registry import load_registry
from c360_assets.resources import C360Paths
from c360_assets.silver import build

FIELD_CHANGES_KEY = dg.AssetKey(["silver", build.FIELD_CHANGES])
NODES_KEY = dg.AssetKey(["silver", build.NODES])
RELATIONSHIPS_KEY = dg.AssetKey(["silver", build.RELATIONSHIPS])
SILVER_POOL = "delta_silver"

DESCRIPTIONS = {
    FIELD_CHANGES_KEY: (
        "One row per source record, canonical attribute and change: raw and normalised "
        "value, the field's own change time (Tier 2 snapshot diffs, Tier 1 event times), "
        "its precision and tier, and where it came from (system, table, record, event, "
        "_fivetran_synced, landing file and line). A re-sync that repeats unchanged values "
        "emits nothing."),
    NODES_KEY: (
        "Graph nodes: value nodes (sha256 of type and normalised value, shared by every "
        "record holding the value) and entity nodes per source record "
        "(<type>:<source>:<record id>: customers, companies, assets) with display fields."),
    RELATIONSHIPS_KEY: (
        "Graph edges, SCD-2 per (record, rel_type, source_system): HAS_<ATTRIBUTE> edges "
        "to value nodes, WORKS_AT customer->company, OWNS company->asset and MERGED_INTO "
        "(Salesforce merges, to the final master of a chain). Exactly one current edge per "
        "key; history kept with valid_from/valid_to; deletes close edges."),
}


def build_silver_asset() -> dg.AssetsDefinition:
    deps = [bronze_key(t) for s in SOURCES for t in s.tables]
    specs = [dg.AssetSpec(key, deps=deps, description=DESCRIPTIONS[key], group_name="silver",
                          kinds={"polars", "delta"}, owners=OWNERS,
                          tags={"layer": "silver"})
             for key in (FIELD_CHANGES_KEY, NODES_KEY, RELATIONSHIPS_KEY)]

    @dg.multi_asset(name="silver_graph", specs=specs, pool=SILVER_POOL, can_subset=False)
    def silver_graph(context: dg.AssetExecutionContext, c360: C360Paths):
        """Field-level changes and the SCD-2 attribute graph, built incrementally."""
        report = build.build_silver(c360.lake, load_registry(), progress=context.log.info)
        common = {
            "mode": report.mode,
            "records_touched": report.records_touched,
            "watermark": dg.MetadataValue.json(report.watermark),
            "seconds": round(report.seconds, 2),
        }
        per_table = {
            FIELD_CHANGES_KEY: {"changes_emitted": report.changes_emitted},
            RELATIONSHIPS_KEY: {"edges_opened": report.edges_opened,
                                "edges_closed": report.edges_closed},
            NODES_KEY: {},
        }
        for key, name in ((FIELD_CHANGES_KEY, build.FIELD_CHANGES), (NODES_KEY, build.NODES),
                          (RELATIONSHIPS_KEY, build.RELATIONSHIPS)):
            path = build.silver_path(c360.lake, name)
            yield dg.MaterializeResult(asset_key=key, metadata={
                **common, **per_table[key],
                "rows_written": report.rows_added.get(name, 0),
                "rows_removed": report.rows_removed.get(name, 0),
                "dagster/row_count": delta.row_count(path) if delta.table_exists(path) else 0,
                "delta_version": report.versions.get(name),
                "new_commit": report.committed.get(name, False),
                "path": dg.MetadataValue.path(str(path)),
            })

    return silver_graph
