"""Benchmark: the serving store and `c360 serve` at scale.

    python -m bench.serving [--persons 1000000] [--days 30] [--seed 1] [--keep]
    python -m bench.serving --lake DIR        # a lake already built (bench/out/serving/lake)

Without `--lake`: generates a world and runs the whole pipeline (`c360 materialize`,
which builds the store after gold). Then, each measured in the same run:

1. the store built again from that gold, as a child process (wall time, peak RSS), and
   its size;
2. `c360 serve` started on a loopback port; lookups over HTTP (one keep-alive
   connection, sequential, after a warm-up): by person id, by e-mail (as typed: upper
   case, spaces around), and the server's floor, `GET /healthz` (HTTP and the framework,
   no store) - p50/p90/p99/max per kind; the same lookups in-process (the store alone,
   no HTTP) for reference;
3. exports of 10,000 profiles (NDJSON and Parquet, `limit=10000`), five each (median),
   and the whole store as NDJSON once (rows/s).
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

from bench.harness import OUT, fresh_workdir, run_step
from c360_assets.serving.reader import Store
from c360_assets.serving.store import store_path
from tests.serving_helpers import Server

LOOKUPS = 20_000
WARMUP = 2_000


def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    at = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": s[-1]}


def timed_gets(port: int, paths: list[str]) -> list[float]:
    """Milliseconds per request, one keep-alive connection; every answer must be 200."""
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for path in paths:
        t0 = time.perf_counter()
        con.request("GET", path)
        r = con.getresponse()
        r.read()
        out.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            sys.exit(f"GET {path[:60]}...: {r.status}")
    con.close()
    return out


def sample(lake: Path, n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` person ids and `n` golden e-mails (of other persons), at random."""
    import sqlite3

    con = sqlite3.connect(f"file:{store_path(lake)}?mode=ro", uri=True)
    total = con.execute("SELECT count(*) FROM profiles").fetchone()[0]
    rng = random.Random(seed)
    one = "SELECT person_id, json_extract(doc, '$.email') FROM profiles WHERE rowid = ?"
    rows = [con.execute(one, (rng.randint(1, total),)).fetchone() for _ in range(2 * n)]
    ids = [r[0] for r in rows[:n]]
    emails = [r[1] for r in rows[n:] if r[1] is not None]
    con.close()
    return ids, emails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lake", type=Path, help="an existing lake (skip the pipeline)")
    parser.add_argument("--keep", action="store_true", help="keep bench/out/serving")
    args = parser.parse_args()
    py = sys.executable
    steps = []
    if args.lake is None:
        work, env = fresh_workdir("serving")
        lake = work / "lake"
        steps.append(run_step("generate", [py, "-m", "c360_assets.cli", "generate", "--persons",
                                           str(args.persons), "--days", str(args.days),
                                           "--seed", str(args.seed), "--out",
                                           str(work / "landing")]))
        steps.append(run_step("pipeline (materialize: bronze, silver, identity, gold, store)",
                              [py, "-m", "c360_assets.cli", "materialize", "--landing",
                               str(work / "landing"), "--lake", str(lake), "--log-level",
                               "WARNING"], env=env))
    else:
        lake = args.lake
    steps.append(run_step("store build (from the published gold)", [
        py, "-c", "import sys; from pathlib import Path; "
        "from c360_assets.serving.store import build_store; build_store(Path(sys.argv[1]))",
        str(lake)]))
    size = store_path(lake).stat().st_size

    ids, emails = sample(lake, LOOKUPS, args.seed)
    by_id = [f"/v1/profiles/{p}" for p in ids]
    by_email = ["/v1/profiles?" + urllib.parse.urlencode({"email": f" {e.upper()} "})
                for e in emails]
    store = Store(store_path(lake))
    t0 = time.perf_counter()
    for p in ids:
        store.doc(p)
    local_id = (time.perf_counter() - t0) / len(ids) * 1000
    t0 = time.perf_counter()
    for e in emails:
        store.lookup("email", e)
    local_email = (time.perf_counter() - t0) / len(emails) * 1000
    store.close()

    log = OUT / "serving-bench-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = Server(lake, log)
    try:
        timed_gets(server.port, ["/healthz"] * WARMUP + by_id[:WARMUP] + by_email[:WARMUP])
        floor = percentiles(timed_gets(server.port, ["/healthz"] * LOOKUPS))
        id_ms = percentiles(timed_gets(server.port, by_id))
        email_ms = percentiles(timed_gets(server.port, by_email))
        exports = {}
        for fmt in ("ndjson", "parquet"):
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                status, _, body = server.get(f"/v1/export?format={fmt}&limit=10000")
                runs.append((time.perf_counter() - t0) * 1000)
                assert status == 200 and body
            exports[fmt] = (statistics.median(runs), len(body))
        t0 = time.perf_counter()
        status, _, body = server.get("/v1/export?format=ndjson")
        whole = time.perf_counter() - t0
        rows = body.count(b"\n")
    finally:
        server.stop()

    print("\n## serving benchmark")
    print(f"store: {size / 2**20:,.0f} MiB; lookups sampled: {len(ids):,} ids, "
          f"{len(emails):,} e-mails")
    for s in steps:
        print(f"| {s.name} | {s.seconds:.1f} s | {s.peak_rss_mb:,.0f} MiB |")
    print("\n| GET over HTTP (ms) | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|")
    for name, p in (("/healthz (floor)", floor), ("/v1/profiles/{id}", id_ms),
                    ("/v1/profiles?email= (as typed)", email_ms)):
        print(f"| {name} | {p['p50']:.2f} | {p['p90']:.2f} | {p['p99']:.2f} | {p['max']:.1f} |")
    print(f"\nin-process store alone: by id {local_id:.3f} ms, by e-mail {local_email:.3f} ms")
    print(f"by id p50 = {id_ms['p50'] / floor['p50']:.2f}x the floor; by e-mail "
          f"{email_ms['p50'] / floor['p50']:.2f}x")
    for fmt, (ms, n) in exports.items():
        print(f"export 10,000 profiles as {fmt}: {ms:.0f} ms (median of 5), {n / 2**20:.1f} MiB")
    print(f"whole store as NDJSON: {rows:,} profiles in {whole:.1f} s "
          f"({rows / whole:,.0f} profiles/s)")


if __name__ == "__main__":
    main()
