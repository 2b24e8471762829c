"""Benchmark: the whole pipeline (bronze -> silver -> identity -> gold) on a generated
world, and golden-record correctness against the truth, with a record-level baseline.

    python -m bench.gold --persons 1000000 --days 30

Generates the world, then runs `c360 materialize` once over every landed day as a child
process (wall time and peak RSS of the whole pipeline, dbt's subprocess included), prints
each Dagster run's time from the instance, and scores `gold/resolved_attributes` and the
record-level-latest baselines against `_truth/` (bench/gold_accuracy.py).
"""

from __future__ import annotations

import sys

import dagster as dg

from bench.gold_accuracy import score
from bench.harness import fresh_workdir, run_step, table, world_args


def run_times(home: str) -> list[tuple[str, float]]:
    """(run, seconds) for every run in the instance, oldest first."""
    instance = dg.DagsterInstance.from_config(home)
    times = []
    for run in reversed(instance.get_runs()):
        stats = instance.get_run_stats(run.run_id)
        label = run.tags.get("c360/stage", run.run_id[:8])
        if stats.start_time and stats.end_time:
            times.append((label, stats.end_time - stats.start_time))
    return times


def main() -> None:
    args = world_args(__doc__.splitlines()[0])
    work, env = fresh_workdir(f"gold-{args.persons}")
    landing, lake, py = work / "landing", work / "lake", sys.executable
    steps = [run_step("generate", [py, "-m", "c360_assets.cli", "generate", "--persons",
                                   str(args.persons), "--days", str(args.days), "--seed",
                                   str(args.seed), "--out", str(landing)])]
    steps.append(run_step("whole pipeline: bronze -> silver -> identity -> gold", [
        py, "-m", "c360_assets.cli", "materialize", "--landing", str(landing), "--lake",
        str(lake), "--log-level", "WARNING"], env=env))
    runs = run_times(env["DAGSTER_HOME"])
    correctness = score(lake, landing / "_truth")
    print(f"\n{args.persons:,} persons, {args.days} days, seed {args.seed}\n")
    print(table(steps))
    print("\nDagster runs inside the pipeline step:\n")
    print("| run | seconds |\n|---|---:|")
    for label, seconds in runs:
        print(f"| {label} | {seconds:.1f} |")
    print(f"\nGolden values equal to the true current value ({correctness.persons_scored:,} "
          f"true persons with a live record; {correctness.persons_without_live_record:,} "
          f"without one are not scored):\n")
    print(correctness.table())
    print("\nOnly the (person, attribute) pairs whose records disagree:\n")
    print(correctness.table(contested=True))
    if not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
