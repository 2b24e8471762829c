"""Dagster assets for silver: field changes and the attribute graph (one multi-asset).

The asset function only calls `build.build_silver` (pure transforms + Delta writes)
and reports. It depends on every bronze table; a run reads only what bronze changed
since the last silver run (its watermark) and rewrites only the touched records' rows.
"""

import dagster as dg
import polars as pl

from c360_assets.bronze import record_tables
from c360_assets.bronze.assets import OWNERS, bronze_key
from c360_assets.bronze.contract import SourceSpec
from c360_assets.lib import delta, layout
from c360_assets.lib.config import C360Config
from c360_assets.lib.registry import Registry
from c360_assets.ops.automation import FOLLOW_UPSTREAM
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


def build_silver_asset(sources: tuple[SourceSpec, ...], registry: Registry
                       ) -> dg.AssetsDefinition:
    deps = [bronze_key(t) for s in sources for t in s.tables]
    tables = record_tables(sources)
    specs = [dg.AssetSpec(key, deps=deps, description=DESCRIPTIONS[key], group_name="silver",
                          kinds={"polars", "delta"}, owners=OWNERS,
                          tags={"layer": "silver"}, automation_condition=FOLLOW_UPSTREAM)
             for key in (FIELD_CHANGES_KEY, NODES_KEY, RELATIONSHIPS_KEY)]

    @dg.multi_asset(name="silver_graph", specs=specs, pool=SILVER_POOL, can_subset=False)
    def silver_graph(context: dg.AssetExecutionContext, c360: C360Paths):
        """Field-level changes and the SCD-2 attribute graph, built incrementally."""
        with c360.writer(context):
            report = build.build_silver(c360.lake, registry, tables, progress=context.log.info)
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
            path = layout.silver_table(c360.lake, name)
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


IDENTITY_KEY = dg.AssetKey(["silver", "identity"])
IDENTITY_EVENTS_KEY = dg.AssetKey(["silver", "identity_events"])
IDENTITY_POOL = "delta_identity"
CLUSTER_SIZE_CHECK = "largest_person_within_alarm"

IDENTITY_DESCRIPTIONS = {
    IDENTITY_KEY: (
        "One row per customer record (entity node): the person it belongs to, the rule "
        "that holds it there (salesforce_merge, email, phone, anonymous_id, "
        "probabilistic, singleton), confidence and the evidence. Deterministic links from "
        "shared identifying values, guarded against role mailboxes, shared and contested "
        "values; Splink links for the rest, guarded against chaining. Person ids derive "
        "from the oldest record: stable across runs and landing orders. "
        "`c360 explain` says why two records are (not) one person."),
    IDENTITY_EVENTS_KEY: (
        "Append-only log of person merges (MERGED_INTO: the absorbed person id into the "
        "surviving one) and splits (SPLIT: records leaving a person that keeps its id), "
        "one row per (from, to) pair and run."),
}


