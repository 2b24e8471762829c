"""Benchmark: generate a world and ingest it to bronze; print wall time and peak RSS.

    python -m bench.bronze --persons 1000000 --days 30

Steps run as child processes so each peak RSS is that step's own. The floor (a bare
polars read of the same files) is measured in the same run; the ratio bronze/floor
is the figure to watch.
"""

from __future__ import annotations

import shutil
import sys

from bench.harness import fresh_workdir, run_step, table, world_args


def main() -> None:
    args = world_args(__doc__.splitlines()[0])
    work, env = fresh_workdir(f"bronze-{args.persons}")
    landing, lake = work / "landing", work / "lake"
    py = sys.executable
    steps = [
        run_step("generate", [py, "-m", "c360_assets.cli", "generate", "--persons", str(args.persons),
                              "--days", str(args.days), "--seed", str(args.seed), "--out", str(landing)]),
        run_step("floor: bare polars read of the landed files", [py, "-m", "bench.floor_read", str(landing)]),
        run_step("bronze: c360 materialize (all sources, all days)",
                 [py, "-m", "c360_assets.cli", "materialize", "--landing", str(landing), "--lake", str(lake),
                  "--select", "group:bronze", "--log-level", "WARNING"], env=env),
    ]
    landed = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file() and "_truth" not in p.parts)
    print(f"\n{args.persons:,} persons, {args.days} days, {landed / 2**20:,.0f} MiB landed\n")
    print(table(steps))
    print(f"\nbronze / floor: {steps[2].seconds / steps[1].seconds:.1f}x")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
