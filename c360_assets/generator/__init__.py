"""World generator: realistic multi-source customer data with known truth.

`generate()` simulates persons over a window of days and writes what the five
connectors would land (per the landing contract) plus the truth under `_truth/`:
* `records.parquet`: source, table, record_id -> person_id (with created/deleted/merged);
* `attributes.parquet`: person_id, attribute, true current value (normalised form),
  when it truly changed, and whether any source ever landed that value (`observed`).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from c360_assets.generator import sources as src
from c360_assets.generator.world import PROFILES, SOURCES, World, WorldSpec, build_world
from c360_assets.generator.writer import write_table

DEFAULT_START = dt.date(2026, 1, 1)
TRUTH_DIR = "_truth"
# Fixed table order: each table's redelivery choices come from its own seeded stream.
TABLE_ORDER = ("salesforce/account", "salesforce/asset", "salesforce/contact", "sap/adr6",
               "sap/kna1", "segment/identifies", "shopify/customer", "shopify/customer_address",
               "zendesk/organization", "zendesk/user")
BUILDERS = (src.build_salesforce, src.build_sap, src.build_shopify, src.build_segment,
            src.build_zendesk)


@dataclass
class GenerateReport:
    persons: int
    days: int
    seed: int
    start: str
    rows: dict[str, int]
    files: int
    records: int
    truth_attributes: int
    observed_share: float
    seconds: float
    profile: str = "default"


def truth_attributes(world: World, observed: pl.DataFrame) -> pl.DataFrame:
    """True current value of every person attribute, with its change time and `observed`."""
    p = world.persons
    initial = {
        "email": pl.col("email"), "firstName": pl.col("first_name"), "lastName": pl.col("last_name"),
        "phone": pl.col("phone"),
        "mobilePhone": pl.col("mobile_phone"), "street": pl.col("street"), "city": pl.col("city"),
        "postalCode": pl.col("postal_code"), "country": pl.col("country"),
        "birthDate": pl.col("birth_date").cast(pl.String),
        "emailConsent": pl.when("email_consent").then(pl.lit("true")).otherwise(pl.lit("false")),
    }
    parts = [p.select("person_idx", pl.lit(a).alias("attribute"), e.cast(pl.String).alias("value"),
                      pl.col("created_at").alias("changed_at")) for a, e in initial.items()]
    ev = world.events
    changed = {
        "email": ("email", pl.col("email")), "phone": ("phone", pl.col("phone")),
        "mobile": ("mobilePhone", pl.col("mobile_phone")),
        "last_name": ("lastName", pl.col("last_name")),
        "first_name": ("firstName", pl.col("first_name")),
        "consent": ("emailConsent", pl.when("email_consent").then(pl.lit("true")).otherwise(pl.lit("false"))),
    }
    for group, (attribute, expr) in changed.items():
        parts.append(ev.filter(pl.col("group") == group).select(
            "person_idx", pl.lit(attribute).alias("attribute"), expr.alias("value"), pl.col("t").alias("changed_at")))
    # The full name after every first- or last-name change: the names current then.
    names = (pl.concat([p.select("person_idx", pl.col("created_at").alias("t"), "first_name",
                                 "last_name"),
                        ev.filter(pl.col("group").is_in(["first_name", "last_name"]))
                        .select("person_idx", "t", "first_name", "last_name")])
             .sort("person_idx", "t")
             .with_columns(pl.col("first_name", "last_name").forward_fill().over("person_idx")))
    parts.append(names.select("person_idx", pl.lit("fullName").alias("attribute"),
                              pl.format("{} {}", "first_name", "last_name").alias("value"),
                              pl.col("t").alias("changed_at")))
    for attribute, column in (("street", "street"), ("city", "city"), ("postalCode", "postal_code"),
                              ("country", "country")):
        parts.append(ev.filter(pl.col("group") == "address").select(
            "person_idx", pl.lit(attribute).alias("attribute"), pl.col(column).alias("value"),
            pl.col("t").alias("changed_at")))
    truth = (pl.concat(parts).drop_nulls("value").sort("person_idx", "attribute", "changed_at")
             .group_by("person_idx", "attribute", maintain_order=True).last())
    seen = observed.unique().with_columns(pl.lit(True).alias("observed"))
    return (truth.join(seen, on=["person_idx", "attribute", "value"], how="left")
            .with_columns(pl.col("observed").fill_null(False))
            .join(p.select("person_idx", "person_id"), on="person_idx")
            .select("person_id", "attribute", "value", "changed_at", "observed")
            .sort("person_id", "attribute"))


def generate(persons: int, days: int, seed: int, out: Path, start: dt.date = DEFAULT_START,
             fmt: str | None = None, progress: Callable[[str], None] = print,
             profile: str = "default") -> GenerateReport:
    """Simulate a world and write its landing files and truth under `out`.

    The five source folders and `_truth/` under `out` are replaced; anything else there
    is left alone. Same arguments, same bytes.
    """
    if persons < 1 or days < 1:
        raise ValueError("persons and days must be at least 1")
    t0 = time.perf_counter()
    if profile not in PROFILES:
        raise ValueError(f"unknown world profile {profile!r} (known: {', '.join(PROFILES)})")
    spec = WorldSpec(persons=persons, days=days, seed=seed, start=start, profile=profile)
    progress(f"simulating {persons:,} persons over {days} days (seed {seed}, profile "
             f"{profile}) ...")
    world = build_world(spec)
    progress(f"  world: {world.events.height:,} true changes ({time.perf_counter() - t0:.1f}s)")
    out.mkdir(parents=True, exist_ok=True)
    for name in (*SOURCES, TRUTH_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    output = src.SourceOutput()
    rows, files = {}, 0
    for k, builder in enumerate(BUILDERS, start=1):
        builder(np.random.default_rng([seed, k]), world, output)
        # Write and drop each source's rows before projecting the next (peak memory).
        for key in sorted(output.tables):
            frame = output.tables.pop(key)
            files += write_table(frame, out, key, start,
                                 np.random.default_rng([seed, 100 + TABLE_ORDER.index(key)]), fmt)
            rows[key] = frame.height
            progress(f"  {key}: {frame.height:,} rows written ({time.perf_counter() - t0:.1f}s)")
    truth_dir = out / TRUTH_DIR
    truth_dir.mkdir(parents=True, exist_ok=True)
    records = pl.concat(output.records, how="vertical_relaxed").sort("source", "table", "record_id")
    records.write_parquet(truth_dir / "records.parquet")
    attributes = truth_attributes(world, pl.concat(output.observed))
    attributes.write_parquet(truth_dir / "attributes.parquet")
    report = GenerateReport(
        persons=persons, days=days, seed=seed, start=start.isoformat(), rows=rows, files=files,
        records=records.height, truth_attributes=attributes.height,
        observed_share=round(float(attributes["observed"].mean() or 0.0), 4),
        seconds=round(time.perf_counter() - t0, 2), profile=profile)
    manifest = {k: v for k, v in asdict(report).items() if k != "seconds"}
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    progress(f"generated {files} files, {sum(rows.values()):,} rows, {records.height:,} source "
             f"records in {report.seconds:.1f}s")
    return report
