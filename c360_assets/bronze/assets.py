"""Dagster assets for bronze: one daily-partitioned multi-asset per source.

The asset function only reads (`landing.ingest_table`), writes (`lib.delta`) and
reports; a run may cover one landing day or a range of them (single-run backfill),
and writes the whole range with one predicate overwrite per table.
"""


import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl

from c360_assets.bronze import source_names, watch
from c360_assets.bronze.contract import LANDING_DATE_COL, SOURCE_FILE_COL, SourceSpec, TableSpec
from c360_assets.bronze.landing import TableBatch, ingest_table
from c360_assets.lib import delta, failpoints
from c360_assets.lib.config import C360Config
from c360_assets.lib.preview import masked_preview
from c360_assets.privacy import bronze as privacy_bronze
from c360_assets.resources import C360Paths

OWNERS = ["team:data-platform"]
QUARANTINE_CHECK = "quarantine_rate_below_threshold"
# A run tagged `c360/force=true` (`c360 materialize --force`) re-ingests every day of its
# range, changed or not.
FORCE_TAG = "c360/force"


def bronze_key(table: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(["bronze", table.key])


def bronze_partitions(config: C360Config) -> dg.DailyPartitionsDefinition:
    """Landing days, shared by every source so that one job (the schedule's) can run any.

    Starts at the earliest `sources.<name>.start_date`; a source's own start date is
    enforced when its landing days are chosen (earlier day folders are reported).
    """
    start = min(config.source(name).start_date for name in source_names(config))
    # end_offset=1: today's landing folder is a valid partition as soon as it lands.
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)


def _table_metadata(table: TableSpec, batch: TableBatch | None, days_unchanged: int,
                    path: Path, preview_rows: int) -> dict[str, object]:
    """What the run did to one table: rows written (0 when no day changed), the table's
    Delta version, and the newest source event time of what was read."""
    written = batch.good.height if batch is not None else 0
    metadata: dict[str, object] = {
        "rows_written": written,
        "rows_quarantined": batch.quarantine.height if batch is not None else 0,
        "days_unchanged": days_unchanged,
        "new_commit": batch is not None,
        "delta_version": delta.table_version(path),
        "path": dg.MetadataValue.path(str(path)),
    }
    if batch is None:
        return metadata
    metadata.update({
        "dagster/row_count": written,
        "rows_read": batch.rows_read,
        "duplicates_dropped": batch.duplicates_dropped,
        "rows_suppressed": batch.suppressed,
        "files": batch.files,
        "preview": dg.MetadataValue.md(masked_preview(
            batch.good, {c.name: c.pii.value for c in table.columns if c.pii},
            preview_rows, [c.name for c in table.columns][:8])),
    })
    if batch.good.height:
        newest = batch.good.select(table.record_time().max()).item()
        if newest is not None:
            metadata["dagster/last_updated_timestamp"] = dg.MetadataValue.timestamp(newest)
    if batch.problems:
        metadata["problems"] = dg.MetadataValue.md(
            "\n".join(f"* `{p.path}`: {p.reason}" for p in batch.problems[:50]))
    return metadata


def build_bronze_asset(source: SourceSpec, config: C360Config) -> dg.AssetsDefinition:
    """The bronze multi-asset of one source: one Delta table per landed table."""
    from c360_assets.ops.freshness import freshness_policy  # ops builds on bronze's keys
    partitions = bronze_partitions(config)
    specs = [
        dg.AssetSpec(
            key=bronze_key(table),
            description=f"{table.description}\n\n{source.description}",
            group_name="bronze",
            kinds={"polars", "delta"},
            owners=OWNERS,
            tags={"source": source.name, "layer": "bronze"},
            partitions_def=partitions,
            metadata={"landing_path": f"<landing>/{source.name}/{table.name}/<YYYY-MM-DD>/"},
            freshness_policy=freshness_policy(source.name, config),
        )
        for table in source.tables
    ]
    checks = [
        dg.AssetCheckSpec(
            QUARANTINE_CHECK, asset=bronze_key(table),
            description=(f"In every materialised partition (landing day), the share of rows "
                         f"quarantined stays at or below bronze.quarantine_warn_rate "
                         f"({config.bronze.quarantine_warn_rate:.1%})."),
        )
        for table in source.tables
    ]

    @dg.multi_asset(
        name=f"bronze_{source.name}",
        specs=specs,
        check_specs=checks,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=True,
        # One writer per source's tables at a time (delta-rs commits conflict otherwise).
        pool=f"delta_bronze_{source.name}",
        description=source.description,
    )
    def _bronze(context: dg.AssetExecutionContext, c360: C360Paths) -> Iterator[object]:
        # A run over several sources' days may start before this source's start date.
        start = config.source(source.name).start_date
        days = sorted(d for d in (dt.date.fromisoformat(k) for k in context.partition_keys)
                      if d >= start)
        with c360.writer(context):
            yield from _ingest(context, c360, source, config, days)

    return _bronze


