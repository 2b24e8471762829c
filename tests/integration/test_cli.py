"""The `c360` command line: generate, materialize with selection and ranges, exit codes."""

from __future__ import annotations

import shutil

import polars as pl
import pytest

from c360_assets import cli
from c360_assets.lib import delta
from tests.helpers import land


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("C360_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("C360_LAKE", str(tmp_path / "lake"))


def test_generate_writes_landing_and_truth(tmp_path, capsys) -> None:
    code = cli.main(["generate", "--persons", "50", "--days", "3", "--seed", "1",
                     "--out", str(tmp_path / "w"), "--start", "2026-02-01"])
    assert code == 0
    assert (tmp_path / "w" / "_truth" / "records.parquet").exists()
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [
        "_truth", "salesforce", "sap", "segment", "shopify", "zendesk"]
    assert "simulating 50 persons over 3 days" in capsys.readouterr().out


def test_materialize_one_source_for_a_range_then_everything(small_world, tmp_path, capsys) -> None:
    lake = tmp_path / "lake"
    code = cli.main(["materialize", "--landing", str(small_world), "--lake", str(lake),
                     "--select", "bronze/sap", "--partitions", "2026-01-02...2026-01-03",
                     "--log-level", "ERROR"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "bronze/sap_kna1" in out and "bronze/salesforce_contact" not in out
    days = {d.isoformat() for d in delta.read_table(lake / "bronze" / "sap_kna1")["_landing_date"]}
    assert days and days <= {"2026-01-02", "2026-01-03"}
    assert cli.main(["materialize", "--landing", str(small_world), "--lake", str(lake),
                     "--log-level", "ERROR"]) == 0
    out = capsys.readouterr().out
    assert out.count("SUCCESS") == 4  # one bronze run for every source, silver, gold, serving
    assert "bronze/salesforce,sap,shopify,segment,zendesk 2026-01-01...2026-01-06: SUCCESS" in out
    assert "silver: SUCCESS" in out and "gold: SUCCESS" in out and "serving: SUCCESS" in out
    assert pl.read_delta(str(lake / "gold" / "customer_profile_v2")).height > 0
    assert pl.read_delta(str(lake / "bronze" / "segment_identifies")).height > 0


def test_materialize_fails_with_a_clear_message_on_bad_landing(small_world, tmp_path, capsys) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(small_world / "sap", landing / "sap")
    land(landing, "sap", "kna1", "2001-01-01", "old.csv", "mandt\n100\n")
    code = cli.main(["materialize", "--landing", str(landing), "--lake", str(tmp_path / "lake"),
                     "--log-level", "ERROR"])
    out = capsys.readouterr().out
    assert code == 1
    assert "landing day(s) before the source's start date 2020-01-01 (first 2001-01-01)" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--select", "nosuchthing"], "matches no asset"),
    (["--partitions", "2026-02-10...2026-02-01"], "end is before start"),
    (["--partitions", "yesterday"], "expected YYYY-MM-DD"),
])
def test_materialize_rejects_bad_arguments(small_world, tmp_path, capsys, args, message) -> None:
    code = cli.main(["materialize", "--landing", str(small_world), "--lake", str(tmp_path / "k"), *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_materialize_without_landing_root_says_so(tmp_path, capsys) -> None:
    assert cli.main(["materialize", "--landing", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_materialize_exits_nonzero_and_says_why_when_a_run_fails(small_world, tmp_path, capsys) -> None:
    lake = tmp_path / "lake"
    (lake / "bronze").mkdir(parents=True)
    (lake / "bronze" / "sap_kna1").write_text("not a Delta table directory")
    code = cli.main(["materialize", "--landing", str(small_world), "--lake", str(lake),
                     "--select", "sap", "--log-level", "ERROR"])
    out = capsys.readouterr().out
    assert code == 1
    assert "bronze/sap" in out and "FAILURE" in out
    assert "step bronze_sap failed: _internal.DeltaError" in out  # the root cause, not the wrapper


def test_demo_the_readme_main_job_runs_end_to_end(tmp_path, capsys) -> None:
    """`c360 demo` (the README's first command), small: generate into $C360_LANDING,
    materialise into $C360_LAKE, print a profile hint. Its generate and materialize
    steps get every option those commands have (with their defaults)."""
    code = cli.main(["demo", "--persons", "60", "--days", "2", "--log-level", "ERROR"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "simulating 60 persons over 2 days" in out
    assert pl.read_delta(str(tmp_path / "lake" / "gold" / "customer_profile_v2")).height > 0
    assert "c360 profile" in out
