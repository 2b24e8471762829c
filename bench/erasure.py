"""Benchmark: erasing customers from a big lake, against a day's incremental run.

    python -m bench.erasure [--persons 1000000] [--days 30] [--erase 100] [--seed 1] [--keep]

Generates `days + 1` landing days, lands the first `days` and builds the lake with plain
`c360 materialize`; drops one request file naming `--erase` customers (by e-mail, a
seeded sample of gold profiles) into `<landing>/_privacy/requests` and runs plain
`c360 materialize` (the erasure end to end: bronze deletes, silver/identity/gold carrying
them, purge, proof); then lands the last day and runs it again - the baseline, a day's
incremental run on the same lake, measured in the same run. Each run is one child
process (wall time, peak RSS). The receipt gives rows deleted, bytes rewritten and what
the proof scanned.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import polars as pl

from bench.harness import fresh_workdir, run_step, table, world_parser
from bench.lake_size import land_day
from c360_assets.generator import DEFAULT_START

PY = sys.executable


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = world_parser(__doc__.splitlines()[0])
    parser.add_argument("--erase", type=int, default=100)
    args = parser.parse_args()

    work, env = fresh_workdir(f"erasure-{args.persons}")
    staging, landing, lake = work / "staging", work / "landing", work / "lake"
    days = [DEFAULT_START + dt.timedelta(days=i) for i in range(args.days + 1)]
    run_step("generate", [PY, "-m", "c360_assets.cli", "generate", "--persons",
                          str(args.persons), "--days", str(args.days + 1), "--seed",
                          str(args.seed), "--out", str(staging)])
    for day in days[:-1]:
        land_day(staging, landing, day)
    materialize = [PY, "-m", "c360_assets.cli", "materialize", "--landing", str(landing),
                   "--lake", str(lake), "--log-level", "WARNING"]
    build = run_step(f"c360: {args.days} days, from empty", materialize, env)

    profiles = pl.read_delta(str(lake / "gold" / "customer_profile_v2"),
                             columns=["customer_id", "email"]).drop_nulls("email")
    chosen = profiles.sample(args.erase, seed=args.seed).get_column("email").to_list()
    inbox = landing / "_privacy" / "requests"
    inbox.mkdir(parents=True)
    (inbox / "bench.json").write_text(json.dumps(
        [{"request_id": f"bench-{i}", "email": e} for i, e in enumerate(chosen)]))
    size_before = _size(lake)
    erase = run_step(f"c360: erase {args.erase} customers (inbox, `c360 materialize`)",
                     materialize, env)
    size_after = _size(lake)
    receipts = pl.read_delta(str(lake / "privacy" / "receipts"))
    receipt = json.loads(receipts.sort("proven_at").get_column("receipt")[-1])
    land_day(staging, landing, days[-1])
    day = run_step(f"c360: add day {args.days + 1} (baseline)", materialize, env)

    print(f"\n{args.persons:,} persons, {args.days} days (seed {args.seed}); erase "
          f"{args.erase} by e-mail; one run each on this machine:\n")
    print(table([build, erase, day]))
    print(f"\nerasure / day: {erase.seconds / day.seconds:.2f}x; records erased "
          f"{receipt['records_erased']:,} of {receipt['persons_erased']:,} persons; rows "
          f"deleted {receipt['rows_deleted']:,}; bytes rewritten "
          f"{receipt['bytes_rewritten'] / 2**20:,.0f} MiB; old files vacuumed "
          f"{receipt['files_vacuumed']:,}; proof: {receipt['files_scanned']:,} files, "
          f"{receipt['bytes_scanned'] / 2**20:,.0f} MiB in {receipt['scan_seconds']:.1f} s, "
          f"{receipt['targets']:,} targets, {receipt['hits']} hits; lake "
          f"{size_before / 2**20:,.0f} -> {size_after / 2**20:,.0f} MiB")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