def _ingest(context: dg.AssetExecutionContext, c360: C360Paths, source: SourceSpec,
            config: C360Config, days: list[dt.date]) -> Iterator[object]:
    """Ingest the landing days whose files (or typing rules) changed since bronze last
    ingested them; days that did not change are left as they are (no Delta commit)."""
    ingested_at = dt.datetime.now(dt.UTC)
    # What the landing days look like before reading: recorded in the ingest ledger
    # when the run succeeds, so the schedule knows what is stale.
    fingerprints = watch.day_fingerprints(c360.landing, source, days)
    selected = [t for t in source.tables if bronze_key(t) in context.selected_asset_keys]
    force = context.run.tags.get(FORCE_TAG) == "true"
    todo = days if force else watch.stale_days(c360.lake, source, config.bronze,
                                                 fingerprints, selected)
    context.log.info(f"{source.name}: {len(todo)} of {len(days)} landing day(s) new or changed"
                     + ("" if len(todo) == len(days) else
                        "; the others are in bronze as landed (no rewrite)"))
    for table in selected:
        key = bronze_key(table)
        path, qpath = c360.bronze_table(table.key), c360.quarantine_table(table.key)
        batch = None
        if todo:
            context.log.info(f"{table.key}: reading {len(todo)} landing day(s) "
                             f"{todo[0]}..{todo[-1]}")
            batch = ingest_table(c360.landing, table, todo, ingested_at, config.bronze)
            # Erased customers stay erased: rows the suppression list names are dropped
            # before anything is written (counted, nothing of them kept).
            batch.good, batch.quarantine, batch.suppressed = privacy_bronze.apply_suppression(
                c360.lake, table, batch.good, batch.quarantine)
            for problem in batch.problems:
                context.log.warning(f"{table.key}: {problem}")
            delta.replace_day_partitions(path, batch.good, partition_col=LANDING_DATE_COL,
                                         days=todo)
            failpoints.reached("bronze.table_written")
            delta.replace_day_partitions(qpath, batch.quarantine,
                                         partition_col=LANDING_DATE_COL, days=todo)
            context.log.info(
                f"{table.key}: {batch.good.height} rows written, {batch.quarantine.height} "
                f"quarantined, {batch.duplicates_dropped} duplicates dropped, "
                f"{batch.suppressed} suppressed ({batch.files} files)")
        check_results = []
        if dg.AssetCheckKey(key, QUARANTINE_CHECK) in context.selected_asset_check_keys:
            check_results.append(quarantine_check(
                key, day_counts(path, qpath, days), quarantined_rows(qpath, days),
                config.bronze.quarantine_warn_rate, str(qpath)))
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=_table_metadata(table, batch, len(days) - len(todo), path,
                                     config.bronze.preview_rows),
            check_results=check_results,
        )
    if {bronze_key(t) for t in source.tables} <= set(context.selected_asset_keys):
        watch.record_ingested(c360.lake, source.name, fingerprints,
                              watch.rules_digest(source, config.bronze))