def build_identity_asset(config: C360Config, registry: Registry) -> dg.AssetsDefinition:
    from c360_assets.silver import identity_build
    from c360_assets.silver.identity import Inputs
    from c360_assets.silver.identity_model import load_model

    specs = [dg.AssetSpec(key, deps=[NODES_KEY, RELATIONSHIPS_KEY],
                          description=IDENTITY_DESCRIPTIONS[key], group_name="silver",
                          kinds={"splink", "duckdb", "delta"}, owners=OWNERS,
                          tags={"layer": "silver"}, automation_condition=FOLLOW_UPSTREAM)
             for key in (IDENTITY_KEY, IDENTITY_EVENTS_KEY)]
    check = dg.AssetCheckSpec(
        CLUSTER_SIZE_CHECK, asset=IDENTITY_KEY,
        description="No person holds more records than `identity.cluster_size_alarm`, and "
                    "the largest person did not grow by more than "
                    "`identity.cluster_jump_alarm` times since the previous run (an "
                    "over-merge: a shared value slipping past the guards).")

    settings = config.identity
    attributes = Inputs.of(registry)

    @dg.multi_asset(name="silver_identity", specs=specs, check_specs=[check],
                    pool=IDENTITY_POOL, can_subset=False)
    def silver_identity(context: dg.AssetExecutionContext, c360: C360Paths):
        """People from source records: deterministic and probabilistic links, guards,
        stable person ids; re-scores only pairs whose records changed."""
        with c360.writer(context):
            report = identity_build.build_identity(c360.lake, settings, load_model(lake=c360.lake),
                                                   attributes,
                                                   progress=context.log.info)
        common = {
            "mode": report.mode,
            "persons": report.persons,
            "records": report.records,
            "records_touched": report.records_touched,
            "records_reassigned": report.records_reassigned,
            "merges": report.merges,
            "splits": report.splits,
            "largest_cluster": report.largest_cluster,
            "links_by_rule": dg.MetadataValue.json(report.links_by_rule),
            "guarded_values": dg.MetadataValue.json(report.guarded_values),
            "cluster_sizes": dg.MetadataValue.json(report.cluster_sizes),
            "pairs_scored": report.pairs_scored,
            "pairs_reused": report.pairs_reused,
            "held_pairs": report.held_pairs,
            "refused_links": report.refused_links,
            "threshold_match_weight": report.threshold,
            "seconds": round(report.seconds, 2),
        }
        written = {IDENTITY_KEY: report.records_reassigned,  # identity rows rewritten
                   IDENTITY_EVENTS_KEY: report.merges + report.splits}  # events appended
        for key, name in ((IDENTITY_KEY, identity_build.IDENTITY),
                          (IDENTITY_EVENTS_KEY, identity_build.EVENTS)):
            p = layout.silver_table(c360.lake, name)
            yield dg.MaterializeResult(asset_key=key, metadata={
                **common,
                "rows_written": written[key],
                "dagster/row_count": delta.row_count(p) if delta.table_exists(p) else 0,
                "delta_version": report.versions.get(name),
                "path": dg.MetadataValue.path(str(p)),
            })
        previous = report.previous_largest_cluster
        identity_path = layout.silver_table(c360.lake, identity_build.IDENTITY)
        sizes = (pl.scan_delta(str(identity_path)).group_by("person_id")
                 .agg(pl.len().alias("records"), pl.col("rule").mode().first().alias("rule"))
                 .filter(pl.col("records") > 1).collect()
                 if delta.table_exists(identity_path)
                 else pl.DataFrame(schema={"person_id": pl.String, "records": pl.UInt32,
                                           "rule": pl.String}))
        largest = sizes.sort(["records", "person_id"], descending=[True, False]).head(20)
        too_big = report.largest_cluster > settings.cluster_size_alarm
        jumped = (previous is not None and report.mode != "no-op"
                  and report.largest_cluster > previous * settings.cluster_jump_alarm)
        yield dg.AssetCheckResult(
            check_name=CLUSTER_SIZE_CHECK, asset_key=IDENTITY_KEY,
            passed=not (too_big or jumped), severity=dg.AssetCheckSeverity.WARN,
            metadata={"largest_cluster": report.largest_cluster,
                      "previous_largest_cluster": previous,
                      "alarm_size": settings.cluster_size_alarm,
                      "alarm_jump": settings.cluster_jump_alarm,
                      "cluster_sizes": dg.MetadataValue.json(report.cluster_sizes),
                      "persons_over_alarm": sizes.filter(
                          pl.col("records") > settings.cluster_size_alarm).height,
                      "largest_persons": dg.MetadataValue.md("\n".join(
                          f"* `{r['person_id']}`: {r['records']} records (mostly {r['rule']})"
                          for r in largest.iter_rows(named=True)) or "_none_"),
                      "reproduce": dg.MetadataValue.md(
                          "`c360 explain <person_id>` on a person above; sizes:\n\n```sql\n"
                          "SELECT person_id, count(*) AS records\n"
                          f"FROM delta_scan('{identity_path}')\nGROUP BY 1 ORDER BY 2 DESC "
                          "LIMIT 20\n```")})

    return silver_identity
