"""Benchmark: silver (field changes + graph), full build and one incremental day.

    python -m bench.silver --persons 1000000 --days 30

Generates days+1 landing days, ingests the first `days` to bronze, then measures (each
step a child process, peak RSS its own): the floor (scan + sort of the same bronze
rows), the full silver build, bronze for one more day, the incremental silver run over
that day, and a re-run with nothing new (must commit nothing).
"""

from __future__ import annotations

import sys

import polars as pl

from bench.harness import landed_world, run_step, table, world_args


def main() -> None:
    args = world_args(__doc__.splitlines()[0])
    world = landed_world(f"silver-{args.persons}", args)
    lake, py = world.lake, sys.executable
    rows = sum(pl.scan_delta(str(p)).select(pl.len()).collect().item()
               for p in (lake / "bronze").iterdir())
    steps = [
        run_step("floor: scan + sort of the bronze rows", [py, "-m", "bench.floor_silver",
                                                          str(lake)]),
        run_step("silver: full build", [py, "-m", "bench.silver_step", str(lake), "--full"]),
    ]
    world.bronze_extra_day()
    steps.append(run_step("silver: incremental (one new day)",
                          [py, "-m", "bench.silver_step", str(lake)]))
    steps.append(run_step("silver: re-run, nothing new", [py, "-m", "bench.silver_step",
                                                          str(lake)]))
    print(f"\n{args.persons:,} persons, {args.days} days; {rows:,} bronze rows before the "
          "extra day\n")
    print(table(steps))
    print(f"\nfull silver / floor: {steps[1].seconds / steps[0].seconds:.1f}x")
    world.cleanup()


if __name__ == "__main__":
    main()
