"""Benchmark: generate a world and ingest it to bronze; print wall time and peak RSS.

    python -m bench.bronze --persons 1000000 --days 30

Steps run as child processes so each peak RSS is that step's own. The floor (a bare
polars read of the same files) is measured in the same run; the ratio bronze/floor
is the figure to watch.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from bench.harness import run_step, table

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep bench/out afterwards")
    args = parser.parse_args()
    work = OUT / f"bronze-{args.persons}"
    shutil.rmtree(work, ignore_errors=True)
    landing, lake = work / "landing", work / "lake"
    py = sys.executable
    env = {"DAGSTER_HOME": str(work / "dagster_home")}
    (work / "dagster_home").mkdir(parents=True)
    steps = [
        run_step("generate", [py, "-m", "c360_assets.cli", "generate", "--persons", str(args.persons),
                              "--days", str(args.days), "--seed", str(args.seed), "--out", str(landing)]),
        run_step("floor: bare polars read of the landed files", [py, "-m", "bench.floor_read", str(landing)]),
        run_step("bronze: c360 materialize (all sources, all days)",
                 [py, "-m", "c360_assets.cli", "materialize", "--landing", str(landing), "--lake", str(lake),
                  "--log-level", "WARNING"], env=env),
    ]
    landed = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file() and "_truth" not in p.parts)
    print(f"\n{args.persons:,} persons, {args.days} days, {landed / 2**20:,.0f} MiB landed\n")
    print(table(steps))
    print(f"\nbronze / floor: {steps[2].seconds / steps[1].seconds:.1f}x")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
