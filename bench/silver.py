"""Benchmark: silver (field changes + graph), full build and one incremental day.

    python -m bench.silver --persons 1000000 --days 30

Generates days+1 landing days, ingests the first `days` to bronze, then measures (each
step a child process, peak RSS its own): the floor (scan + sort of the same bronze
rows), the full silver build, bronze for one more day, the incremental silver run over
that day, and a re-run with nothing new (must commit nothing).
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys

import polars as pl

from bench.harness import fresh_workdir, run_step, table, world_args
from c360_assets.generator import DEFAULT_START


def main() -> None:
    args = world_args(__doc__.splitlines()[0])
    work, env = fresh_workdir(f"silver-{args.persons}")
    landing, lake = work / "landing", work / "lake"
    py = sys.executable
    last = DEFAULT_START + dt.timedelta(days=args.days - 1)
    extra = last + dt.timedelta(days=1)
    cli = [py, "-m", "c360_assets.cli"]
    bronze = [*cli, "materialize", "--landing", str(landing), "--lake", str(lake),
              "--select", "group:bronze", "--log-level", "WARNING"]
    run_step("generate", [*cli, "generate", "--persons", str(args.persons), "--days",
                          str(args.days + 1), "--seed", str(args.seed), "--out", str(landing)])
    run_step(f"bronze: {DEFAULT_START}...{last}",
             [*bronze, "--partitions", f"{DEFAULT_START}...{last}"], env=env)
    rows = sum(pl.scan_delta(str(p)).select(pl.len()).collect().item()
               for p in (lake / "bronze").iterdir())
    steps = [
        run_step("floor: scan + sort of the bronze rows", [py, "-m", "bench.floor_silver",
                                                          str(lake)]),
        run_step("silver: full build", [py, "-m", "bench.silver_step", str(lake), "--full"]),
    ]
    run_step(f"bronze: one more day ({extra})", [*bronze, "--partitions", f"{extra}...{extra}"],
             env=env)
    steps.append(run_step("silver: incremental (one new day)",
                          [py, "-m", "bench.silver_step", str(lake)]))
    steps.append(run_step("silver: re-run, nothing new", [py, "-m", "bench.silver_step",
                                                          str(lake)]))
    print(f"\n{args.persons:,} persons, {args.days} days; {rows:,} bronze rows before the "
          "extra day\n")
    print(table(steps))
    print(f"\nfull silver / floor: {steps[1].seconds / steps[0].seconds:.1f}x")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
