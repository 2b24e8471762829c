"""Asset checks that watch the lake as a whole (not a by-product of one write).

* `no_duplicate_current_edges` on silver/relationships (blocking): exactly one current
  edge per SCD-2 key. Gold is not built on a graph that breaks it. It reads the whole
  table only when it must (`records_to_check`).
* `conflicts_within_trend` on gold/attribute_conflicts (warn): persons whose sources
  disagree on a current value, with the count, its trend against the previous
  evaluation and examples.

The by-product checks live with their assets: quarantine rate per landing day (bronze),
largest person and its jump (identity), dbt tests (gold). Data staleness is in
`freshness.py`. Every check's metadata says how many, shows up to 20 examples and gives
the query to reproduce.
"""

from pathlib import Path

import dagster as dg
import polars as pl
from deltalake import DeltaTable

from c360_assets.lib import change_log, delta, layout
from c360_assets.lib.config import C360Config
from c360_assets.ops import dagster_storage
from c360_assets.ops.automation import FOLLOW_UPSTREAM
from c360_assets.resources import C360Paths
from c360_assets.silver import build
from c360_assets.silver.assets import RELATIONSHIPS_KEY

DUPLICATE_EDGES_CHECK = "no_duplicate_current_edges"
EDGE_KEY = ("record_node_id", "rel_type", "source_system")  # silver's SCD-2 key
CONFLICTS_KEY = dg.AssetKey(["gold", "attribute_conflicts"])
CONFLICTS_CHECK = "conflicts_within_trend"
EXAMPLES = 20


def duplicate_current_edges(relationships: pl.LazyFrame) -> pl.DataFrame:
    """Keys with more than one current edge, worst first."""
    return (relationships.filter(pl.col("is_current"))
            .group_by(EDGE_KEY).agg(pl.len().alias("current_edges"))
            .filter(pl.col("current_edges") > 1)
            .sort(["current_edges", *EDGE_KEY], descending=[True, False, False, False])
            .collect())


def duplicate_edges_result(duplicates: pl.DataFrame, path: str,
                           extra: dict[str, object] | None = None) -> dg.AssetCheckResult:
    examples = duplicates.head(EXAMPLES)
    return dg.AssetCheckResult(
        asset_key=RELATIONSHIPS_KEY,
        check_name=DUPLICATE_EDGES_CHECK,
        passed=duplicates.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{duplicates.height} key(s) with more than one current edge"
                     if duplicates.height else None),
        metadata={
            "duplicate_keys": duplicates.height,
            "extra_current_edges": int((duplicates["current_edges"] - 1).sum())
            if duplicates.height else 0,
            "examples": dg.MetadataValue.md("\n".join(
                f"* `{r['record_node_id']}` {r['rel_type']} ({r['source_system']}): "
                f"{r['current_edges']} current edges" for r in examples.iter_rows(named=True))
                or "_none_"),
            "key": ", ".join(EDGE_KEY),
            "reproduce": dg.MetadataValue.md(
                "```sql\nSELECT record_node_id, rel_type, source_system, count(*) AS n\n"
                f"FROM delta_scan('{path}')\nWHERE is_current\nGROUP BY ALL HAVING n > 1\n"
                "ORDER BY n DESC\n```\n`c360 explain <record id>` shows the record's "
                "history."),
            **(extra or {}),
        },
    )


@dg.asset_check(
    asset=RELATIONSHIPS_KEY,
    name=DUPLICATE_EDGES_CHECK,
    blocking=True,
    description=("Exactly one current edge per SCD-2 key (record, rel_type, source_system). "
                 "Blocking: gold is not built from a graph that breaks it. After an "
                 "evaluation that passed, reads only the records silver wrote since (the "
                 "record change log); every record otherwise."),
    # Requested with silver by declarative automation, so it runs (and blocks) in that run.
    automation_condition=FOLLOW_UPSTREAM,
)
def no_duplicate_current_edges(context: dg.AssetCheckExecutionContext,
                               c360: C360Paths) -> dg.AssetCheckResult:
    path = layout.silver_table(c360.lake, build.RELATIONSHIPS)
    if not delta.table_exists(path):
        return dg.AssetCheckResult(passed=False, description=f"no table at {path}: run silver",
                                   metadata={"path": dg.MetadataValue.path(str(path))})
    version = delta.data_version(path)
    table_id = f"{path.resolve()} {DeltaTable(str(path)).metadata().id}"
    records = records_to_check(c360.lake, context.instance, table_id)
    edges = pl.scan_delta(str(path)).select("is_current", *EDGE_KEY)
    if records is not None:
        edges = edges.filter(pl.col("record_node_id").is_in(records.implode()))
    return duplicate_edges_result(duplicate_current_edges(edges), str(path), {
        CHECKED_VERSION: version, CHECKED_TABLE: table_id,
        "records_checked": "every record" if records is None else records.len()})


# The relationships data version an evaluation of `no_duplicate_current_edges` saw, and
# which table it was (its path and Delta table id: one Dagster instance may serve several
# lakes, and copies of one).
CHECKED_VERSION = "checked_version"
CHECKED_TABLE = "checked_table_id"


