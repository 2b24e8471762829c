"""Crash recovery for Dagster runs: runs left `STARTED` by a process that died.

`c360 materialize` executes its runs in its own process. Killed (`kill -9`, OOM, a lost
machine), it leaves its run `STARTED` and the run's pool slots (`delta_bronze_sap`,
`delta_identity`, `duckdb_gold`, ...) claimed, and every later run needing those pools
would wait forever. A CLI run is alive exactly while its process holds the lake's lock
(`lib/lock.py`): so a CLI run of this lake whose process does not hold the lock is dead.
`recover_dead_runs` marks such runs failed and frees their slots, through Dagster's own
instance APIs, and says what it did. It runs when a writing command starts (holding the
lock) and, under `dagster dev`, every minute from `dead_run_sensor`.

The data needs no such help: every step redoes what a killed predecessor left unfinished
(bronze overwrites its partitions, silver and identity replay from their last complete
state, gold republishes every table of an interrupted publish).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import psutil

from c360_assets.lib import lock
from c360_assets.ops import dagster_storage
from c360_assets.resources import C360Paths

LAKE_TAG = "c360/lake"
HOST_TAG = "c360/host"
PID_TAG = "c360/pid"
PID_STARTED_TAG = "c360/pid_started"
LAUNCHED_BY_TAG = "c360/launched_by"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def process_tags(lake: Path) -> dict[str, str]:
    """Tags that tie a run to this lake and this process (set on every CLI run)."""
    me = psutil.Process()
    return {LAKE_TAG: str(Path(lake).absolute()), HOST_TAG: socket.gethostname(),
            PID_TAG: str(me.pid), PID_STARTED_TAG: f"{me.create_time():.3f}"}


def _alive_holder(run: dg.DagsterRun, lake: Path) -> bool:
    """Whether the run's process is alive: it holds the lake's lock now."""
    tags = run.tags
    if lock.holds(lake):  # this process holds it: the run is alive only if it is ours
        return False     # ... and none of ours is in flight when recovery runs
    holder = lock.current_holder(lake)
    if holder is None:
        return False
    if PID_TAG not in tags:  # written by a c360 without these tags: cannot tell
        return True
    if (holder.host, str(holder.pid)) != (tags.get(HOST_TAG), tags[PID_TAG]):
        return False
    if tags.get(HOST_TAG) == socket.gethostname():  # pid reuse: compare start times
        try:
            started = psutil.Process(int(tags[PID_TAG])).create_time()
        except (psutil.NoSuchProcess, ValueError):
            return False
        return abs(started - float(tags.get(PID_STARTED_TAG, started))) < 1.0
    return True


def _slots_of(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    if not dagster_storage.pools_supported(instance):
        return []
    return [f"{key} ({slot.step_key})" for key, info in dagster_storage.pools(instance)
            for slot in info.claimed_slots if slot.run_id == run_id]


def _label(run: dg.DagsterRun, record: dg.RunRecord | None) -> str:
    what = run.tags.get("c360/stage") or run.job_name
    start = run.tags.get("dagster/asset_partition_range_start")
    if start:
        what += f" {start}...{run.tags.get('dagster/asset_partition_range_end', start)}"
    when = ""
    if record is not None and (record.start_time or record.create_timestamp):
        t = record.start_time or record.create_timestamp.timestamp()
        when = f", started {dt.datetime.fromtimestamp(t, dt.UTC):%Y-%m-%d %H:%M:%S}Z"
    who = (f" by pid {run.tags[PID_TAG]} on {run.tags.get(HOST_TAG, '?')}"
           if PID_TAG in run.tags else "")
    return f"run {run.run_id[:8]} ({what}{when}{who})"


def recover_dead_runs(instance: dg.DagsterInstance, lake: Path,
                      echo: Callable[[str], None] = print) -> list[str]:
    """Mark this lake's CLI runs whose process died as failed and free their pool slots.

    Returns one line per run recovered (also echoed)."""
    lake_str = str(Path(lake).absolute())
    done = []
    for record in instance.get_run_records(
            filters=dg.RunsFilter(statuses=UNFINISHED, tags={LAUNCHED_BY_TAG: "cli"})):
        run = record.dagster_run
        if run.tags.get(LAKE_TAG, lake_str) != lake_str or _alive_holder(run, lake):
            continue
        slots = _slots_of(instance, run.run_id)
        instance.report_run_failed(
            run, message=f"c360: the process running this run ended without finishing it "
                         f"(killed or crashed); marked failed by pid {os.getpid()} on "
                         f"{socket.gethostname()}, which now holds the lake")
        dagster_storage.free_pool_slots(instance, run.run_id)
        line = (f"recovered {_label(run, record)}: its process ended without finishing it; "
                f"marked failed" + (f", freed pool slot(s) {', '.join(slots)}" if slots else ""))
        echo(line)
        done.append(line)
    return done


class PoolWatch:
    """While a `c360 materialize` run executes in this process, say when one of its steps
    waits for a pool slot, which run holds it and since when (else the wait is silent:
    Dagster logs it only in the run's event log).

    Every run the CLI starts carries `process_tags`; the watch looks for this process's
    unfinished runs, so it needs no run id up front.
    """

    def __init__(self, instance: dg.DagsterInstance, lake: Path,
                 echo: Callable[[str], None] = print, *, first_after_s: float = 3.0,
                 every_s: float = 30.0, poll_s: float = 3.0) -> None:
        # A look reads every pool's slots and queue (tens of ms at a time, on the cores
        # the run uses): once every `poll_s`, and this process's runs only when a step
        # waits at all.
        self.instance, self.lake, self.echo = instance, lake, echo
        self.first_after_s, self.every_s, self.poll_s = first_after_s, every_s, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="c360-pool-watch",
                                        daemon=True)
        self._said: dict[tuple[str, str], float] = {}

    def __enter__(self) -> PoolWatch:
        if dagster_storage.pools_supported(self.instance):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a report must never break the run
                return

    def _mine(self) -> set[str]:
        tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
        return {r.run_id for r in self.instance.get_runs(
            filters=dg.RunsFilter(statuses=UNFINISHED, tags=tags))}

    def check(self) -> list[str]:
        """One look: a line per pool one of this process's runs has waited on for longer
        than `first_after_s` (repeated every `every_s`)."""
        mine: set[str] | None = None
        now = time.time()
        said = []
        for key, info in dagster_storage.pools(self.instance):
            for pending in info.pending_steps:
                if pending.assigned_timestamp is not None:
                    continue
                if mine is None:
                    mine = self._mine()
                if pending.run_id not in mine:
                    continue
                waited = now - pending.enqueued_timestamp.timestamp()
                last = self._said.get((key, pending.step_key))
                if waited < self.first_after_s or (last is not None
                                                   and now - last < self.every_s):
                    continue
                holders = [self._holder(slot.run_id, slot.step_key)
                           for slot in info.claimed_slots if slot.run_id not in mine]
                line = (f"waiting {waited:.0f} s for pool {key} (step {pending.step_key}): "
                        f"held by {'; '.join(holders) or 'nobody visible (a slot limit of 0?)'}"
                        ". A dead c360 run is recovered at the next start; a live one "
                        "finishes first")
                self._said[(key, pending.step_key)] = now
                self.echo(line)
                said.append(line)
        return said

    def _holder(self, run_id: str, step_key: str) -> str:
        record = self.instance.get_run_record_by_id(run_id)
        if record is None:
            return f"run {run_id[:8]} (step {step_key}; no longer in this instance)"
        run = record.dagster_run
        launched = run.tags.get(LAUNCHED_BY_TAG) or "dagster"
        return f"{_label(run, record)} step {step_key}, {run.status.value}, launched by {launched}"


def build_dead_run_sensor(running: bool) -> dg.SensorDefinition:
    @dg.sensor(name="dead_run_sensor", minimum_interval_seconds=60,
               default_status=(dg.DefaultSensorStatus.RUNNING if running
                               else dg.DefaultSensorStatus.STOPPED),
               description="Marks `c360 materialize` runs whose process died (kill -9, OOM) "
                           "failed and frees their pool slots, so runs under `dagster dev` "
                           "never wait on a dead run.")
    def dead_run_sensor(context: dg.SensorEvaluationContext, c360: C360Paths) -> dg.SkipReason:
        done = recover_dead_runs(context.instance, c360.lake, echo=context.log.warning)
        return dg.SkipReason(f"recovered {len(done)} dead run(s)" if done
                             else "no dead c360 runs")

    return dead_run_sensor
