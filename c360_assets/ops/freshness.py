"""Freshness: Dagster freshness policies per bronze source, and the data-staleness check.

Dagster's `FreshnessPolicy` sees only when an asset was last materialised: a connector
that syncs every hour but delivers nothing new keeps it green. The staleness check looks
at the data instead: the newest *source event time* (the record time each source's
contract defines: Salesforce SystemModstamp, Shopify updated_at, Segment timestamp, ...)
across the source's bronze tables, against the same window from config
(`freshness.stale_after_hours`, per-source overrides).

It is a standalone check, so the schedule can evaluate it when nothing materialises (a
source that stopped landing is exactly the case to catch).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl

from c360_assets.bronze.assets import bronze_key
from c360_assets.bronze.contract import LANDING_DATE_COL, SourceSpec
from c360_assets.lib import delta
from c360_assets.lib.config import C360Config
from c360_assets.resources import C360Paths

STALENESS_CHECK = "newest_event_within_window"


def freshness_policy(source: str, config: C360Config) -> dg.FreshnessPolicy:
    """Fail when the source's bronze was not materialised within its window."""
    hours = config.freshness.stale_after(source)
    return dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=hours))


def staleness_check_key(source: SourceSpec) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(bronze_key(source.tables[0]), STALENESS_CHECK)


def newest_event_times(paths: C360Paths, source: SourceSpec) -> dict[str, dt.datetime | None]:
    """Newest record time per bronze table of the source (None: table missing or empty),
    each record's time capped at the end of its landing day."""
    newest: dict[str, dt.datetime | None] = {}
    for table in source.tables:
        path = paths.bronze_table(table.key)
        if not delta.table_exists(path):
            newest[table.key] = None
            continue
        # An event cannot have happened after it landed: a record time beyond the end of
        # its landing day (a wrong source clock, a date field in the future) is capped
        # there, so it cannot make a silent source look fresh.
        landed_by = (pl.col(LANDING_DATE_COL).cast(pl.Datetime("us", "UTC"))
                     + pl.duration(days=1))
        # Both sides are UTC datetimes (a date-only record time is its midnight), so the
        # result is a tz-aware datetime or None.
        newest[table.key] = (pl.scan_delta(str(path))
                             .select(pl.min_horizontal(
                                 table.record_time().cast(pl.Datetime("us", "UTC")),
                                 landed_by).max())
                             .collect().item())
    return newest


def evaluate_staleness(source: SourceSpec, newest: dict[str, dt.datetime | None],
                       window_hours: float, now: dt.datetime) -> dg.AssetCheckResult:
    """The check's verdict: the newest event of any of the source's tables is recent enough."""
    times = [t for t in newest.values() if t is not None]
    latest = max(times) if times else None
    age_hours = (now - latest).total_seconds() / 3600 if latest else None
    passed = age_hours is not None and age_hours <= window_hours
    age = f"{age_hours:.1f} h old" if age_hours is not None else "no data"
    table_lines = "\n".join(
        f"* `{key}`: {t.isoformat() if t else 'no rows'}" for key, t in sorted(newest.items()))
    first = source.tables[0]
    return dg.AssetCheckResult(
        asset_key=bronze_key(first),
        check_name=STALENESS_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{source.name}: newest event {latest.isoformat() if latest else 'none'}, "
                     f"{age} "
                     f"(window {window_hours:g} h)"),
        metadata={
            "source": source.name,
            "newest_event": dg.MetadataValue.timestamp(latest) if latest else "none",
            "age_hours": round(age_hours, 2) if age_hours is not None else -1.0,
            "window_hours": window_hours,
            "evaluated_at": dg.MetadataValue.timestamp(now),
            "newest_per_table": dg.MetadataValue.md(table_lines),
            "reproduce": dg.MetadataValue.md(
                "Newest record time per table, e.g. in Python:\n\n```python\n"
                f"pl.scan_delta('<lake>/bronze/{first.key}')"
                ".select(<record time column>.max()).collect()\n```\n"
                "The record time per table is the source contract's `record_time` "
                f"(c360_assets/bronze/{source.name}.py). Window: `freshness` in "
                "config/c360.yaml."),
        },
    )


def build_staleness_check(source: SourceSpec, config: C360Config) -> dg.AssetChecksDefinition:
    window = config.freshness.stale_after(source.name)
    others = [bronze_key(t) for t in source.tables[1:]]

    @dg.asset_check(
        asset=bronze_key(source.tables[0]),
        name=STALENESS_CHECK,
        additional_deps=others,
        description=(f"Data staleness of {source.name}: the newest source event time across "
                     f"its bronze tables ({', '.join(t.key for t in source.tables)}) is at "
                     f"most {window:g} h old (freshness.stale_after_hours / "
                     f"freshness.sources.{source.name}). Catches a connector that syncs but "
                     f"delivers nothing new."),
    )
    def _staleness(c360: C360Paths) -> dg.AssetCheckResult:
        return evaluate_staleness(source, newest_event_times(c360, source), window,
                                  dt.datetime.now(dt.UTC))

    return _staleness