def day_counts(path: Path, quarantine_path: Path, days: list[dt.date]) -> pl.DataFrame:
    """Per landing day of `days`: rows in bronze and in quarantine (from the tables)."""
    def counts(p: Path, name: str) -> pl.DataFrame:
        if not delta.table_exists(p):
            return pl.DataFrame(schema={LANDING_DATE_COL: pl.Date, name: pl.UInt32})
        return (pl.scan_delta(str(p)).filter(pl.col(LANDING_DATE_COL).is_in(days))
                .group_by(LANDING_DATE_COL).agg(pl.len().alias(name)).collect())
    return quarantine_rates(counts(path, "rows_kept"), counts(quarantine_path, "rows_quarantined"))


def quarantined_rows(quarantine_path: Path, days: list[dt.date]) -> pl.DataFrame:
    from c360_assets.bronze.landing import QUARANTINE_SCHEMA
    if not delta.table_exists(quarantine_path):
        return QUARANTINE_SCHEMA.to_frame(eager=True).clear()
    return (pl.scan_delta(str(quarantine_path)).filter(pl.col(LANDING_DATE_COL).is_in(days))
            .collect())


def quarantine_rates(kept: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """Per landing day: rows kept, rows quarantined and the quarantined share."""
    return (kept.join(held, on=LANDING_DATE_COL, how="full", coalesce=True)
            .fill_null(0)
            .with_columns((pl.col("rows_quarantined")
                           / (pl.col("rows_kept") + pl.col("rows_quarantined"))).alias("rate"))
            .sort(LANDING_DATE_COL))


def quarantine_check(key: dg.AssetKey, rates: pl.DataFrame, quarantine: pl.DataFrame,
                     threshold: float, quarantine_path: str) -> dg.AssetCheckResult:
    """Fails when any landing day of the run quarantined more than `threshold` of its rows
    (`rates` from `day_counts`, `quarantine` the run's days' quarantined rows)."""
    over = rates.filter(pl.col("rate") > threshold)
    worst = rates.sort("rate", descending=True).head(20)
    examples = quarantine.sort([LANDING_DATE_COL, SOURCE_FILE_COL, "line"], nulls_last=True).head(20)
    return dg.AssetCheckResult(
        check_name=QUARANTINE_CHECK,
        asset_key=key,
        passed=over.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{over.height} of {rates.height} landing day(s) above "
                     f"{threshold:.1%} quarantined" if over.height else None),
        metadata={
            "partitions_over_threshold": over.height,
            "partitions_checked": rates.height,
            "max_quarantine_rate": float(rates["rate"].max() or 0.0) if rates.height else 0.0,
            "rows_quarantined": quarantine.height,
            "rows_kept": int(rates["rows_kept"].sum()) if rates.height else 0,
            "threshold": threshold,
            "worst_partitions": dg.MetadataValue.md("\n".join(
                f"* {r[LANDING_DATE_COL]}: {r['rate']:.2%} ({r['rows_quarantined']} of "
                f"{r['rows_kept'] + r['rows_quarantined']})"
                for r in worst.iter_rows(named=True)) or "_no rows_"),
            "examples": dg.MetadataValue.md("\n".join(
                f"* `{r['_source_file']}` line {r['line']}, column `{r['column']}`: {r['reason']}"
                for r in examples.iter_rows(named=True)) or "_nothing quarantined_"),
            "reasons": dg.MetadataValue.md(_top_reasons(quarantine)),
            "quarantine_table": dg.MetadataValue.path(quarantine_path),
            "reproduce": dg.MetadataValue.md(
                "```sql\nSELECT _landing_date, reason, count(*) FROM "
                f"delta_scan('{quarantine_path}') GROUP BY ALL ORDER BY 3 DESC\n```"),
        },
    )


def _top_reasons(quarantine: pl.DataFrame, limit: int = 10) -> str:
    if quarantine.is_empty():
        return "_nothing quarantined_"
    top = (quarantine.group_by("reason").agg(pl.len().alias("rows"), pl.col("_source_file").first(),
                                              pl.col("line").first())
           .sort("rows", descending=True).head(limit))
    return "\n".join(f"* {r['rows']} x {r['reason']} (e.g. `{r['_source_file']}` line {r['line']})"
                     for r in top.iter_rows(named=True))