def records_to_check(lake: Path, instance: dg.DagsterInstance,
                     table_id: str) -> pl.Series | None:
    """The records whose edges `no_duplicate_current_edges` must look at: those silver
    wrote since the last evaluation that passed on this table (`table_id`: its path and
    Delta table id), found in the record change log; or None for every record (no such
    evaluation, another table, or the log cannot say: a full rebuild, a cleanup).

    The SCD-2 key starts with the record, and silver replaces a record's edges together,
    so a table that passed can only gain a duplicate in the records written since: on a
    1M-person day that is 0.5 s against 7 s for the whole table (bench/RESULTS.md)."""
    key = dg.AssetCheckKey(RELATIONSHIPS_KEY, DUPLICATE_EDGES_CHECK)
    for record in dagster_storage.check_history(instance, key, limit=10):
        if not dagster_storage.completed(record):
            continue
        data, metadata = _evaluation(record)
        if (not getattr(data, "passed", False) or CHECKED_VERSION not in metadata
                or CHECKED_TABLE not in metadata or metadata[CHECKED_TABLE].value != table_id):
            return None
        return change_log.records_changed_since(
            lake, {build.RELATIONSHIPS: int(metadata[CHECKED_VERSION].value)},
            tables=(build.RELATIONSHIPS,))
    return None


def previous_value(instance: dg.DagsterInstance, key: dg.AssetCheckKey,
                   field: str) -> float | None:
    """`field` from the metadata of the check's latest completed evaluation."""
    for record in dagster_storage.check_history(instance, key, limit=10):
        _, metadata = _evaluation(record)
        if field in metadata:
            return float(metadata[field].value)
    return None


def _evaluation(record) -> tuple[object, dict]:  # noqa: ANN001 - a check execution record
    """A check execution record's evaluation (None if it has none) and its metadata."""
    event = record.event
    data = event.dagster_event.event_specific_data if event and event.dagster_event else None
    return data, getattr(data, "metadata", None) or {}


def conflicts_result(conflicts: pl.DataFrame, previous: float | None, growth_alarm: float,
                     path: str) -> dg.AssetCheckResult:
    """Persons x attributes where at least two sources hold different current values."""
    across = conflicts.filter(pl.col("source_count") >= 2)
    count = across.height
    change = None if previous is None else count - previous
    grew_too_much = previous is not None and count > previous * (1 + growth_alarm)
    by_attribute = (across.group_by("attribute").agg(pl.len().alias("n"))
                    .sort(["n", "attribute"], descending=[True, False]))
    examples = across.sort(["attribute", "customer_id"]).head(EXAMPLES)
    trend = ("first evaluation" if previous is None else
             f"{change:+.0f} since the previous evaluation ({previous:.0f})")
    return dg.AssetCheckResult(
        asset_key=CONFLICTS_KEY,
        check_name=CONFLICTS_CHECK,
        passed=not grew_too_much,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{count} person-attribute conflict(s) across sources; {trend}",
        metadata={
            "conflicts": count,
            "previous_conflicts": previous if previous is not None else -1,
            "change": change if change is not None else 0,
            "growth_alarm": growth_alarm,
            "within_one_source": conflicts.height - count,
            "by_attribute": dg.MetadataValue.md("\n".join(
                f"* {r['attribute']}: {r['n']}" for r in by_attribute.iter_rows(named=True))
                or "_none_"),
            "examples": dg.MetadataValue.md("\n".join(
                f"* `{r['customer_id']}` {r['attribute']}: {r['distinct_values']} values from "
                f"{r['sources']}, {r['winning_source']} won ({r['rule']})"
                for r in examples.iter_rows(named=True)) or "_none_"),
            "reproduce": dg.MetadataValue.md(
                f"```sql\nSELECT attribute, count(*) FROM delta_scan('{path}')\n"
                "WHERE source_count >= 2 GROUP BY 1 ORDER BY 2 DESC\n```\n"
                "`c360 profile <customer_id>` shows the competing values of one person."),
        },
    )


def build_conflicts_check(config: C360Config) -> dg.AssetChecksDefinition:
    growth = config.checks.conflict_growth_alarm

    @dg.asset_check(
        asset=CONFLICTS_KEY,
        name=CONFLICTS_CHECK,
        description=(f"Persons whose sources disagree on a current value (count, examples), "
                     f"with the trend: warns when they grew by more than {growth:.0%} since "
                     f"the previous evaluation (checks.conflict_growth_alarm)."),
        automation_condition=FOLLOW_UPSTREAM,
    )
    def conflicts_within_trend(context: dg.AssetCheckExecutionContext,
                               c360: C360Paths) -> dg.AssetCheckResult:
        path = layout.gold_table(c360.lake, "attribute_conflicts")
        if not delta.table_exists(path):
            return dg.AssetCheckResult(
                passed=False, severity=dg.AssetCheckSeverity.WARN,
                description=f"gold/attribute_conflicts is not published at {path}",
                metadata={"path": dg.MetadataValue.path(str(path))})
        key = dg.AssetCheckKey(CONFLICTS_KEY, CONFLICTS_CHECK)
        previous = previous_value(context.instance, key, "conflicts")
        return conflicts_result(delta.read_table(path), previous, growth, str(path))

    return conflicts_within_trend
