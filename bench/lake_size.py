"""Benchmark: how the lake grows over daily runs (issue 13, "a lean lake").

    python -m bench.lake_size --persons 100000 --days 30 [--vacuum-retention-hours H]
                              [--code DIR] [--label NAME]

Generates one world of `--days` landing days (cached under bench/out/), then plays it as
a connector would: each "day" hard-links that day's folders into the landing root and runs
`c360 materialize` over the whole landing (what a cron job or the schedule does), then
optionally `c360 vacuum --retention-hours H`. After every day it measures the lake on
disk: bytes, files, Delta data files referenced by the current snapshot vs not, change
data files, Delta versions, the dbt log and the gold DuckDB file; and the Dagster home
beside it. A last run with nothing new counts the Delta versions it adds.

`--code DIR` runs another checkout's code with this Python (PYTHONPATH=DIR): the same
script measures the code before a change and after it, one run each, one table each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.harness import OUT

REPO = Path(__file__).resolve().parents[1]


@dataclass
class LakeSize:
    day: int
    seconds: float
    lake_bytes: int
    lake_files: int
    referenced_files: int
    unreferenced_files: int
    unreferenced_bytes: int
    change_data_files: int
    log_files: int
    delta_versions: int  # sum over tables of (version + 1)
    dbt_log_bytes: int
    gold_duckdb_bytes: int
    dagster_home_bytes: int


def _tree(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return sum(p.stat().st_size for p in files), len(files)


def measure(lake: Path, home: Path, day: int, seconds: float) -> LakeSize:
    from deltalake import DeltaTable

    from c360_assets.lib.maintenance import lake_tables

    size, count = _tree(lake)
    referenced = unreferenced = unreferenced_bytes = change_data = log_files = versions = 0
    for table in lake_tables(lake):
        dt_ = DeltaTable(str(table))
        live = {Path(u.removeprefix("file://")).resolve() for u in dt_.file_uris()}
        versions += dt_.version() + 1
        log_files += sum(1 for _ in (table / "_delta_log").iterdir())
        for f in table.rglob("*.parquet"):
            if "_delta_log" in f.parts:
                continue
            if "_change_data" in f.parts:
                change_data += 1
            elif f.resolve() in live:
                referenced += 1
            else:
                unreferenced += 1
                unreferenced_bytes += f.stat().st_size
    dbt_logs = sum(p.stat().st_size for p in lake.rglob("dbt.log*") if p.is_file())
    gold_db = lake / "gold.duckdb"
    return LakeSize(day, seconds, size, count, referenced, unreferenced, unreferenced_bytes,
                    change_data, log_files, versions, dbt_logs,
                    gold_db.stat().st_size if gold_db.exists() else 0, _tree(home)[0])


def world(persons: int, days: int, seed: int) -> Path:
    """The generated landing (all days), cached: same arguments, same bytes."""
    path = OUT / f"lake_size-world-{persons}-{days}-{seed}"
    if not (path / "_truth" / "manifest.json").exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "c360_assets.cli", "generate", "--persons",
                        str(persons), "--days", str(days), "--seed", str(seed), "--out",
                        str(path)], check=True, cwd=REPO)
    return path


def land_day(source_root: Path, landing: Path, day: dt.date) -> int:
    """Hard-link every `<source>/<table>/<day>/` file into the landing root."""
    n = 0
    for folder in source_root.glob(f"*/*/{day.isoformat()}"):
        target = landing / folder.relative_to(source_root)
        target.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            os.link(f, target / f.name)
            n += 1
    return n


def c360(code: Path, env: dict[str, str], *args: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "c360_assets.cli", *args], cwd=code,
                          env={**os.environ, **env, "PYTHONPATH": str(code)},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: a check or run failed; the lake is still measured
        print(proc.stdout[-4000:])
        sys.exit(f"c360 {args[0]} exited {proc.returncode}")
    return seconds, proc.returncode


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vacuum-retention-hours", type=int, default=None,
                        help="run `c360 vacuum --retention-hours H` after every day")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="checkout whose code runs (default: this one)")
    parser.add_argument("--label", default="current")
    args = parser.parse_args()

    source = world(args.persons, args.days, args.seed)
    manifest = json.loads((source / "_truth" / "manifest.json").read_text())
    start = dt.date.fromisoformat(manifest.get("start", "2026-01-01"))
    work = OUT / f"lake_size-{args.label}"
    shutil.rmtree(work, ignore_errors=True)
    landing, lake, home = work / "landing", work / "lake", work / "dagster_home"
    landing.mkdir(parents=True)
    home.mkdir()
    env = {"DAGSTER_HOME": str(home)}
    rows: list[LakeSize] = []
    print(f"{args.label}: {args.persons:,} persons, {args.days} daily runs, code {args.code}, "
          f"vacuum {'off' if args.vacuum_retention_hours is None else args.vacuum_retention_hours}",
          flush=True)
    for i in range(args.days):
        files = land_day(source, landing, start + dt.timedelta(days=i))
        seconds, code = c360(args.code, env, "materialize", "--landing", str(landing),
                             "--lake", str(lake), "--log-level", "WARNING")
        if args.vacuum_retention_hours is not None:
            seconds += c360(args.code, env, "vacuum", "--lake", str(lake), "--retention-hours",
                            str(args.vacuum_retention_hours))[0]
        row = measure(lake, home, i + 1, seconds)
        rows.append(row)
        print(f"day {i + 1:>2}: {files} files landed, {seconds:6.1f} s (exit {code}), lake "
              f"{mib(row.lake_bytes)} MiB in {row.lake_files:,} files ({row.unreferenced_files:,} "
              f"unreferenced, {row.change_data_files:,} change data), {row.delta_versions:,} "
              f"Delta versions", flush=True)
    before = rows[-1].delta_versions
    seconds, _ = c360(args.code, env, "materialize", "--landing", str(landing), "--lake",
                      str(lake), "--log-level", "WARNING")
    again = measure(lake, home, args.days, seconds)
    last = rows[-1]
    print(f"\n{args.label}: after {args.days} daily runs ({args.persons:,} persons)\n")
    print("| lake | files | referenced | unreferenced (MiB) | change data files | log files | "
          "Delta versions | dbt log | gold.duckdb | Dagster home | last day's run |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {mib(last.lake_bytes)} MiB | {last.lake_files:,} | {last.referenced_files:,} | "
          f"{last.unreferenced_files:,} ({mib(last.unreferenced_bytes)}) | "
          f"{last.change_data_files:,} | {last.log_files:,} | {last.delta_versions:,} | "
          f"{mib(last.dbt_log_bytes)} MiB | {mib(last.gold_duckdb_bytes)} MiB | "
          f"{mib(last.dagster_home_bytes)} MiB | {last.seconds:.1f} s |")
    print(f"\nA run with nothing new: {again.delta_versions - before} new Delta version(s), "
          f"{seconds:.1f} s")
    (work / "sizes.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()},
         "days": [asdict(r) for r in rows], "nothing_new": asdict(again)}, indent=1))


if __name__ == "__main__":
    main()
