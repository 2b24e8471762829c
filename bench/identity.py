"""Benchmark: identity resolution on a generated world - accuracy against the truth,
time and memory of a full run, an incremental day and a no-op re-run.

    python -m bench.identity --persons 1000000 --days 30

Generates days+1 landing days, builds bronze and silver for the first `days`, then
measures (each step a child process, peak RSS its own) a full identity run; scores it
against `_truth/records.parquet`; then lands one more day and measures the incremental
silver and identity runs and a re-run with nothing new.
"""

from __future__ import annotations

import sys

import polars as pl

from bench.accuracy import HEADER, accuracy
from bench.harness import landed_world, run_step, table, world_args
from c360_assets.silver.identity_build import truth_labels


def main() -> None:
    args = world_args(__doc__.splitlines()[0])
    world = landed_world(f"identity-{args.persons}", args)
    landing, lake, py = world.landing, world.lake, sys.executable
    run_step("silver: full build", [py, "-m", "bench.silver_step", str(lake), "--full"])
    steps = [run_step("identity: full", [py, "-m", "bench.identity_step", str(lake), "--full"])]
    truth = truth_labels(landing / "_truth" / "records.parquet")
    ident = pl.read_delta(str(lake / "silver" / "identity"))
    full = accuracy(ident, truth)
    by_rule = ident.group_by("rule").len().sort("len", descending=True)
    world.bronze_extra_day()
    run_step("silver: incremental (one new day)", [py, "-m", "bench.silver_step", str(lake)])
    steps.append(run_step("identity: incremental (one new day)",
                          [py, "-m", "bench.identity_step", str(lake)]))
    steps.append(run_step("identity: re-run, nothing new",
                          [py, "-m", "bench.identity_step", str(lake)]))
    after = accuracy(pl.read_delta(str(lake / "silver" / "identity")), truth)
    print(f"\n{args.persons:,} persons, {args.days} days (+1 incremental day), seed {args.seed}\n")
    print(table(steps))
    print("\nAccuracy against the generator's truth (records present in silver):\n")
    print(HEADER)
    print(full.row(f"generator {args.persons:,}, {args.days} days"))
    print(after.row(f"generator {args.persons:,}, after the incremental day"))
    print("\nrecords by rule:", dict(by_rule.iter_rows()))
    world.cleanup()


if __name__ == "__main__":
    main()
