"""The schedule: every 2 hours (Europe/Berlin, `automation:` in config), run what is stale.

"Stale" is judged against what the lake holds, not against a cursor:

* bronze: landing day folders whose fingerprint differs from the ingest ledger (never
  ingested, changed since, or a failed run's days): one run per source and contiguous
  range, skipped for a source that already has a run queued or in progress;
* the data-staleness checks of every source (`freshness.py`), in one run, so a source
  that stopped delivering is reported even when nothing materialises.

Silver, identity and gold follow the bronze runs through declarative automation.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from c360_assets.bronze import catalogue
from c360_assets.bronze.watch import read_ledger
from c360_assets.lib.config import C360Config
from c360_assets.ops.freshness import staleness_check_key
from c360_assets.ops.sensors import JOB_NAME, SOURCE_TAG, bronze_run_request, changed_ranges
from c360_assets.resources import C360Paths

SCHEDULE = "every_two_hours"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
             dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def stale_run_requests(paths: C360Paths, config: C360Config, instance: dg.DagsterInstance,
                       tick: dt.datetime) -> list[dg.RunRequest]:
    """Run requests for one tick; run keys are unique per tick (a retry next tick is new)."""
    today = tick.astimezone(dt.UTC).date()
    requests: list[dg.RunRequest] = []
    for source in catalogue(config):
        _, ranges = changed_ranges(paths, config, source, read_ledger(paths.lake, source.name),
                                   today)
        if not ranges:
            continue
        busy = instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT, tags={SOURCE_TAG: source.name}),
                                 limit=1)
        if busy:
            continue  # its run will update the ledger; the next tick sees what is left
        requests += [bronze_run_request(source, first, last, reason=SCHEDULE,
                                        run_key=f"{source.name}:{first}...{last}@{tick.isoformat()}")
                     for first, last in ranges]
    requests.append(dg.RunRequest(
        run_key=f"staleness@{tick.isoformat()}", job_name=JOB_NAME, asset_selection=[],
        asset_check_keys=[staleness_check_key(s) for s in catalogue(config)],
        tags={"c360/launched_by": SCHEDULE, "c360/stage": "staleness"}))
    return requests


def build_schedule(config: C360Config) -> dg.ScheduleDefinition:
    auto = config.automation

    @dg.schedule(
        name=SCHEDULE,
        cron_schedule=auto.schedule_cron,
        execution_timezone=auto.timezone,
        job_name=JOB_NAME,
        default_status=(dg.DefaultScheduleStatus.RUNNING if auto.running_by_default
                        else dg.DefaultScheduleStatus.STOPPED),
        description=(f"Runs what is stale ({auto.schedule_cron}, {auto.timezone}): landing "
                     f"days not ingested as they are now (per source, one run per range), "
                     f"then the data-staleness checks of every source."),
    )
    def every_two_hours(context: dg.ScheduleEvaluationContext, c360: C360Paths):
        return stale_run_requests(c360, config, context.instance,
                                  context.scheduled_execution_time)

    return every_two_hours
