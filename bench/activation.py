"""Benchmark: the shipped Postgres mirror (config/syncs/profile_to_postgres.yaml) at scale.

    python -m bench.activation [--persons 1000000] [--changed 0.01] [--seed 1] [--keep]

Writes a gold `customer_profile_v2` of `--persons` rows (gold's schema, values drawn with
the seed; the sync reads only gold, so no pipeline run is needed), starts a throwaway
PostgreSQL cluster (tests/servers/postgres.py, loopback) and runs `c360 sync
profile_to_postgres` as child processes (wall time, peak RSS):

1. the initial sync (every row a create);
2. the same sync again, nothing changed (the baseline: reading gold and the state,
   diffing, sending nothing);
3. after `--changed` of the persons changed a city and a phone, and as many were
   deleted from gold (a delete each): the incremental sync.
Prints rows per second and each run against the baseline of step 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

import numpy as np
import polars as pl
import psycopg

from bench.harness import fresh_workdir, run_step, table
from c360_assets.lib import delta, layout
from tests.activation_helpers import ATTRIBUTES, profile_schema
from tests.servers.postgres import PostgresCluster

PY = sys.executable
CITIES = ["Berlin", "Hamburg", "Leeds", "York", "Lyon", "Toronto", "Austin", "Porto"]
NAMES = ["Ann", "Ben", "Cem", "Dora", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jana"]


def profiles(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    ids = pl.Series([f"p_{i:016x}" for i in range(n)])
    base = pl.DataFrame({"customer_id": ids})
    values = {
        "email": pl.Series([f"user{i}@example.org" for i in range(n)]),
        "first_name": pl.Series(np.array(NAMES)[rng.integers(0, len(NAMES), n)]),
        "last_name": pl.Series([f"Last{i % 9973}" for i in range(n)]),
        "full_name": None, "phone": pl.Series([f"+4930{i:08d}" for i in range(n)]),
        "mobile_phone": None, "street": pl.Series([f"{i % 200} Main St" for i in range(n)]),
        "city": pl.Series(np.array(CITIES)[rng.integers(0, len(CITIES), n)]),
        "postal_code": pl.Series([f"{i % 99999:05d}" for i in range(n)]),
        "country": pl.Series(["DE"] * n), "birth_date": None, "email_consent": None}
    schema = profile_schema()
    times = pl.Series(t0 + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 3e7, n)
                      ).cast(schema["email_updated_at"])
    cols = []
    for a in ATTRIBUTES:
        v = values[a]
        if v is None:
            cols += [pl.lit(None, schema[a]).alias(a), pl.lit(None, pl.String).alias(f"{a}_source"),
                     pl.lit(None, schema[f"{a}_updated_at"]).alias(f"{a}_updated_at")]
        else:
            cols += [pl.lit(v).alias(a), pl.lit("shopify").alias(f"{a}_source"),
                     pl.lit(times).alias(f"{a}_updated_at")]
    frame = base.with_columns(cols).with_columns(
        pl.lit([{"key": "shopify_id", "value": "1"}],
               pl.List(pl.Struct({"key": pl.String(), "value": pl.String()})))
        .cast(schema["extensions"]).alias("extensions"),
        pl.lit(2, pl.Int64).alias("source_record_count"),
        pl.lit(dt.datetime.now(dt.UTC)).cast(schema["profile_resolved_at"])
        .alias("profile_resolved_at"))
    return frame.select(list(schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work, env = fresh_workdir("activation")
    lake = work / "lake"
    gold = profiles(args.persons, args.seed)
    target = layout.gold_table(lake, "customer_profile_v2")
    delta.write_rows(target, gold, append=False, partition_col=None)
    print(f"gold: {gold.height:,} profiles written to {target}", flush=True)
    sync = [PY, "-m", "c360_assets.cli", "sync", "profile_to_postgres", "--lake", str(lake)]
    with PostgresCluster() as pg:
        env["C360_SYNC_POSTGRES_DSN"] = pg.dsn
        steps = [run_step("initial sync (all creates)", sync, env),
                 run_step("sync, nothing changed (baseline)", sync, env)]
        rng = np.random.default_rng(args.seed + 1)
        k = int(args.persons * args.changed)
        picked = rng.choice(args.persons, size=2 * k, replace=False)
        changed, deleted = picked[:k], picked[k:]
        index = pl.Series("i", np.arange(args.persons))
        gold = (gold.with_columns(index).with_columns(
            pl.when(pl.col("i").is_in(changed)).then(pl.lit("Bristol"))
            .otherwise(pl.col("city")).alias("city"),
            pl.when(pl.col("i").is_in(changed)).then(pl.col("phone") + "9")
            .otherwise(pl.col("phone")).alias("phone"))
            .filter(~pl.col("i").is_in(deleted)).drop("i"))
        delta.write_rows(target, gold, append=False, partition_col=None)
        steps.append(run_step(f"sync after {k:,} changed + {k:,} deleted", sync, env))
        with psycopg.connect(pg.dsn) as conn:
            rows, bristol = conn.execute(
                "select count(*), count(*) filter (where city = 'Bristol') "
                "from customer_profile_v2").fetchone()
    print("\n" + table(steps))
    base = steps[1].seconds
    print(f"\ninitial: {args.persons / steps[0].seconds:,.0f} rows/s "
          f"({steps[0].seconds / base:.1f}x the no-change run)")
    print(f"incremental: {2 * k / steps[2].seconds:,.0f} operations/s "
          f"({steps[2].seconds / base:.1f}x the no-change run)")
    print(f"postgres holds {rows:,} rows ({args.persons - k:,} expected), {bristol:,} "
          f"changed cities ({k:,} expected)")
    if (rows, bristol) != (args.persons - k, k):
        sys.exit("the destination does not equal the model")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
