"""Bronze assets through Dagster: idempotent partitions, order independence, metadata."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from c360_assets.bronze import BUILTIN
from c360_assets.bronze.assets import FORCE_TAG, bronze_key
from c360_assets.definitions import build_definitions
from c360_assets.gold.assets import dbt_resource
from c360_assets.lib import delta
from c360_assets.lib.config import C360Config, SourceConfig
from c360_assets.plan import materialize
from c360_assets.resources import C360Paths
from tests.conftest import WORLD_START
from tests.helpers import assert_same_tables, comparable, land

REPO = Path(__file__).resolve().parents[2]
WORLD_DAYS = [WORLD_START + dt.timedelta(days=i) for i in range(6)]


def _run_partition(landing: Path, lake: Path, source: str, day: dt.date, instance,
                   force: bool = False) -> None:
    paths = C360Paths(landing_root=str(landing), lake_root=str(lake))
    defs = build_definitions(paths=paths)
    keys = [bronze_key(t) for s in BUILTIN if s.name == source for t in s.tables]
    result = dg.materialize(list(defs.assets), instance=instance,
                            resources={"c360": paths, "dbt": dbt_resource()},
                            selection=dg.AssetSelection.assets(*keys), partition_key=day.isoformat(),
                            tags={FORCE_TAG: "true"} if force else None)
    assert result.success


def _tables(lake: Path, source: str) -> dict[str, pl.DataFrame]:
    out = {}
    for t in next(s for s in BUILTIN if s.name == source).tables:
        out[t.key] = comparable(delta.read_table(lake / "bronze" / t.key))
    return out


def test_definitions_validate_from_workspace_yaml() -> None:
    proc = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w",
                           "workspace.yaml"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Validation successful" in proc.stderr + proc.stdout


def test_five_partitioned_bronze_assets_with_descriptions_groups_kinds_owners() -> None:
    config = C360Config(sources={"sap": SourceConfig(start_date=dt.date(2024, 3, 1)),
                                 "zendesk": SourceConfig(start_date=dt.date(2023, 5, 1))})
    defs = build_definitions(config, C360Paths(landing_root="/l", lake_root="/k"))
    assets = [a for a in defs.assets if a.node_def.name.startswith("bronze_")]
    assert sorted(a.node_def.name for a in assets) == [f"bronze_{s.name}" for s in sorted(BUILTIN, key=lambda s: s.name)]
    for a in assets:
        assert isinstance(a.partitions_def, dg.DailyPartitionsDefinition)
        for spec in a.specs:
            assert spec.group_name == "bronze"
            assert spec.kinds == {"polars", "delta"}
            assert spec.owners == ["team:data-platform"]
            assert len(spec.description or "") > 80
    # One partitions definition (the earliest start date), so one job can run any source.
    assert len({a.partitions_def for a in assets}) == 1
    assert assets[0].partitions_def.start.date() == dt.date(2020, 1, 1)
    sap = next(a for a in assets if a.node_def.name == "bronze_sap")
    assert sap.specs_by_key[dg.AssetKey(["bronze", "sap_kna1"])].freshness_policy is not None
    assert {k.to_user_string() for k in sap.keys} == {"bronze/sap_kna1", "bronze/sap_adr6"}


def test_rematerialising_a_partition_gives_an_identical_table(small_world, tmp_path, instance) -> None:
    lake = tmp_path / "lake"
    day = WORLD_DAYS[2]
    _run_partition(small_world, lake, "salesforce", day, instance)
    first = _tables(lake, "salesforce")
    version = delta.table_version(lake / "bronze" / "salesforce_contact")
    # Unchanged landing files: nothing to rewrite, no new Delta version.
    _run_partition(small_world, lake, "salesforce", day, instance)
    assert_same_tables(_tables(lake, "salesforce"), first)
    assert delta.table_version(lake / "bronze" / "salesforce_contact") == version
    # Forced, the partition is rewritten: one new version, the same rows.
    _run_partition(small_world, lake, "salesforce", day, instance, force=True)
    assert_same_tables(_tables(lake, "salesforce"), first)
    assert delta.table_version(lake / "bronze" / "salesforce_contact") == version + 1
    assert first["salesforce_contact"]["_landing_date"].unique().to_list() == [day]
    table = DeltaTable(str(lake / "bronze" / "salesforce_contact"))
    assert table.metadata().configuration["delta.enableChangeDataFeed"] == "true"
    assert table.metadata().partition_columns == ["_landing_date"]


@pytest.mark.parametrize("source", ["salesforce", "segment", "shopify"])
def test_landing_partitions_out_of_order_gives_the_same_bronze(small_world, tmp_path, instance, source) -> None:
    in_order = tmp_path / "in_order"
    summary = materialize(small_world, in_order, select=source, instance=instance, log_level="ERROR",
                          echo=lambda _: None)
    assert summary.ok
    shuffled = tmp_path / "shuffled"
    days = WORLD_DAYS[:]
    random.Random(3).shuffle(days)
    for day in days:
        _run_partition(small_world, shuffled, source, day, instance)
    assert_same_tables(_tables(shuffled, source), _tables(in_order, source))


def test_a_range_is_one_run_and_one_commit_per_table(small_world, tmp_path, instance) -> None:
    summary = materialize(small_world, tmp_path / "lake", select="bronze/sap",
                          partitions=(WORLD_DAYS[1], WORLD_DAYS[4]), instance=instance,
                          log_level="ERROR", echo=lambda _: None)
    assert summary.ok and len(summary.runs) == 1
    assert sorted(summary.tables) == ["bronze/sap_adr6", "bronze/sap_kna1"]
    kna1_rows = delta.read_table(tmp_path / "lake" / "bronze" / "sap_kna1").height
    assert summary.tables["bronze/sap_kna1"].table_rows == kna1_rows > 0
    assert delta.table_version(tmp_path / "lake" / "bronze" / "sap_kna1") == 0
    kna1 = delta.read_table(tmp_path / "lake" / "bronze" / "sap_kna1")
    assert set(kna1["_landing_date"].unique()) <= set(WORLD_DAYS[1:5])
    assert not (tmp_path / "lake" / "bronze" / "salesforce_contact").exists()
    records = instance.get_materialized_partitions(dg.AssetKey(["bronze", "sap_kna1"]))
    assert records == {d.isoformat() for d in WORLD_DAYS[1:5]}
    # Another day: the summary's table rows are the whole table's, not the day's.
    later = materialize(small_world, tmp_path / "lake", select="bronze/sap",
                        partitions=(WORLD_DAYS[0], WORLD_DAYS[0]), instance=instance,
                        log_level="ERROR", echo=lambda _: None)
    kna1 = delta.read_table(tmp_path / "lake" / "bronze" / "sap_kna1")
    written = later.tables["bronze/sap_kna1"].rows_written
    assert 0 < written < kna1.height == later.tables["bronze/sap_kna1"].table_rows


def test_materialisation_metadata_reports_counts_freshness_and_a_masked_preview(small_world, tmp_path, instance) -> None:
    _run_partition(small_world, tmp_path / "lake", "zendesk", WORLD_DAYS[0], instance)
    event = instance.get_latest_materialization_event(dg.AssetKey(["bronze", "zendesk_user"]))
    md = event.asset_materialization.metadata
    written = md["rows_written"].value
    assert written > 0 and md["dagster/row_count"].value == written
    assert md["rows_quarantined"].value == 0 and md["rows_read"].value >= written
    newest = delta.read_table(tmp_path / "lake" / "bronze" / "zendesk_user")["updated_at"].max()
    assert md["dagster/last_updated_timestamp"].value == pytest.approx(newest.timestamp())
    preview = md["preview"].value
    emails = delta.read_table(tmp_path / "lake" / "bronze" / "zendesk_user")["email"].drop_nulls()
    assert "***@" in preview and not any(e in preview for e in emails.to_list())


def test_bad_rows_go_to_quarantine_with_file_line_and_reason(small_world, tmp_path, instance) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(small_world / "zendesk", landing / "zendesk")
    day = WORLD_DAYS[3].isoformat()
    land(landing, "zendesk", "user", day, "zz-bad.csv",
         "id,name,updated_at,_fivetran_deleted,_fivetran_synced\n"
         f"12.5,Bad Id,{day}T10:00:00Z,false,{day}T11:00:00Z\n")
    summary = materialize(landing, tmp_path / "lake", select="zendesk", instance=instance,
                          log_level="ERROR", echo=lambda _: None)
    assert summary.ok
    q = delta.read_table(tmp_path / "lake" / "quarantine" / "zendesk_user")
    assert q.select("_source_file", "line", "column").rows() == [
        (f"zendesk/user/{day}/zz-bad.csv", 2, "id")]
    assert summary.tables["bronze/zendesk_user"].rows_quarantined == 1


def test_landing_days_before_the_start_date_are_an_error_not_skipped(small_world, tmp_path, instance) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(small_world / "zendesk", landing / "zendesk")
    land(landing, "zendesk", "user", "2019-12-31", "old.csv",
         "id,name,updated_at,_fivetran_deleted,_fivetran_synced\n1,Old,2019-12-31,false,2019-12-31\n")
    land(landing, "zendesk", "user", "not-a-day", "x.csv", "id\n1\n")
    summary = materialize(landing, tmp_path / "lake", select="zendesk", instance=instance,
                          log_level="ERROR", echo=lambda _: None)
    assert not summary.ok
    assert any("before the source's start date 2020-01-01" in p for p in summary.problems)
    assert any("not-a-day" in p and "not a landing date" in p for p in summary.problems)
    assert summary.tables["bronze/zendesk_user"].rows_written > 0  # good days still landed


def test_quarantine_rate_check_fails_when_a_partition_is_mostly_bad(tmp_path, instance) -> None:
    day = "2026-02-02"
    header = "id,name,updated_at,_fivetran_deleted,_fivetran_synced\n"
    rows = [f"{i},User {i},{day}T10:00:00Z,false,{day}T11:00:00Z\n" for i in range(1, 9)]
    rows += [f"x{i},Broken {i},{day}T10:00:00Z,false,{day}T11:00:00Z\n" for i in range(2)]
    land(tmp_path / "landing", "zendesk", "user", day, "users.csv", header + "".join(rows))
    summary = materialize(tmp_path / "landing", tmp_path / "lake", select="bronze/zendesk_user",
                          instance=instance, log_level="ERROR", echo=lambda _: None)
    table = summary.tables["bronze/zendesk_user"]
    assert (table.rows_written, table.rows_quarantined) == (8, 2)
    assert table.checks["quarantine_rate_below_threshold"] is False  # 20% > 1%
    evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["bronze", "zendesk_user"]), "quarantine_rate_below_threshold")])
    assert evaluation  # recorded for the UI


def test_plain_materialize_ingests_only_the_days_that_are_new(small_world, tmp_path, instance
                                                               ) -> None:
    """A new landing day costs one run over that day, not over every landed day; the
    bronze it leaves equals ingesting everything at once."""
    landing = tmp_path / "landing"
    shutil.copytree(small_world / "zendesk", landing / "zendesk")
    last = WORLD_DAYS[-1].isoformat()
    held_back = tmp_path / "held_back"
    for day_dir in sorted(landing.glob(f"zendesk/*/{last}")):
        shutil.move(day_dir, held_back / day_dir.relative_to(landing))
    quiet = {"instance": instance, "log_level": "ERROR", "echo": lambda _: None}
    first = materialize(landing, tmp_path / "lake", select="zendesk", **quiet)
    assert [what for what, _, _ in first.runs] == [
        f"bronze/zendesk {WORLD_DAYS[0]}...{WORLD_DAYS[-2]}"]
    for day_dir in sorted(held_back.glob(f"zendesk/*/{last}")):
        shutil.move(day_dir, landing / day_dir.relative_to(held_back))
    second = materialize(landing, tmp_path / "lake", select="zendesk", **quiet)
    assert second.ok and [what for what, _, _ in second.runs] == [f"bronze/zendesk {last}...{last}"]
    at_once = materialize(landing, tmp_path / "at_once", select="zendesk", **quiet)
    assert at_once.ok
    assert_same_tables(_tables(tmp_path / "lake", "zendesk"), _tables(tmp_path / "at_once", "zendesk"))


def test_ten_small_files_over_two_years_are_ten_one_day_runs(tmp_path, instance) -> None:
    """Sparse landing days do not make one run over every day between them: a ranged run
    records a materialisation per asset and day of its range, work or not."""
    from tests.helpers import zendesk_users_csv

    landing = tmp_path / "landing"
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=73 * i) for i in range(10)]
    for i, day in enumerate(days):
        at = dt.datetime.combine(day, dt.time(9), dt.UTC)
        land(landing, "zendesk", "user", day.isoformat(), "users.csv",
             zendesk_users_csv(range(i * 3, i * 3 + 3), at))
    summary = materialize(landing, tmp_path / "lake", select="zendesk", instance=instance,
                          log_level="ERROR", echo=lambda _: None)
    assert summary.ok, summary.problems
    assert [what for what, _, _ in summary.runs] == [f"bronze/zendesk {d}...{d}" for d in days]
    users = delta.read_table(tmp_path / "lake" / "bronze" / "zendesk_user")
    assert users.height == 30
    user = bronze_key(next(t for s in BUILTIN if s.name == "zendesk"
                           for t in s.tables if t.name == "user"))
    materialized = instance.fetch_materializations(user, limit=1000).records
    assert len(materialized) == 10  # one per landed day, not one per day of two years
