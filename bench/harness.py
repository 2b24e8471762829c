"""Run benchmark steps as child processes and measure each one's wall time and peak RSS."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from c360_assets.generator import DEFAULT_START

OUT = Path(__file__).resolve().parent / "out"


@dataclass
class Step:
    name: str
    seconds: float
    peak_rss_mb: float
    returncode: int


def run_step(name: str, argv: list[str], env: dict[str, str] | None = None) -> Step:
    """Run `argv`; peak RSS is the child's own (wait4), not this process's."""
    print(f"\n=== {name}: {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    step = Step(name, seconds, usage.ru_maxrss / 1024, code)  # ru_maxrss is KiB on Linux
    print(f"=== {name}: {seconds:.1f}s, peak RSS {step.peak_rss_mb:,.0f} MiB, exit {code}", flush=True)
    if code != 0:
        sys.exit(f"step {name!r} failed with exit code {code}")
    return step


def table(steps: list[Step]) -> str:
    lines = ["| step | wall time | peak RSS |", "|---|---:|---:|"]
    lines += [f"| {s.name} | {s.seconds:.1f} s | {s.peak_rss_mb:,.0f} MiB |" for s in steps]
    return "\n".join(lines)


def world_parser(description: str) -> argparse.ArgumentParser:
    """The options every world benchmark takes: --persons, --days, --seed, --keep (a
    benchmark adds its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep bench/out afterwards")
    return parser


def world_args(description: str) -> argparse.Namespace:
    return world_parser(description).parse_args()


def fresh_workdir(name: str) -> tuple[Path, dict[str, str]]:
    """An empty bench/out/<name> with a Dagster home; the env that points runs at it."""
    work = OUT / name
    shutil.rmtree(work, ignore_errors=True)
    (work / "dagster_home").mkdir(parents=True)
    return work, {"DAGSTER_HOME": str(work / "dagster_home")}


@dataclass
class LandedWorld:
    """A generated world of `days + 1` landing days in bench/out/<name>, the first `days`
    already in bronze; `bronze_extra_day()` lands the last one (for incremental steps)."""

    args: argparse.Namespace
    work: Path
    env: dict[str, str]

    @property
    def landing(self) -> Path:
        return self.work / "landing"

    @property
    def lake(self) -> Path:
        return self.work / "lake"

    def _bronze(self, first: object, last: object) -> Step:
        return run_step(f"bronze: {first}...{last}", [
            sys.executable, "-m", "c360_assets.cli", "materialize", "--landing",
            str(self.landing), "--lake", str(self.lake), "--select", "group:bronze",
            "--log-level", "WARNING", "--partitions", f"{first}...{last}"], env=self.env)

    def bronze_extra_day(self) -> Step:
        extra = DEFAULT_START + dt.timedelta(days=self.args.days)
        return self._bronze(extra, extra)

    def cleanup(self) -> None:
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def landed_world(name: str, args: argparse.Namespace) -> LandedWorld:
    """Generate `args.days + 1` days (seed `args.seed`) and ingest the first `args.days`
    to bronze, each a measured step."""
    work, env = fresh_workdir(name)
    world = LandedWorld(args, work, env)
    run_step("generate", [sys.executable, "-m", "c360_assets.cli", "generate", "--persons",
                          str(args.persons), "--days", str(args.days + 1), "--seed",
                          str(args.seed), "--out", str(world.landing)])
    world._bronze(DEFAULT_START, DEFAULT_START + dt.timedelta(days=args.days - 1))
    return world
