"""Data staleness, quarantine per landing day and duplicate current edges as asset checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from c360_assets.bronze import BUILTIN_BY_NAME
from c360_assets.definitions import build_definitions
from c360_assets.gold.assets import dbt_resource
from c360_assets.lib.config import C360Config, parse_config
from c360_assets.ops.checks import duplicate_current_edges, duplicate_edges_result
from c360_assets.ops.freshness import evaluate_staleness, staleness_check_key
from c360_assets.plan import materialize
from c360_assets.resources import C360Paths
from tests.helpers import land, zendesk_users_csv

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
ZENDESK = BUILTIN_BY_NAME["zendesk"]
SAP = BUILTIN_BY_NAME["sap"]


def test_staleness_verdict_against_the_source_window() -> None:
    five_hours = {"zendesk_user": NOW - dt.timedelta(hours=5), "zendesk_organization": None}
    stale = evaluate_staleness(ZENDESK, five_hours, 4.0, NOW)
    assert not stale.passed
    assert stale.metadata["age_hours"].value == 5.0
    assert "zendesk_organization`: no rows" in stale.metadata["newest_per_table"].value
    # The newest event of any table counts.
    fresh = {**five_hours, "zendesk_organization": NOW - dt.timedelta(hours=3)}
    assert evaluate_staleness(ZENDESK, fresh, 4.0, NOW).passed
    assert not evaluate_staleness(ZENDESK, {"zendesk_user": None}, 4.0, NOW).passed  # no data
    # SAP syncs daily: 20 hours old is fine with its 26 h override, not with the default.
    config = parse_config("freshness:\n  stale_after_hours: 4\n  sources: {sap: 26}\n")
    sap = {"sap_kna1": NOW - dt.timedelta(hours=20), "sap_adr6": None}
    assert evaluate_staleness(SAP, sap, config.freshness.stale_after("sap"), NOW).passed
    assert not evaluate_staleness(SAP, sap, config.freshness.stale_after("zendesk"), NOW).passed


def run_staleness_check(paths: C360Paths, instance: dg.DagsterInstance) -> dg.AssetCheckEvaluation:
    defs = build_definitions(C360Config(), paths)
    result = dg.materialize([*defs.assets, *defs.asset_checks], instance=instance,
                            resources={"c360": paths, "dbt": dbt_resource()},
                            selection=dg.AssetSelection.checks(staleness_check_key(ZENDESK)))
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


@pytest.fixture()
def paths(tmp_path: Path) -> C360Paths:
    return C360Paths(landing_root=str(tmp_path / "landing"), lake_root=str(tmp_path / "lake"))


def test_a_source_that_syncs_but_delivers_nothing_new_is_stale(paths, instance) -> None:
    now = dt.datetime.now(dt.UTC)
    today = now.date().isoformat()
    week_ago = now - dt.timedelta(days=7)
    # Today's sync re-delivers records last changed a week ago: bronze materialises now
    # (Dagster's freshness policy is satisfied), the data is a week old.
    land(paths.landing, "zendesk", "user", today, "users.csv", zendesk_users_csv(range(1, 5), week_ago, now))
    assert materialize(paths.landing, paths.lake, select="zendesk", instance=instance,
                       log_level="ERROR", echo=lambda _: None).ok
    stale = run_staleness_check(paths, instance)
    assert not stale.passed
    assert stale.severity == dg.AssetCheckSeverity.WARN
    assert 167 < stale.metadata["age_hours"].value < 169
    assert stale.metadata["window_hours"].value == 4.0
    # A real change an hour ago: fresh.
    land(paths.landing, "zendesk", "user", today, "more.csv",
         zendesk_users_csv(range(5, 7), now - dt.timedelta(hours=1), now))
    assert materialize(paths.landing, paths.lake, select="zendesk", instance=instance,
                       log_level="ERROR", echo=lambda _: None).ok
    assert run_staleness_check(paths, instance).passed


def test_the_staleness_check_runs_with_bronze_and_is_recorded(paths, instance) -> None:
    day = "2026-02-02"  # the events are from February: stale today
    land(paths.landing, "zendesk", "user", day, "users.csv",
         zendesk_users_csv(range(1, 4), dt.datetime(2026, 2, 2, 10, tzinfo=dt.UTC),
                           dt.datetime(2026, 2, 2, 11, tzinfo=dt.UTC)))
    summary = materialize(paths.landing, paths.lake, select="zendesk", instance=instance,
                          log_level="ERROR", echo=lambda _: None)
    assert summary.tables["bronze/zendesk_user"].checks["newest_event_within_window"] is False


def test_quarantine_check_is_per_landing_day_and_names_the_bad_one(paths, instance) -> None:
    # 3 days in one run: 2 clean days of 40 rows, one day with 2 bad rows of 10. Over the
    # whole range that is 2/90 = 2.2%, per day 20% on the bad one: the check is per day.
    for day, good, bad in (("2026-02-01", 40, 0), ("2026-02-02", 8, 2), ("2026-02-03", 40, 0)):
        at = dt.datetime.fromisoformat(f"{day}T10:00:00+00:00")
        land(paths.landing, "zendesk", "user", day, "u.csv", zendesk_users_csv(range(good), at, bad=bad))
    config = parse_config("bronze:\n  quarantine_warn_rate: 0.05\n")
    summary = materialize(paths.landing, paths.lake, select="bronze/zendesk_user", config=config,
                          instance=instance, log_level="ERROR", echo=lambda _: None)
    assert summary.tables["bronze/zendesk_user"].checks["quarantine_rate_below_threshold"] is False
    key = dg.AssetCheckKey(dg.AssetKey(["bronze", "zendesk_user"]), "quarantine_rate_below_threshold")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    metadata = record.event.dagster_event.event_specific_data.metadata
    assert metadata["partitions_over_threshold"].value == 1
    assert metadata["partitions_checked"].value == 3
    assert metadata["worst_partitions"].value.startswith("* 2026-02-02: 20.00% (2 of 10)")
    assert "u.csv` line" in metadata["examples"].value


def test_duplicate_current_edges_are_counted_with_examples() -> None:
    edges = pl.LazyFrame({
        "record_node_id": ["customer:sap:1", "customer:sap:1", "customer:sap:1", "customer:sap:2",
                           "customer:sap:2"],
        "rel_type": ["HAS_PHONE", "HAS_PHONE", "HAS_EMAIL", "HAS_PHONE", "HAS_PHONE"],
        "source_system": ["sap"] * 5,
        "is_current": [True, True, True, True, False],  # record 2's old edge is history
    })
    found = duplicate_current_edges(edges)
    assert found.rows() == [("customer:sap:1", "HAS_PHONE", "sap", 2)]
    result = duplicate_edges_result(found, "/lake/silver/relationships")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "`customer:sap:1` HAS_PHONE (sap): 2 current edges" in result.metadata["examples"].value
    assert duplicate_edges_result(found.clear(), "/x").passed


def test_definitions_carry_freshness_policies_checks_and_automation() -> None:
    defs = build_definitions(C360Config(), C360Paths(landing_root="/l", lake_root="/k"))
    graph = defs.resolve_asset_graph()
    for source in BUILTIN_BY_NAME.values():
        for table in source.tables:
            node = graph.get(dg.AssetKey(["bronze", table.key]))
            assert node.freshness_policy is not None, table.key
        assert staleness_check_key(source) in graph.asset_check_keys
    relationships = dg.AssetCheckKey(dg.AssetKey(["silver", "relationships"]),
                                     "no_duplicate_current_edges")
    [spec] = [spec for c in defs.asset_checks for spec in c.check_specs if spec.key == relationships]
    assert spec.blocking
    assert graph.get(dg.AssetKey(["silver", "identity"])).automation_condition is not None
    assert graph.get(dg.AssetKey(["gold", "customer_profile_v2"])).automation_condition is not None


def test_an_event_time_after_its_landing_day_cannot_make_a_silent_source_fresh(paths, instance) -> None:
    # Landed in February, claiming an update an hour ago (a wrong clock, a future date
    # field): the event happened by the end of its landing day at the latest.
    now = dt.datetime.now(dt.UTC)
    land(paths.landing, "zendesk", "user", "2026-02-02", "users.csv",
         zendesk_users_csv(range(1, 3), now - dt.timedelta(hours=1)))
    # By default bronze quarantines such rows (bronze.future_tolerance_hours): nothing
    # lands, and the source is stale for having no data.
    assert materialize(paths.landing, paths.lake, select="zendesk", instance=instance,
                       log_level="ERROR", echo=lambda _: None).ok
    assert pl.read_delta(str(paths.lake / "quarantine" / "zendesk_user")).height == 2
    assert not run_staleness_check(paths, instance).passed
    # With a tolerance that lets them land, the check still caps them at the day's end.
    lenient = parse_config("bronze: {future_tolerance_hours: 1000000}")
    assert materialize(paths.landing, paths.lake, select="zendesk", instance=instance,
                       config=lenient, log_level="ERROR", echo=lambda _: None).ok
    assert pl.read_delta(str(paths.lake / "bronze" / "zendesk_user")).height == 2
    stale = run_staleness_check(paths, instance)
    assert not stale.passed
    assert "2026-02-03T00:00:00+00:00" in stale.metadata["newest_per_table"].value


GRAPH_ONLY = "group:bronze,silver/field_changes,silver/relationships,silver/nodes"
EDGES_CHECK = dg.AssetCheckKey(dg.AssetKey(["silver", "relationships"]),
                               "no_duplicate_current_edges")


def _edges_check(instance: dg.DagsterInstance) -> tuple[bool, object]:
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [EDGES_CHECK])[EDGES_CHECK]
    data = record.event.dagster_event.event_specific_data
    return data.passed, data.metadata["records_checked"].value


def _run_edges_check(paths: C360Paths, instance: dg.DagsterInstance) -> tuple[bool, object]:
    defs = build_definitions(C360Config(), paths)
    dg.materialize([*defs.assets, *defs.asset_checks], instance=instance,
                   resources={"c360": paths, "dbt": dbt_resource()},
                   selection=dg.AssetSelection.checks(EDGES_CHECK), raise_on_error=False)
    return _edges_check(instance)


def test_duplicate_edges_check_reads_the_records_written_since_it_last_passed(
        small_world: Path, tmp_path: Path, instance: dg.DagsterInstance) -> None:
    import shutil

    from c360_assets.lib import change_log, delta, layout

    paths = C360Paths(landing_root=str(tmp_path / "landing"), lake_root=str(tmp_path / "lake"))
    days = sorted({p.name for p in small_world.glob("*/*/*") if p.is_dir()})

    def land_days(chosen: list[str]) -> None:
        for folder in small_world.glob("*/*/*"):
            if folder.name in chosen:
                shutil.copytree(folder, paths.landing / folder.relative_to(small_world))

    land_days(days[:3])
    assert materialize(paths.landing, paths.lake, select=GRAPH_ONLY, instance=instance,
                       log_level="ERROR").ok
    assert _edges_check(instance) == (True, "every record")  # nothing passed before
    land_days(days[3:4])
    assert materialize(paths.landing, paths.lake, select=GRAPH_ONLY, instance=instance,
                       log_level="ERROR").ok
    rel_path = layout.silver_table(paths.lake, "relationships")
    edges = delta.read_table(rel_path)
    records = edges["record_node_id"].n_unique()
    passed, checked = _edges_check(instance)
    assert passed and isinstance(checked, int) and 0 < checked < records

    # A second current edge written around silver (no record change log entry): the log
    # cannot say what changed, so every record is read, and the duplicate is found.
    victim = edges.filter(pl.col("is_current"))["record_node_id"][0]
    row = edges.filter((pl.col("record_node_id") == victim) & pl.col("is_current")).head(1)
    twin = row.with_columns(pl.lit("value:elsewhere").alias("target_node_id"))
    delta.commit(rel_path, delta.to_arrow(twin), mode="append")
    assert _run_edges_check(paths, instance) == (False, "every record")
    # Repaired the same way; the next evaluation reads everything again and passes.
    delta.commit(rel_path, delta.to_arrow(edges), mode="overwrite")
    assert _run_edges_check(paths, instance) == (True, "every record")

    # A keyed write that leaves two current edges for one record, logged as silver logs
    # its writes: only that record is read, and the duplicate is found.
    own = edges.filter(pl.col("record_node_id") == victim)
    write = delta.replace_keyed_rows(rel_path, pl.concat([own, twin]), key="record_node_id",
                                     keys=pl.Series([victim]))
    change_log.append(paths.lake, "relationships", write.versions, pl.Series([victim]))
    assert _run_edges_check(paths, instance) == (False, 1)
    # Nothing written since, but the last evaluation failed: everything is read again, so
    # the duplicate stays reported until it is gone.
    assert _run_edges_check(paths, instance) == (False, "every record")

    # One instance, another lake: a copy (same Delta table ids) holding the duplicate,
    # then two logged writes of another record there. The first lake, repaired, passes;
    # its history must not scope the copy's check to the copy's last write.
    copy = C360Paths(landing_root=str(paths.landing), lake_root=str(tmp_path / "copy"))
    shutil.copytree(paths.lake, copy.lake)
    delta.commit(rel_path, delta.to_arrow(edges), mode="overwrite")
    assert _run_edges_check(paths, instance) == (True, "every record")
    other = edges.filter(pl.col("record_node_id") != victim)["record_node_id"][0]
    for step in (1, 2):
        mine = edges.filter(pl.col("record_node_id") == other).with_columns(
            pl.col("confidence") * 0.5 ** step)
        write = delta.replace_keyed_rows(layout.silver_table(copy.lake, "relationships"), mine,
                                         key="record_node_id", keys=pl.Series([other]))
        change_log.append(copy.lake, "relationships", write.versions, pl.Series([other]))
    assert _run_edges_check(copy, instance) == (False, "every record")
