"""The landing sensor, the 2-hourly schedule and declarative automation downstream."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from c360_assets.bronze import BUILTIN_BY_NAME
from c360_assets.bronze.watch import read_ledger
from c360_assets.definitions import build_definitions
from c360_assets.lib import delta
from c360_assets.lib.config import AutomationConfig, C360Config, parse_config
from c360_assets.ops.freshness import staleness_check_key
from c360_assets.ops.schedules import SCHEDULE
from c360_assets.ops.sensors import JOB_NAME, LANDING_SENSOR, RANGE_END_TAG, RANGE_START_TAG
from c360_assets.resources import C360Paths
from tests.helpers import land, zendesk_users_csv


def users(day: str, ids: range) -> str:
    at = dt.datetime.fromisoformat(f"{day}T10:00:00+00:00")
    return zendesk_users_csv(ids, at, at + dt.timedelta(hours=1))


@pytest.fixture()
def setup(tmp_path: Path):
    paths = C360Paths(landing_root=str(tmp_path / "landing"), lake_root=str(tmp_path / "lake"))
    defs = build_definitions(C360Config(), paths)
    return paths, defs


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, paths: C360Paths,
         cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
    sensor = defs.get_sensor_def(LANDING_SENSOR)
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"c360": paths},
                                 definitions=defs) as context:
        result = sensor.evaluate_tick(context)
    return list(result.run_requests or []), result.cursor


def ranges(requests: list[dg.RunRequest]) -> list[tuple[str, str, str]]:
    return sorted((r.tags["c360/source"], r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG])
                  for r in requests)


def test_landing_sensor_requests_new_and_changed_day_folders_once(setup, instance) -> None:
    paths, defs = setup
    root = paths.landing
    for day in ("2026-02-01", "2026-02-02", "2026-02-04"):
        land(root, "zendesk", "user", day, "users.csv", users(day, range(1, 4)))
    land(root, "shopify", "customer", "2026-02-02", "part-0.jsonl", b"")

    requests, cursor = tick(defs, instance, paths, None)
    # Contiguous new days of one source are one run; a gap starts another.
    assert ranges(requests) == [("shopify", "2026-02-02", "2026-02-02"),
                                ("zendesk", "2026-02-01", "2026-02-02"),
                                ("zendesk", "2026-02-04", "2026-02-04")]
    zendesk = requests[-1]
    assert set(zendesk.asset_selection) == {dg.AssetKey(["bronze", t.key])
                                            for t in BUILTIN_BY_NAME["zendesk"].tables}
    assert zendesk.job_name == JOB_NAME
    first_keys = {r.run_key for r in requests}
    assert len(first_keys) == 3

    # Nothing changed: nothing requested, however often it ticks.
    again, cursor2 = tick(defs, instance, paths, cursor)
    assert again == []
    assert json.loads(cursor2) == json.loads(cursor)

    # One day rewritten (the connector re-delivered it), one new day, one untouched.
    path = root / "zendesk" / "user" / "2026-02-02" / "users.csv"
    path.write_text(users("2026-02-02", range(1, 6)))
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    land(root, "zendesk", "user", "2026-02-06", "users.csv", users("2026-02-06", range(7, 9)))
    changed, cursor3 = tick(defs, instance, paths, cursor2)
    assert ranges(changed) == [("zendesk", "2026-02-02", "2026-02-02"),
                               ("zendesk", "2026-02-06", "2026-02-06")]
    assert not first_keys & {r.run_key for r in changed}  # new content, new run keys

    # A restart (fresh definitions, the stored cursor): still nothing twice.
    restarted = build_definitions(C360Config(), paths)
    assert tick(restarted, instance, paths, cursor3)[0] == []
    # Even a lost cursor cannot run the same folders twice: the run keys are the same
    # (Dagster skips a run key it has launched) ...
    replay, _ = tick(defs, instance, paths, cursor2)
    assert {r.run_key for r in replay} == {r.run_key for r in changed}


def test_sensor_requests_run_and_record_what_was_ingested(setup, instance) -> None:
    paths, defs = setup
    for day in ("2026-02-01", "2026-02-02"):
        land(paths.landing, "zendesk", "user", day, "users.csv", users(day, range(1, 4)))
    requests, _ = tick(defs, instance, paths, None)
    [request] = requests
    job = defs.resolve_job_def(JOB_NAME)
    result = job.execute_in_process(instance=instance, asset_selection=request.asset_selection,
                                    tags=request.tags)
    assert result.success
    # One run wrote both days (single-run backfill) ...
    table = delta.read_table(paths.bronze_table("zendesk_user"))
    assert sorted(table["_landing_date"].cast(str).unique()) == ["2026-02-01", "2026-02-02"]
    assert len(instance.get_runs()) == 1
    # ... and recorded them in the ingest ledger: a sensor starting on this lake with no
    # cursor, and the schedule, see nothing new for zendesk.
    assert set(read_ledger(paths.lake, "zendesk")) == {"2026-02-01", "2026-02-02"}
    assert tick(defs, instance, paths, None)[0] == []


def schedule_requests(defs: dg.Definitions, instance: dg.DagsterInstance,
                      paths: C360Paths) -> list[dg.RunRequest]:
    schedule = defs.get_schedule_def(SCHEDULE)
    # `with`: the context enters the instance and must leave it (Dagster keeps a global).
    with dg.build_schedule_context(
            instance=instance, resources={"c360": paths}, repository_def=defs.get_repository_def(),
            scheduled_execution_time=dt.datetime.now(ZoneInfo("Europe/Berlin"))) as context:
        return list(schedule.evaluate_tick(context).run_requests or [])


def test_schedule_runs_what_is_stale_every_two_hours_in_berlin(setup, instance) -> None:
    paths, defs = setup
    schedule = defs.get_schedule_def(SCHEDULE)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 */2 * * *", "Europe/Berlin")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING

    land(paths.landing, "zendesk", "user", "2026-02-01", "users.csv", users("2026-02-01", range(1, 4)))
    requests = schedule_requests(defs, instance, paths)
    bronze = [r for r in requests if r.asset_selection]
    [checks] = [r for r in requests if not r.asset_selection]
    assert ranges(bronze) == [("zendesk", "2026-02-01", "2026-02-01")]
    assert set(checks.asset_check_keys) == {staleness_check_key(s) for s in BUILTIN_BY_NAME.values()}

    job = defs.resolve_job_def(JOB_NAME)
    assert job.execute_in_process(instance=instance, asset_selection=bronze[0].asset_selection,
                                  tags=bronze[0].tags).success
    # Ingested: only the staleness checks are left to run.
    assert [r for r in schedule_requests(defs, instance, paths) if r.asset_selection] == []
    # The checks-only run runs exactly the five checks (as the daemon subsets the job).
    only_checks = job.get_subset(asset_selection=set(checks.asset_selection),
                                 asset_check_selection=set(checks.asset_check_keys))
    result = only_checks.execute_in_process(instance=instance, tags=checks.tags)
    evaluations = {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {"bronze/salesforce_contact": False, "bronze/sap_kna1": False,
                           "bronze/shopify_customer": False, "bronze/segment_identifies": False,
                           "bronze/zendesk_user": False}  # February's data, and no data at all
    assert not result.get_asset_materialization_events()


def test_schedule_is_configurable() -> None:
    config = parse_config("automation:\n  schedule_cron: '30 6 * * *'\n  timezone: UTC\n"
                          "  running_by_default: false\n")
    defs = build_definitions(config, C360Paths(landing_root="/l", lake_root="/k"))
    schedule = defs.get_schedule_def(SCHEDULE)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 6 * * *", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with pytest.raises(ValueError, match="unknown time zone"):
        AutomationConfig(timezone="Europe/Atlantis")
    with pytest.raises(ValueError, match="not a cron expression"):
        AutomationConfig(schedule_cron="every two hours")


def test_silver_and_gold_follow_a_bronze_update_through_declarative_automation(setup, instance) -> None:
    paths, defs = setup
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # nothing landed, nothing to do
    land(paths.landing, "zendesk", "user", "2026-02-01", "users.csv", users("2026-02-01", range(1, 4)))
    requests, _ = tick(defs, instance, paths, None)
    job = defs.resolve_job_def(JOB_NAME)
    assert job.execute_in_process(instance=instance, asset_selection=requests[0].asset_selection,
                                  tags=requests[0].tags).success
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()
                 if after.get_num_requested(key)}
    assert {"silver/field_changes", "silver/nodes", "silver/relationships", "silver/identity",
            "gold/customer_profile_v2", "gold/resolved_attributes"} <= requested
    assert not any(k.startswith("bronze/") for k in requested)
    # The blocking duplicate-edge check and the conflicts check go with them (same run).
    for check in (dg.AssetCheckKey(dg.AssetKey(["silver", "relationships"]), "no_duplicate_current_edges"),
                  dg.AssetCheckKey(dg.AssetKey(["gold", "attribute_conflicts"]), "conflicts_within_trend")):
        [result] = [r for r in after.results if r.key == check]  # (get_num_requested: assets only)
        assert result.true_subset.size == 1, check
    # Handled: the next evaluation does not request them again.
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert third.total_requested == 0
