"""A lean lake (issue 13): a run with nothing new writes no new Delta version anywhere;
a changed day is the only one re-read; `c360 vacuum` leaves exactly the files the tables
reference (plus the retention window), and the lake works on after it."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from deltalake import DeltaTable

from c360_assets import cli
from c360_assets.generator import generate
from c360_assets.lib import delta
from c360_assets.lib.maintenance import lake_tables as delta_tables
from c360_assets.plan import materialize
from c360_assets.runner import instance_for
from tests.helpers import assert_same_lake

pytestmark = pytest.mark.xdist_group("lean")
START = dt.date(2026, 1, 1)


def build(landing: Path, lake: Path, **kwargs):  # noqa: ANN201 - plan.RunSummary
    summary = materialize(landing, lake, instance=instance_for(lake), log_level="ERROR",
                          echo=lambda _: None, **kwargs)
    assert summary.ok, summary.problems
    return summary


def versions(lake: Path) -> dict[str, int]:
    return {f"{p.parent.name}/{p.name}": delta.table_version(p) for p in delta_tables(lake)}


def files_on_disk(table: Path) -> set[Path]:
    return {p.resolve() for p in table.rglob("*.parquet") if "_delta_log" not in p.parts}


def referenced(table: Path) -> set[Path]:
    return {Path(u.removeprefix("file://")).resolve() for u in DeltaTable(str(table)).file_uris()}


@pytest.fixture(scope="session")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lean") / "landing"
    generate(80, 3, 13, out, start=START, progress=lambda _: None)
    return out


@pytest.fixture(scope="session")
def clean(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("lean-clean") / "lake"
    build(landing, lake)
    return lake


def test_a_run_with_nothing_new_writes_no_new_delta_version(landing, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    lake = tmp_path / "lake"
    build(landing, lake)
    before = versions(lake)
    assert len(before) == 39  # bronze and quarantine 10 each, silver 10, gold 9
    dbt_log = lake / "_ops" / "dbt_target" / "dbt.log"
    log_size = dbt_log.stat().st_size
    said = []
    instance = instance_for(lake)
    runs_before = len(instance.get_run_records())
    summary = materialize(landing, lake, instance=instance, log_level="ERROR", echo=said.append)
    assert summary.ok and summary.runs == []  # no stage had work: no Dagster run at all
    assert len(instance.get_run_records()) == runs_before
    assert versions(lake) == before
    assert dbt_log.stat().st_size == log_size  # dbt did not even start
    assert sum("unchanged since bronze ingested them" in s for s in said) == 5
    assert any("nothing built or published" in s for s in said)


def test_the_cli_with_nothing_new_does_not_load_dagster(landing, clean):
    """Nothing new is decided before Dagster (and its storage) is imported: seconds."""
    import subprocess
    import sys

    probe = ("import sys; from c360_assets.cli import main; "
             f"rc = main(['materialize', '--landing', {str(landing)!r}, '--lake', {str(clean)!r}]); "
             "print('loaded:', sorted({m.split('.')[0] for m in sys.modules} "
             "& {'dagster', 'dagster_dbt', 'dbt', 'sqlalchemy'})); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "loaded: []" in out.stdout
    assert out.stdout.count("unchanged since bronze ingested them") == 5


def test_nothing_new_after_a_writer_died_holding_the_lock_still_recovers_its_run(
        landing, clean, tmp_path, monkeypatch):
    """A `c360 materialize` killed mid-run leaves a started Dagster run; the next run,
    even with nothing new to do, marks it failed (it loads Dagster for that)."""
    import shutil
    import signal
    import subprocess
    import sys
    import textwrap

    import dagster as dg

    lake = tmp_path / "lake"
    shutil.copytree(clean, lake)
    home = tmp_path / "home"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        import dagster as dg
        from c360_assets.lib.lock import lake_lock
        from c360_assets.ops.recovery import process_tags
        from c360_assets.runner import instance_for
        lake = Path({str(lake)!r})
        with lake_lock(lake, "c360 materialize"):
            instance = instance_for(lake)
            job = dg.GraphDefinition(name="g", node_defs=[dg.OpDefinition(
                name="o", compute_fn=lambda *_: None)]).to_job(name="stuck")
            run = instance.create_run_for_job(
                job, tags={{**process_tags(lake), "c360/launched_by": "cli"}})
            instance.handle_run_event(run.run_id, dg.DagsterEvent(
                event_type_value="PIPELINE_START", job_name="stuck", message="started"))
            print(run.run_id, flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "DAGSTER_HOME": str(home)})
    run_id = holder.stdout.readline().strip()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    before = versions(lake)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = instance_for(lake)
    said: list[str] = []
    summary = materialize(landing, lake, log_level="ERROR", echo=said.append)
    assert summary.ok and summary.runs == []
    assert any("ended without releasing it" in s for s in said)
    assert any(s.startswith(f"recovered run {run_id[:8]}") for s in said)
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert any("nothing built or published" in s for s in said)
    assert versions(lake) == before


def test_a_changed_day_is_the_only_one_reread(landing, clean, tmp_path):
    import shutil

    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    lake = tmp_path / "lake"
    build(copy, lake)
    before = versions(lake)
    # A connector re-delivers day 2 of Zendesk users (same rows, a new file time).
    day2 = copy / "zendesk" / "user" / (START + dt.timedelta(days=1)).isoformat()
    for f in day2.iterdir():
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    said = []
    materialize(copy, lake, instance=instance_for(lake), log_level="INFO", echo=said.append)
    after = versions(lake)
    changed = {k for k in after if after[k] != before[k]}
    # Only Zendesk's bronze and quarantine tables took a commit (its day 2), one each;
    # the rows are the same, so silver, identity and gold did not change.
    assert changed == {"bronze/zendesk_user", "bronze/zendesk_organization",
                       "quarantine/zendesk_user", "quarantine/zendesk_organization"}
    assert all(after[k] == before[k] + 1 for k in changed)
    history = DeltaTable(str(lake / "bronze" / "zendesk_user")).history(1)[0]
    assert "2026-01-02" in history["operationParameters"]["predicate"]
    assert "2026-01-01" not in history["operationParameters"]["predicate"]
    assert_same_lake(lake, clean)


def test_vacuum_leaves_only_referenced_files_and_the_lake_works_on(landing, clean, tmp_path,
                                                                  monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    lake = tmp_path / "lake"
    build(landing, lake, partitions=(START, START + dt.timedelta(days=1)))
    build(landing, lake, partitions=(START, START + dt.timedelta(days=1)), force=True)
    tables = delta_tables(lake)
    stale = sum(len(files_on_disk(t) - referenced(t)) for t in tables)
    assert stale > 0  # the forced rewrite left replaced files behind

    # Within the retention window nothing is deleted (compaction may add files).
    on_disk = set().union(*(files_on_disk(t) for t in tables))
    assert cli.main(["vacuum", "--lake", str(lake)]) == 0
    assert "removed 0 file(s)" in capsys.readouterr().out
    assert on_disk <= set().union(*(files_on_disk(t) for t in tables))

    assert cli.main(["vacuum", "--lake", str(lake), "--retention-hours", "0"]) == 0
    out = capsys.readouterr().out
    assert "retention 0 h: removed" in out
    for table in tables:
        assert files_on_disk(table) == referenced(table), table
        assert not (table / "_change_data").exists() or not any((table / "_change_data").rglob("*"))
        assert (table / "_delta_log" / "_last_checkpoint").exists()

    # Nothing new: still no new version; then the third day lands on the vacuumed lake,
    # and the result equals a lake that never saw a vacuum.
    before = versions(lake)
    build(landing, lake, partitions=(START, START + dt.timedelta(days=1)))
    assert versions(lake) == before
    build(landing, lake)
    assert_same_lake(lake, clean)


def test_vacuum_keeps_change_data_silver_has_not_read(landing, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    lake = tmp_path / "lake"
    build(landing, lake, partitions=(START, START))
    build(landing, lake, select="group:bronze")  # days 2-3 in bronze, silver behind
    assert cli.main(["vacuum", "--lake", str(lake), "--retention-hours", "0"]) == 0
    out = capsys.readouterr().out
    assert "bronze/salesforce_contact: vacuum waits (silver has not read its latest changes" in out
    summary = build(landing, lake, select="group:silver")
    assert summary.tables["silver/field_changes"].rows_written > 0


def test_vacuum_refuses_while_another_process_writes(landing, tmp_path, capsys):
    from c360_assets.lib.lock import lake_lock

    lake = tmp_path / "lake"
    lake.mkdir()
    with lake_lock(lake, "c360 materialize (a test holding the lock)"):
        # This process holds it: the CLI in a child process must be refused.
        import subprocess
        import sys

        proc = subprocess.run([sys.executable, "-m", "c360_assets.cli", "vacuum", "--lake",
                               str(lake)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    assert f"pid {os.getpid()}" in proc.stderr and "a test holding the lock" in proc.stderr
