"""Dagster assets for bronze: one daily-partitioned multi-asset per source.

The asset function only reads (`landing.ingest_table`), writes (`lib.delta`) and
reports; a run may cover one landing day or a range of them (single-run backfill),
and writes the whole range with one predicate overwrite per table.
"""


import datetime as dt
from collections.abc import Iterator

import dagster as dg
import polars as pl

from c360_assets.bronze import watch
from c360_assets.bronze.contract import LANDING_DATE_COL, SourceSpec, TableSpec
from c360_assets.bronze.landing import TableBatch, ingest_table
from c360_assets.lib import delta
from c360_assets.lib.config import SOURCE_NAMES, C360Config
from c360_assets.lib.preview import masked_preview
from c360_assets.resources import C360Paths

OWNERS = ["team:data-platform"]
QUARANTINE_CHECK = "quarantine_rate_below_threshold"


def bronze_key(table: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(["bronze", table.key])


def bronze_partitions(config: C360Config) -> dg.DailyPartitionsDefinition:
    """Landing days, shared by every source so that one job (the schedule's) can run any.

    Starts at the earliest `sources.<name>.start_date`; a source's own start date is
    enforced when its landing days are chosen (earlier day folders are reported).
    """
    start = min(config.source(name).start_date for name in SOURCE_NAMES)
    # end_offset=1: today's landing folder is a valid partition as soon as it lands.
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)


def _table_metadata(batch: TableBatch, version: int, path: str, newest: dt.datetime | None,
                    preview_rows: int) -> dict[str, object]:
    spec = batch.spec
    written = batch.good.height
    quarantined = batch.quarantine.height
    metadata: dict[str, object] = {
        "dagster/row_count": written,
        "rows_read": batch.rows_read,
        "rows_written": written,
        "rows_quarantined": quarantined,
        "duplicates_dropped": batch.duplicates_dropped,
        "files": batch.files,
        "delta_version": version,
        "path": dg.MetadataValue.path(path),
        "preview": dg.MetadataValue.md(masked_preview(
            batch.good, {c.name: c.pii.value for c in spec.columns if c.pii},
            preview_rows, [c.name for c in spec.columns][:8])),
    }
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
        days = sorted(dt.date.fromisoformat(k) for k in context.partition_keys)
        first, last = days[0], days[-1]
        ingested_at = dt.datetime.now(dt.UTC)
        # What the landing days look like before reading: recorded in the ingest ledger
        # when the run succeeds, so the schedule knows what is stale.
        fingerprints = {d.isoformat(): watch.day_fingerprint(c360.landing, source, d) for d in days}
        for table in source.tables:
            key = bronze_key(table)
            if key not in context.selected_asset_keys:
                continue
            context.log.info(f"{table.key}: reading landing days {first}..{last}")
            batch = ingest_table(c360.landing, table, days, ingested_at, config.bronze)
            for problem in batch.problems:
                context.log.warning(f"{table.key}: {problem}")
            path = c360.bronze_table(table.key)
            version = delta.replace_date_partitions(
                path, batch.good, partition_col="_landing_date", first=first, last=last)
            delta.replace_date_partitions(
                c360.quarantine_table(table.key), batch.quarantine,
                partition_col="_landing_date", first=first, last=last)
            newest = None
            if batch.good.height:
                newest = batch.good.select(table.record_time().max()).item()
            context.log.info(
                f"{table.key}: {batch.good.height} rows written, {batch.quarantine.height} "
                f"quarantined, {batch.duplicates_dropped} duplicates dropped ({batch.files} files)")
            check_results = []
            if dg.AssetCheckKey(key, QUARANTINE_CHECK) in context.selected_asset_check_keys:
                check_results.append(quarantine_check(
                    key, batch, config.bronze.quarantine_warn_rate,
                    str(c360.quarantine_table(table.key))))
            yield dg.MaterializeResult(
                asset_key=key,
                metadata=_table_metadata(batch, version, str(path), newest,
                                         config.bronze.preview_rows),
                check_results=check_results,
            )
        if {bronze_key(t) for t in source.tables} <= set(context.selected_asset_keys):
            watch.record_ingested(c360.lake, source.name, fingerprints)

    return _bronze


def quarantine_rates(batch: TableBatch) -> pl.DataFrame:
    """Per landing day: rows kept, rows quarantined and the quarantined share."""
    kept = batch.good.group_by(LANDING_DATE_COL).agg(pl.len().alias("rows_kept"))
    held = batch.quarantine.group_by(LANDING_DATE_COL).agg(pl.len().alias("rows_quarantined"))
    return (kept.join(held, on=LANDING_DATE_COL, how="full", coalesce=True)
            .fill_null(0)
            .with_columns((pl.col("rows_quarantined")
                           / (pl.col("rows_kept") + pl.col("rows_quarantined"))).alias("rate"))
            .sort(LANDING_DATE_COL))


def quarantine_check(key: dg.AssetKey, batch: TableBatch, threshold: float,
                     quarantine_path: str) -> dg.AssetCheckResult:
    """Fails when any landing day of the run quarantined more than `threshold` of its rows."""
    rates = quarantine_rates(batch)
    over = rates.filter(pl.col("rate") > threshold)
    worst = rates.sort("rate", descending=True).head(20)
    examples = batch.quarantine.head(20)
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
            "rows_quarantined": batch.quarantine.height,
            "rows_read": batch.rows_read,
            "threshold": threshold,
            "worst_partitions": dg.MetadataValue.md("\n".join(
                f"* {r[LANDING_DATE_COL]}: {r['rate']:.2%} ({r['rows_quarantined']} of "
                f"{r['rows_kept'] + r['rows_quarantined']})"
                for r in worst.iter_rows(named=True)) or "_no rows_"),
            "examples": dg.MetadataValue.md("\n".join(
                f"* `{r['_source_file']}` line {r['line']}, column `{r['column']}`: {r['reason']}"
                for r in examples.iter_rows(named=True)) or "_nothing quarantined_"),
            "reasons": dg.MetadataValue.md(_top_reasons(batch.quarantine)),
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
