"""Write landed rows as connector files: CSV, JSONL or Parquet, in each source's own style.

One file per connector sync (`part-<sync>.<ext>`) in the landing day folder; some syncs
are delivered twice (`part-<sync>-redelivery.<ext>` repeating part of the rows), as
at-least-once delivery does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from c360_assets.generator.sources import SEGMENT_TRAITS

# File formats per table, rotated by landing day so every format occurs.
FORMAT_PLAN: dict[str, tuple[str, ...]] = {
    "salesforce": ("csv", "csv", "parquet", "jsonl"),
    "sap": ("csv",),
    "shopify": ("parquet", "jsonl"),
    "segment": ("jsonl", "jsonl", "csv", "parquet"),
    "zendesk": ("jsonl", "parquet", "csv"),
}
TS_FORMAT = {
    "salesforce": "%Y-%m-%dT%H:%M:%S%.3f+0000",
    "sap": "%Y-%m-%d %H:%M:%S",
    "zendesk": "%Y-%m-%dT%H:%M:%SZ",
    "segment": "%Y-%m-%dT%H:%M:%S%.3fZ",
}
# The precision each connector lands timestamps with.
TS_PRECISION = {"salesforce": "1ms", "segment": "1ms", "zendesk": "1s", "shopify": "1s", "sap": "1s"}
SHOP_TZ = "America/New_York"
REDELIVERY_SHARE = 0.1


def plan_format(table_key: str, day_index: int, override: str | None = None) -> str:
    if override:
        return override
    plan = FORMAT_PLAN[table_key.split("/")[0]]
    return plan[day_index % len(plan)]


def _text_times(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            if source == "shopify":
                exprs.append(pl.col(name).dt.convert_time_zone(SHOP_TZ).dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
            else:
                exprs.append(pl.col(name).dt.strftime(TS_FORMAT[source]))
        elif dtype == pl.Date:
            exprs.append(pl.col(name).dt.strftime("%Y%m%d" if source == "sap" else "%Y-%m-%d"))
    return frame.with_columns(exprs) if exprs else frame


def render(frame: pl.DataFrame, table_key: str, fmt: str) -> pl.DataFrame:
    """Turn typed landed rows into the columns and value styles of one file format."""
    source, table = table_key.split("/")
    frame = frame.drop("_landing_date", "_sync", strict=False).with_columns(
        [pl.col(c).dt.truncate(TS_PRECISION[source]) for c, t in frame.schema.items()
         if isinstance(t, pl.Datetime)])
    if source == "shopify" and table == "customer":
        if fmt == "parquet":  # GraphQL flavour: upper-case enums, no legacy fields
            frame = frame.drop("accepts_marketing", "accepts_marketing_updated_at").with_columns(
                pl.col("email_marketing_consent_state").str.to_uppercase())
        else:  # REST flavour spells the consent time with a doubled "consent"
            frame = frame.rename({"email_marketing_consent_updated_at":
                                  "email_marketing_consent_consent_updated_at"})
    if source == "sap":  # SAP: every value a string, no NULLs
        frame = _text_times(frame, "sap").with_columns(
            [pl.col(c).cast(pl.String) for c in frame.columns])
        return frame.with_columns(
            [pl.col(c).fill_null("00000000" if c in ("erdat", "laeda") else "") for c in frame.columns]
        ).with_columns(pl.col("_fivetran_deleted").str.to_uppercase())  # FALSE, as SAP lands it
    if fmt == "parquet":
        return frame.with_columns(
            [pl.col(c).dt.replace_time_zone(None) for c, t in frame.schema.items()
             if isinstance(t, pl.Datetime)])
    frame = _text_times(frame, source)
    if source == "segment" and fmt == "jsonl":
        camel = {"first_name": "firstName", "last_name": "lastName"}
        address = {"address_street": "street", "address_city": "city",
                   "address_postal_code": "postalCode", "address_country": "country"}
        flat = [t for t in SEGMENT_TRAITS if t not in address]
        frame = frame.with_columns(pl.struct(
            [pl.col(t).alias(camel.get(t, t)) for t in flat]
            + [pl.struct([pl.col(k).alias(v) for k, v in address.items()]).alias("address")]
        ).alias("traits")).drop(list(SEGMENT_TRAITS))
    if fmt == "csv":
        frame = frame.with_columns(
            [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Boolean])
    return frame


def write_file(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.write_csv(path)
    elif fmt == "jsonl":
        frame.write_ndjson(path)
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def write_table(frame: pl.DataFrame, root: Path, table_key: str, start: dt.date,
                rng: np.random.Generator, fmt_override: str | None = None) -> int:
    """Write all landing files of one table; returns the number of files."""
    files = 0
    if frame.is_empty():
        return 0
    for (day, sync), part in frame.sort("_landing_date", "_sync").group_by(
            ["_landing_date", "_sync"], maintain_order=True):
        fmt = plan_format(table_key, (day - start).days, fmt_override)
        folder = root / table_key / day.isoformat()
        rendered = render(part, table_key, fmt)
        write_file(rendered, folder / f"part-{sync:05d}.{fmt}", fmt)
        files += 1
        if rng.random() < REDELIVERY_SHARE:
            again = rendered.filter(pl.Series(rng.random(rendered.height) < 0.1))
            if again.height:
                write_file(again, folder / f"part-{sync:05d}-redelivery.{fmt}", fmt)
                files += 1
    return files
