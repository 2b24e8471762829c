"""The landing sensor: a run for exactly the source partitions whose day folders changed.

Every tick fingerprints each source's landing day folders (`bronze.watch`) and compares
them with the cursor, the fingerprints it saw last (on its very first tick: the ingest
ledger, what bronze already holds). New or changed days of one source become one run per
contiguous range of days (a single-run backfill, one predicate overwrite per table).
Run keys carry the range's fingerprints, so the same folders never run twice even if the
cursor were lost; the cursor is stored by Dagster and survives restarts.

Silver, identity and gold follow through declarative automation (`automation.py`).
The alert sensor is in `alerts.py`.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from c360_assets.bronze import catalogue
from c360_assets.bronze.assets import bronze_key
from c360_assets.bronze.contract import SourceSpec
from c360_assets.bronze.watch import (
    changed_days,
    contiguous_ranges,
    range_digest,
    read_ledger,
    scan_source,
)
from c360_assets.lib.config import C360Config
from c360_assets.resources import C360Paths

LANDING_SENSOR = "landing_sensor"
JOB_NAME = "c360_assets_job"
SOURCE_TAG = "c360/source"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def c360_job() -> dg.UnresolvedAssetJobDefinition:
    """The one job the sensors and the schedule launch subsets of."""
    return dg.define_asset_job(JOB_NAME, selection=dg.AssetSelection.all(),
                               description="Any part of the c360 graph (sensors and schedule "
                                           "request the assets and partitions to run).")


def bronze_run_request(source: SourceSpec, first: dt.date, last: dt.date, *, reason: str,
                       run_key: str | None = None) -> dg.RunRequest:
    """One run of one source's bronze tables over landing days first..last."""
    return dg.RunRequest(
        run_key=run_key,
        job_name=JOB_NAME,
        asset_selection=[bronze_key(t) for t in source.tables],
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat(),
              SOURCE_TAG: source.name, "c360/launched_by": reason},
    )


def changed_ranges(paths: C360Paths, config: C360Config, source: SourceSpec,
                   seen: dict[str, str], today: dt.date
                   ) -> tuple[dict[str, str], list[tuple[dt.date, dt.date]]]:
    """The source's day-folder fingerprints now, and the contiguous ranges of days new or
    changed against `seen`. Days run from the source's start date to tomorrow (UTC)."""
    start = config.source(source.name).start_date
    now = scan_source(paths.landing, source, start, today + dt.timedelta(days=1))
    return now, contiguous_ranges(changed_days(seen, now))


def landing_run_requests(paths: C360Paths, config: C360Config, cursor: dict[str, dict[str, str]],
                         today: dt.date) -> tuple[list[dg.RunRequest], dict[str, dict[str, str]]]:
    """Run requests for new or changed day folders since `cursor`, and the new cursor."""
    requests: list[dg.RunRequest] = []
    new_cursor: dict[str, dict[str, str]] = {}
    for source in catalogue(config):
        seen = cursor[source.name] if source.name in cursor else read_ledger(paths.lake, source.name)
        now, ranges = changed_ranges(paths, config, source, seen, today)
        for first, last in ranges:
            key = f"{source.name}:{first}...{last}:{range_digest(now, first, last)}"
            requests.append(bronze_run_request(source, first, last, reason=LANDING_SENSOR,
                                               run_key=key))
        new_cursor[source.name] = now
    return requests, new_cursor


def build_landing_sensor(config: C360Config) -> dg.SensorDefinition:
    auto = config.automation

    @dg.sensor(
        name=LANDING_SENSOR,
        job_name=JOB_NAME,
        minimum_interval_seconds=auto.landing_sensor_interval_s,
        default_status=(dg.DefaultSensorStatus.RUNNING if auto.running_by_default
                        else dg.DefaultSensorStatus.STOPPED),
        description=("Watches the landing root: one bronze run per source and contiguous "
                     "range of new or changed landing day folders (files added, rewritten "
                     "or removed). Silver and gold follow through declarative automation."),
    )
    def landing_sensor(context: dg.SensorEvaluationContext, c360: C360Paths) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests, new_cursor = landing_run_requests(c360, config, cursor,
                                                    dt.datetime.now(dt.UTC).date())
        for request in requests:
            context.log.info(f"requesting {request.tags[SOURCE_TAG]} "
                             f"{request.tags[RANGE_START_TAG]}...{request.tags[RANGE_END_TAG]}")
        if not requests:
            return dg.SensorResult(skip_reason="no new or changed landing day folders",
                                   cursor=json.dumps(new_cursor, sort_keys=True))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(new_cursor, sort_keys=True))

    return landing_sensor
