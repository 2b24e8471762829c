"""Benchmark: what the landing sensor and the schedule cost per tick as landing history grows.

    python -m bench.ops --days 365 --files-per-day 4

Both fingerprint every landing day folder of every source on every evaluation (the
sensor each minute). This builds a landing tree of DAYS day folders per table (all five
sources, FILES files each, small CSVs: the cost is directory listing and stat, not
bytes), then times, in-process:

* the sensor's first tick on a lake with no ingest ledger (every day is new),
* a tick with nothing changed (the steady state, every minute),
* a tick after one file of one day was rewritten,
* the schedule's comparison with the ingest ledger (everything ingested),

each the median of 5 repeats, and the cost per landed file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from c360_assets.bronze import BUILTIN
from c360_assets.bronze.watch import record_ingested, scan_source
from c360_assets.lib.config import C360Config
from c360_assets.ops.sensors import landing_run_requests
from c360_assets.resources import C360Paths

START = dt.date(2025, 1, 1)


def build_tree(root: Path, days: int, files: int) -> int:
    count = 0
    for source in BUILTIN:
        for table in source.tables:
            for d in range(days):
                folder = root / source.name / table.name / (START + dt.timedelta(days=d)).isoformat()
                folder.mkdir(parents=True)
                for f in range(files):
                    (folder / f"part-{f}.csv").write_text("id\n1\n")
                    count += 1
    return count


def median_ms(fn, repeats: int = 5) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--files-per-day", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="c360-bench-ops-"))
    try:
        paths = C360Paths(landing_root=str(work / "landing"), lake_root=str(work / "lake"))
        files = build_tree(paths.landing, args.days, args.files_per_day)
        config = C360Config()
        today = START + dt.timedelta(days=args.days)

        def tick(cursor: dict) -> tuple[list, dict]:
            return landing_run_requests(paths, config, cursor, today)

        first = median_ms(lambda: tick({}))
        requests, cursor = tick({})
        steady = median_ms(lambda: tick(cursor))
        assert tick(cursor)[0] == []
        changed_file = next((paths.landing / "sap" / "kna1").iterdir()) / "part-0.csv"
        changed_file.write_text("id\n1\n2\n")
        one_changed = median_ms(lambda: tick(cursor))
        assert len(tick(cursor)[0]) == 1
        for source in BUILTIN:
            record_ingested(paths.lake, source.name, scan_source(paths.landing, source))
        schedule = median_ms(lambda: tick({}))  # no cursor: compares with the ledger
        assert tick({})[0] == []
        print(f"\n{args.days} landing days x {sum(len(s.tables) for s in BUILTIN)} tables x "
              f"{args.files_per_day} files = {files:,} files; first tick asked for "
              f"{len(requests)} run(s) (one per source: contiguous days)\n")
        print("| evaluation | median time | per 1,000 files |\n|---|---:|---:|")
        for name, ms in (("first tick, no ledger (all new)", first),
                         ("steady tick, nothing changed", steady),
                         ("tick after one file rewritten", one_changed),
                         ("schedule: compare with the ingest ledger", schedule)):
            print(f"| {name} | {ms:,.0f} ms | {ms / files * 1000:,.1f} ms |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
