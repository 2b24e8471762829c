"""Benchmark: what a day's changes cost, against a minimal per-day baseline.

    python -m bench.incremental [--persons 100000] [--days 30] [--seed 1] [--keep]

Generates `days + 1` landing days, lands the first `days` and runs plain
`c360 materialize` (as the README says) from an empty lake; lands the last day and runs
it again; then once more with nothing new. Each is one child process: wall time, peak
RSS, and how many new Delta versions it committed across the lake's tables.

The baseline (`python -m bench.incremental --baseline ...`, also a child process) is the
seed guide's algorithm with identity given (the generator's truth): per landing day, the
day's rows of every main customer table, each field with its *record*-level time
(`TableSpec.record_time`), merged into an attribute-history table in DuckDB; then a
latest-value profile (one row per person and attribute) rebuilt from the history. Files
are read and typed with c360's own landing reader, so parsing costs the same on both
sides; what the ratios show is what orchestration, the graph, identity and field-level
truth cost on top. No field times, no deletes, no secondary tables, no identity.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path

from bench.harness import OUT, Step, run_step
from bench.lake_size import land_day
from c360_assets.generator import DEFAULT_START

PY = sys.executable


# ---------------------------------------------------------------------------- the lake side


def delta_versions(lake: Path) -> dict[str, int]:
    """Delta table -> its newest version, over every table of the lake."""
    from c360_assets.lib import delta
    from c360_assets.lib.maintenance import lake_tables

    return {str(p.relative_to(lake)): delta.table_version(p) or 0 for p in lake_tables(lake)}


def new_versions(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(after[t] - before.get(t, -1) for t in after)


def land_days(staging: Path, landing: Path, days: list[dt.date]) -> int:
    """Hard-link the day folders of `days` from `staging` into `landing`; files linked."""
    return sum(land_day(staging, landing, day) for day in days)


# ---------------------------------------------------------------------------- the baseline


def baseline(landing: Path, truth: Path, db: Path, first: dt.date, last: dt.date) -> None:
    """The per-day baseline over landing days first..last (one DuckDB file)."""
    import duckdb
    import polars as pl

    from c360_assets.bronze import BUILTIN
    from c360_assets.bronze.landing import ingest_table
    from c360_assets.lib.registry import load_registry
    from c360_assets.silver.sources import decode_json_fields

    registry = load_registry(sources=tuple(s.name for s in BUILTIN))
    tables = [t for s in BUILTIN for t in s.tables
              if t.records is not None and t.records.entity_type == "customer"
              and t.records.attachment is None]
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE IF NOT EXISTS history (person_id VARCHAR, attribute VARCHAR, "
                "value VARCHAR, source VARCHAR, record_time TIMESTAMPTZ)")
    persons = pl.read_parquet(truth, columns=["source", "record_id", "person_id"])
    con.register("persons", persons.to_arrow())
    now = dt.datetime.now(dt.UTC)
    day = first
    while day <= last:
        t0 = time.perf_counter()
        rows = 0
        for table in tables:
            assert table.records is not None
            frame = ingest_table(landing, table, [day], now).good
            if frame.height == 0:
                continue
            chains = registry.for_table(table.source, table.name)
            fields = sorted({m.source_field for chain in chains.values() for m in chain})
            frame = decode_json_fields(table, frame, fields)  # Segment traits
            long = pl.concat([
                frame.select(table.records.record_id().cast(pl.String).alias("record_id"),
                             table.record_time().alias("record_time"),
                             pl.lit(attribute).alias("attribute"),
                             pl.coalesce([pl.col(m.source_field).cast(pl.String)
                                          for m in chain]).alias("value"))
                for attribute, chain in chains.items()])
            long = long.with_columns(pl.lit(table.source).alias("source"))
            con.register("day_rows", long.to_arrow())
            con.execute("""
                INSERT INTO history
                SELECT p.person_id, d.attribute, d.value, d.source, d.record_time
                FROM day_rows d JOIN persons p
                  ON p.source = d.source AND p.record_id = d.record_id
                WHERE d.value IS NOT NULL""")
            con.unregister("day_rows")
            rows += long.height
        con.execute("""
            CREATE OR REPLACE TABLE profile AS
            SELECT person_id, attribute, arg_max(value, record_time) AS value,
                   max(record_time) AS updated_at
            FROM history GROUP BY person_id, attribute""")
        print(f"baseline {day}: {rows:,} field rows, {time.perf_counter() - t0:.2f}s",
              flush=True)
        day += dt.timedelta(days=1)
    con.close()


# ---------------------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep bench/out afterwards")
    parser.add_argument("--baseline", nargs=5, metavar=("LANDING", "TRUTH", "DB", "FIRST", "LAST"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        landing, truth, db, first, last = args.baseline
        baseline(Path(landing), Path(truth), Path(db), dt.date.fromisoformat(first),
                 dt.date.fromisoformat(last))
        return

    work = OUT / f"incremental-{args.persons}"
    shutil.rmtree(work, ignore_errors=True)
    staging, landing, lake = work / "staging", work / "landing", work / "lake"
    env = {"DAGSTER_HOME": str(work / "dagster_home")}
    (work / "dagster_home").mkdir(parents=True)
    last_day = DEFAULT_START + dt.timedelta(days=args.days)
    earlier = [DEFAULT_START + dt.timedelta(days=i) for i in range(args.days)]
    steps: list[tuple[Step, int | None]] = []

    run_step("generate", [PY, "-m", "c360_assets.cli", "generate", "--persons",
                          str(args.persons), "--days", str(args.days + 1), "--seed",
                          str(args.seed), "--out", str(staging)])
    land_days(staging, landing, earlier)
    materialize = [PY, "-m", "c360_assets.cli", "materialize", "--landing", str(landing),
                   "--lake", str(lake), "--log-level", "WARNING"]
    steps.append((run_step(f"c360: {args.days} days, from empty", materialize, env), None))
    before = delta_versions(lake)
    files = land_days(staging, landing, [last_day])
    print(f"landed day {last_day}: {files} files")
    steps.append((run_step(f"c360: add day {args.days + 1}, `c360 materialize`",
                           materialize, env), None))
    after = delta_versions(lake)
    steps[-1] = (steps[-1][0], new_versions(before, after))
    steps.append((run_step("c360: nothing new, `c360 materialize`", materialize, env), None))
    steps[-1] = (steps[-1][0], new_versions(after, delta_versions(lake)))

    truth = staging / "_truth" / "records.parquet"
    db = work / "baseline.duckdb"

    def base(name: str, first: dt.date, last: dt.date) -> Step:
        return run_step(name, [PY, "-m", "bench.incremental", "--baseline", str(staging),
                               str(truth), str(db), first.isoformat(), last.isoformat()])

    b_full = base(f"baseline: {args.days} days, one run per day", earlier[0], earlier[-1])
    b_day = base(f"baseline: day {args.days + 1}", last_day, last_day)

    print(f"\n{args.persons:,} persons, {args.days} days then day {args.days + 1} "
          f"(seed {args.seed}), one run each on this machine:\n")
    print("| step | wall | peak RSS | new Delta versions |")
    print("|---|---:|---:|---:|")
    for step, versions in steps:
        print(f"| {step.name} | {step.seconds:.1f} s | {step.peak_rss_mb:,.0f} MiB | "
              f"{'-' if versions is None else versions} |")
    for step in (b_full, b_day):
        print(f"| {step.name} | {step.seconds:.1f} s | {step.peak_rss_mb:,.0f} MiB | - |")
    full, day, none = (s for s, _ in steps)
    print(f"\nratios: from empty {full.seconds / b_full.seconds:.1f}x the baseline's "
          f"{args.days} daily runs; the new day {day.seconds / b_day.seconds:.1f}x the "
          f"baseline's day; nothing new {none.seconds:.1f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
