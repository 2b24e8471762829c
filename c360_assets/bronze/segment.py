"""Segment `identifies` (warehouse destination, Tier 1 events).

Traits land either nested in a `traits` object (JSONL/Parquet; a JSON string in CSV)
or flattened as snake_case columns. Bronze carries them in one `traits` column: a
JSON object with snake_case keys (camelCase keys are converted, a nested `address`
or `company` object flattens to `address_<key>`), values as strings, holding only the
traits that were sent. A trait that is absent or null was not sent; it never means
"cleared".

Record ids are `user_id`, else `anon:<anonymous_id>`; every trait changes on the event's
own `timestamp` (Tier 1).
"""

from __future__ import annotations

import re

import polars as pl

from c360_assets.bronze.contract import ColType as T
from c360_assets.bronze.contract import Records, SourceSpec, TableSpec, col
from c360_assets.lib.jsonexpr import json_object

TRAITS_COL = "traits"

# Landed identifies columns that are not traits (Segment's own columns).
_NON_TRAIT = {
    "id", "anonymous_id", "user_id", "timestamp", "received_at", "sent_at",
    "original_timestamp", "uuid", "uuid_ts", "loaded_at", "channel", "type", "version",
    "message_id", "event", "event_text", "context", "integrations",
}
_NON_TRAIT_PREFIXES = ("context_", "_")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(key: str) -> str:
    return _CAMEL.sub("_", key.strip()).lower()


def _as_string(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return expr if dtype == pl.String else expr.cast(pl.String)


def prepare_identifies(frame: pl.DataFrame) -> pl.DataFrame:
    """Gather nested or flattened traits into one JSON `traits` column."""
    candidates: dict[str, list[pl.Expr]] = {}
    consumed: list[str] = []
    if TRAITS_COL in frame.columns:
        nested = frame.get_column(TRAITS_COL)
        if nested.dtype == pl.String:
            nested = nested.str.json_decode(infer_schema_length=None)
        if isinstance(nested.dtype, pl.Struct):
            for key, parts in _unnest(nested).items():
                for i, part in enumerate(parts):
                    name = f"__t__{key}__{i}"
                    frame = frame.with_columns(part.alias(name))
                    candidates.setdefault(key, []).append(pl.col(name))
                    consumed.append(name)
        consumed.append(TRAITS_COL)
    for name in frame.columns:
        if name in consumed or name in _NON_TRAIT or name.startswith(_NON_TRAIT_PREFIXES):
            continue
        candidates.setdefault(snake_case(name), []).append(
            _as_string(pl.col(name), frame.schema[name]))
        consumed.append(name)
    # camelCase and snake_case spellings of one trait mean the same trait; only the traits
    # that were sent (non-null) are kept.
    trait_json = json_object({key: pl.coalesce(exprs)
                              for key, exprs in sorted(candidates.items())}).fill_null("{}")
    return frame.with_columns(trait_json.alias("__traits_json")).drop(consumed).rename(
        {"__traits_json": TRAITS_COL})


def _unnest(struct: pl.Series, prefix: str = "") -> dict[str, list[pl.Series]]:
    """Flatten a struct series recursively: {snake_case key: [String series, ...]}."""
    out: dict[str, list[pl.Series]] = {}
    for fld in struct.dtype.fields:  # type: ignore[union-attr]
        series = struct.struct.field(fld.name)
        key = prefix + snake_case(fld.name)
        if isinstance(fld.dtype, pl.Struct):
            for k, parts in _unnest(series, key + "_").items():
                out.setdefault(k, []).extend(parts)
            continue
        if isinstance(fld.dtype, pl.List | pl.Array):
            series = series.cast(pl.List(pl.String)).list.join(",")
        elif fld.dtype != pl.String:
            series = series.cast(pl.String)
        out.setdefault(key, []).append(series)
    return out


IDENTIFIES = TableSpec(
    source="segment",
    name="identifies",
    description=(
        "Segment identify() calls from the warehouse destination: one row per message id, "
        "with only the traits that were sent (as a JSON object in `traits`)."
    ),
    record_time=lambda: pl.col("timestamp"),
    prepare=prepare_identifies,
    derived={TRAITS_COL: pl.String()},
    row_checks=(
        (lambda: pl.col("user_id").is_null() & pl.col("anonymous_id").is_null(),
         "neither user_id nor anonymous_id is present"),
    ),
    columns=(
        col("id", required=True),
        col("anonymous_id"),
        col("user_id"),
        col("timestamp", T.TIMESTAMP, required=True),
        col("received_at", T.TIMESTAMP),
        # The device's own clocks: skewed by design (`timestamp` is the corrected time).
        col("sent_at", T.TIMESTAMP, plausible_time=False),
        col("original_timestamp", T.TIMESTAMP, plausible_time=False),
    ),
    records=Records(
        "customer", tier=1,
        record_id=lambda: pl.coalesce(pl.col("user_id"),
                                      pl.format("anon:{}", pl.col("anonymous_id"))),
        event_id=lambda: pl.col("id"),
        region=lambda: pl.col("traits.address_country"),
        created=lambda: pl.col("timestamp"),
        key_columns=("user_id", "anonymous_id"),
        json_fields=TRAITS_COL,
    ),
)

SOURCE = SourceSpec(
    name="segment",
    title="Segment",
    description=(
        "Segment identify() events from the warehouse destination (Tier 1): each carries "
        "only the traits that were sent, on its own skew-corrected `timestamp`; a call with "
        "both ids links the anonymous id to the user."
    ),
    tables=(IDENTIFIES,),
    profile_key="segment_user_id",
    profile_key_skips="anon:",  # an anonymous visitor's record: no Segment user id
)
