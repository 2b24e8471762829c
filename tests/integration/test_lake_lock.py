"""One writer per lake, whatever Dagster home launched it; dead runs and their pool slots
recovered; a pool wait names its holder (issue 13)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.generator import generate
from c360_assets.lib import delta, lock
from c360_assets.lib.lock import LakeLocked, lake_lock
from c360_assets.ops.recovery import (
    LAKE_TAG,
    PID_TAG,
    PoolWatch,
    process_tags,
    recover_dead_runs,
)
from c360_assets.plan import materialize
from c360_assets.runner import instance_for
from tests.helpers import lake_tables

REPO = Path(__file__).resolve().parents[2]
START = dt.date(2026, 1, 1)


# ---------------------------------------------------------------------------- the lock


def hold_lock(lake: Path, command: str, until: str, **popen: object) -> subprocess.Popen:
    """A child process holding the lake's lock as `command` until the statement `until`
    returns; it has the lock when this returns."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from c360_assets.lib.lock import lake_lock
        with lake_lock(Path({str(lake)!r}), {command!r}):
            print("holding", flush=True)
            {until}
    """)], stdout=subprocess.PIPE, text=True, cwd=REPO, **popen)
    assert child.stdout.readline().strip() == "holding"
    return child


def test_the_lock_is_exclusive_between_processes_and_reentrant_within_one(tmp_path) -> None:
    lake = tmp_path / "lake"
    with lake_lock(lake, "first"):
        with lake_lock(lake, "nested: the same process"):
            assert lock.holds(lake)
        holder = lock.current_holder(lake)
        assert (holder.pid, holder.command) == (os.getpid(), "first")
        child = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(f"""
                from pathlib import Path
                from c360_assets.lib.lock import lake_lock, LakeLocked
                try:
                    with lake_lock(Path({str(lake)!r}), "second", wait_s=1, poll_s=0.1):
                        print("acquired")
                except LakeLocked as exc:
                    print("refused:", exc)
            """)], capture_output=True, text=True, timeout=60, cwd=REPO)
        assert "refused:" in child.stdout and "acquired" not in child.stdout, child.stderr
        assert f"pid {os.getpid()}" in child.stdout and "`first`" in child.stdout
    assert lock.current_holder(lake) is None and not lock.holds(lake)


def test_a_holder_killed_by_sigkill_frees_the_lock_and_the_next_says_so(tmp_path) -> None:
    lake = tmp_path / "lake"
    holder = hold_lock(lake, "c360 materialize", "time.sleep(600)")
    with pytest.raises(LakeLocked, match=f"pid {holder.pid}"), lake_lock(lake, "me"):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    said = []
    with lake_lock(lake, "me", echo=said.append):
        assert lock.current_holder(lake).command == "me"
    assert len(said) == 1 and f"pid {holder.pid}" in said[0]
    assert "ended without releasing it" in said[0]


def test_waiting_for_the_lock_says_who_holds_it_then_proceeds(tmp_path) -> None:
    lake = tmp_path / "lake"
    said: list[str] = []
    release = threading.Event()

    def other() -> None:
        child = hold_lock(lake, "c360 vacuum", "sys.stdin.readline()", stdin=subprocess.PIPE)
        release.wait(30)
        child.communicate("go\n", timeout=30)

    thread = threading.Thread(target=other)
    thread.start()
    deadline = time.monotonic() + 30
    while lock.current_holder(lake) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    threading.Timer(1.5, release.set).start()
    with lake_lock(lake, "me", wait_s=30, echo=said.append, poll_s=0.1, report_every_s=1):
        pass
    thread.join()
    assert said and "waiting for the lake lock: held by pid" in said[0] and "c360 vacuum" in said[0]


# ---------------------------------------------------------------------------- two homes


@pytest.fixture(scope="session")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lock") / "landing"
    generate(60, 2, 5, out, start=START, progress=lambda _: None)
    return out


def cli(landing: Path, lake: Path, home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "c360_assets.cli", "materialize", "--landing", str(landing),
         "--lake", str(lake), "--log-level", "WARNING", *args],
        env={**os.environ, "DAGSTER_HOME": str(home)}, cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_writers_with_different_dagster_homes_one_fails_clearly_one_waits(landing,
                                                                             tmp_path):
    lake = tmp_path / "lake"
    first = cli(landing, lake, tmp_path / "home_a")
    deadline = time.monotonic() + 120
    while lock.current_holder(lake) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lock.current_holder(lake).pid == first.pid
    # Another home, no waiting: refused at once, naming the holder; it wrote nothing.
    refused = cli(landing, lake, tmp_path / "home_b")
    out = refused.communicate(timeout=120)[0]
    assert refused.returncode == 3, out
    assert f"is being written by pid {first.pid}" in out and "c360 materialize" in out
    # A third, willing to wait, runs after the first.
    waiting = cli(landing, lake, tmp_path / "home_c", "--wait-for-lock", "600")
    assert first.wait(timeout=600) == 0, first.stdout.read()
    out = waiting.communicate(timeout=600)[0]
    assert waiting.returncode == 0, out
    assert "waiting for the lake lock: held by pid" in out
    # Nothing corrupted: one build's worth, as a lake built alone.
    alone = tmp_path / "alone"
    summary = materialize(landing, alone, instance=instance_for(alone), log_level="ERROR",
                          echo=lambda _: None)
    assert summary.ok
    expected, got = lake_tables(alone), lake_tables(lake)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].equals(expected[name]), name


# ---------------------------------------------------------------------------- dead runs


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    run = instance.create_run_for_job(
        dg.GraphDefinition(name="g", node_defs=[dg.OpDefinition(name="o", compute_fn=lambda *_: None)]
                           ).to_job(name="stuck"), tags=tags)
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value="PIPELINE_START", job_name="stuck", message="started"))
    return instance.get_run_by_id(run.run_id)


def test_a_dead_cli_run_is_failed_and_its_pool_slot_freed(tmp_path, instance) -> None:
    lake = tmp_path / "lake"
    instance.event_log_storage.set_concurrency_slots("delta_silver", 1)
    tags = {**process_tags(lake), "c360/launched_by": "cli", "c360/stage": "silver",
            PID_TAG: str(_dead_pid())}
    dead = _started_run(instance, tags)
    assert instance.event_log_storage.claim_concurrency_slot(
        "delta_silver", dead.run_id, "silver_graph").is_claimed
    other_lake = _started_run(instance, {**tags, LAKE_TAG: str(tmp_path / "elsewhere")})
    with lake_lock(lake, "c360 materialize"):
        said = recover_dead_runs(instance, lake, echo=lambda _: None)
    assert len(said) == 1 and dead.run_id[:8] in said[0]
    assert "freed pool slot(s) delta_silver (silver_graph)" in said[0]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(other_lake.run_id).status == dg.DagsterRunStatus.STARTED
    info = instance.event_log_storage.get_concurrency_info("delta_silver")
    assert not info.claimed_slots


def test_a_run_whose_process_holds_the_lake_is_left_alone(tmp_path, instance) -> None:
    lake = tmp_path / "lake"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import json, time
            from pathlib import Path
            from c360_assets.lib.lock import lake_lock
            from c360_assets.ops.recovery import process_tags
            with lake_lock(Path({str(lake)!r}), "c360 materialize"):
                print(json.dumps(process_tags(Path({str(lake)!r}))), flush=True)
                time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    tags = json.loads(holder.stdout.readline())
    try:
        live = _started_run(instance, {**tags, "c360/launched_by": "cli"})
        assert recover_dead_runs(instance, lake, echo=lambda _: None) == []
        assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        holder.kill()
        holder.wait()
    # Its process gone, the same run is dead.
    assert len(recover_dead_runs(instance, lake, echo=lambda _: None)) == 1


def test_a_run_waiting_for_a_pool_says_which_run_holds_it(tmp_path, instance) -> None:
    lake = tmp_path / "lake"
    storage = instance.event_log_storage
    storage.set_concurrency_slots("delta_silver", 1)
    holder = _started_run(instance, {"c360/launched_by": "landing_sensor",
                                     "c360/stage": "silver"})
    assert storage.claim_concurrency_slot("delta_silver", holder.run_id, "silver_graph").is_claimed
    mine = _started_run(instance, {**process_tags(lake), "c360/launched_by": "cli"})
    storage.claim_concurrency_slot("delta_silver", mine.run_id, "silver_graph")  # queued
    watch = PoolWatch(instance, lake, echo=lambda _: None, first_after_s=0.0)
    said = watch.check()
    assert len(said) == 1
    assert said[0].startswith("waiting ") and "for pool delta_silver (step silver_graph)" in said[0]
    assert f"run {holder.run_id[:8]} (silver" in said[0] and "launched by landing_sensor" in said[0]
    assert watch.check() == []  # said once, repeated only every `every_s`


def test_a_dagster_step_that_meets_another_writer_is_retried_later(tmp_path, instance) -> None:
    """Under `dagster dev` a writing step that finds the lake held does not sit on its pool
    slot: it asks Dagster to retry it, and runs once the holder is done."""
    from c360_assets import resources
    from c360_assets.bronze import BUILTIN_BY_NAME
    from c360_assets.bronze.assets import bronze_key
    from c360_assets.definitions import build_definitions
    from c360_assets.gold.assets import dbt_resource
    from c360_assets.lib.config import C360Config, LockConfig
    from tests.helpers import land, zendesk_users_csv

    quick = C360Config(lock=LockConfig(step_wait_s=0.5, step_retry_s=1, step_max_retries=30))
    landing_root, lake = tmp_path / "landing", tmp_path / "lake"
    land(landing_root, "zendesk", "user", "2026-02-01", "u.csv",
         zendesk_users_csv(range(1, 4), dt.datetime(2026, 2, 1, 8, tzinfo=dt.UTC)))
    holder = hold_lock(lake, "c360 vacuum", "time.sleep(4)")
    paths = resources.C360Paths.at(landing_root, lake, quick)  # the lock settings travel
    defs = build_definitions(quick, paths)
    keys = [bronze_key(t) for t in BUILTIN_BY_NAME["zendesk"].tables]
    result = dg.materialize(list(defs.assets), instance=instance, partition_key="2026-02-01",
                            resources={"c360": paths, "dbt": dbt_resource()},
                            selection=dg.AssetSelection.assets(*keys))
    holder.wait()
    assert result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries, "the step should have been retried while the lake was held"
    assert delta.table_exists(lake / "bronze" / "zendesk_user")
