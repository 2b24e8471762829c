"""Field-level change extraction: bronze snapshots and events -> one row per field change.

Pure functions over polars frames (no Dagster, no I/O). The contract's semantics:
* Tier 2 (snapshots): a record's snapshots in record-time order (then
  `_fivetran_synced`, then landing order: landing date, file, line); a field changes
  where its normalised value differs from the previous snapshot's (null-safe), at that
  snapshot's record time. Unchanged values are never re-timestamped; a value that
  becomes null was cleared at that snapshot's record time.
* Tier 1 (Segment traits, Shopify consent): one change per event at the event's own
  time, in event-time order; an event repeating the current value is not a change; an
  absent trait was not sent (never "cleared").
* Deletes (each table's `records.deleted`) clear every field of the record at the
  delete's record time; secondary tables (`records.attachment`) follow their main
  record's delete status.
Landing order only breaks ties; wall-clock ingestion time never orders anything, so
landing or backfilling partitions in any order gives the same changes.
"""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import UTC, TableSpec
from c360_assets.lib import normalise
from c360_assets.lib.frames import forward_fill_in_group, prev_in_group
from c360_assets.lib.registry import Mapping, Registry
from c360_assets.silver.sources import decode_json_fields

# Tie-break order of snapshots of one record (after the field or record time).
ORDER = ["record_time", "fivetran_synced", "landing_date", "source_file", "source_line"]

FIELD_CHANGES_SCHEMA = pl.Schema({
    "record_node_id": pl.String(), "source_system": pl.String(), "source_table": pl.String(),
    "record_id": pl.String(), "attribute": pl.String(), "rel_type": pl.String(),
    "source_field": pl.String(), "raw_value": pl.String(), "value": pl.String(),
    "is_valid": pl.Boolean(), "field_time": pl.Datetime("us", "UTC"),
    "time_precision": pl.String(), "tier": pl.Int8(), "record_time": pl.Datetime("us", "UTC"),
    "source_event_id": pl.String(), "fivetran_synced": pl.Datetime("us", "UTC"),
    "landing_date": pl.Date(), "source_file": pl.String(), "source_line": pl.Int64(),
    "ingested_at": pl.Datetime("us", "UTC"),
})


def _col(name: str) -> pl.Expr:
    return pl.col(name)


def _field_expr(table: TableSpec, m: Mapping) -> pl.Expr:
    expr = _col(m.source_field)
    assert table.records is not None
    rule = table.records.value_rules.get(m.source_field)
    return (rule(expr) if rule else expr).cast(pl.String)


def snapshot_frame(table: TableSpec, frame: pl.DataFrame, chains: dict[str, list[Mapping]]
                   ) -> pl.DataFrame:
    """Standard columns plus, per attribute `a`: `v::a` raw value, `f::a` supplying field,
    `t::a` own field time (Tier 1 fields), all as landed (not yet normalised)."""
    r = table.records
    assert r is not None, f"{table.ref} holds no records"
    fields = [m.source_field for chain in chains.values() for m in chain]
    frame = decode_json_fields(table, frame, fields)
    # Tier 2 snapshots have no event id: their provenance is the landing file and line.
    event_id = r.event_id() if r.event_id else pl.lit(None, pl.String)
    std: list[pl.Expr] = [
        (pl.lit(table.node_prefix()) + r.record_id()).alias("record_node_id"),
        r.record_id().alias("record_id"),
        pl.lit(table.source).alias("source_system"), pl.lit(table.name).alias("source_table"),
        table.silver_record_time().alias("record_time"),
        (pl.col("_fivetran_synced") if "_fivetran_synced" in frame.columns
         else pl.lit(None, UTC)).alias("fivetran_synced"),
        pl.col("_landing_date").alias("landing_date"),
        pl.col("_source_file").alias("source_file"), pl.col("_source_line").alias("source_line"),
        pl.col("_ingested_at").alias("ingested_at"),
        r.deleted().alias("deleted"), r.time_precision().alias("time_precision"),
        event_id.cast(pl.String).alias("source_event_id"),
        (r.region() if r.region else pl.lit(None, pl.String)).cast(pl.String)
        .alias("_region"),
    ]
    attrs: list[pl.Expr] = []
    for attribute, chain in chains.items():
        values = [_field_expr(table, m) for m in chain]
        attrs.append(pl.coalesce(values).alias(f"v::{attribute}"))
        supplied = pl.lit(None, pl.String)
        for m, v in reversed(list(zip(chain, values, strict=True))):
            supplied = pl.when(v.is_not_null()).then(pl.lit(m.source_field)).otherwise(supplied)
        attrs.append(supplied.alias(f"f::{attribute}"))
        if r.tier == 1:
            attrs.append(table.silver_record_time().alias(f"t::{attribute}"))
        elif any(m.source_field in r.field_times for m in chain):
            times = [pl.when(v.is_not_null()).then(
                r.field_times[m.source_field]() if m.source_field in r.field_times
                else pl.lit(None, UTC)) for m, v in zip(chain, values, strict=True)]
            attrs.append(pl.coalesce(times).alias(f"t::{attribute}"))
    out = frame.select(*std, *attrs)
    return out.filter(pl.col("record_id").is_not_null())


def follow_main_deletes(secondary: pl.DataFrame, main: pl.DataFrame) -> pl.DataFrame:
    """A secondary table's rows take the delete status of their main record as of their
    time; the main record's delete and undelete moments become snapshots of it too."""
    status = (main.select("record_node_id", *ORDER, pl.col("deleted").alias("_main_deleted"))
              .sort("record_node_id", *ORDER))
    before = prev_in_group(pl.col("_main_deleted"), ["record_node_id"])
    # A delete, or an undelete after one: the moments the main record's status flips.
    flips = status.filter(pl.col("_main_deleted").ne_missing(before)
                          & (pl.col("_main_deleted") | before.is_not_null()))
    known = secondary.select("record_node_id").unique()
    injected = flips.join(known, on="record_node_id", how="semi").select(
        "record_node_id", *ORDER, pl.lit(True).alias("_injected"))
    base = secondary.with_columns(pl.lit(False).alias("_injected"))
    both = pl.concat([base, injected], how="diagonal_relaxed").sort("record_node_id", *ORDER)
    carry = [c for c in secondary.columns if c not in ("record_node_id", *ORDER)]
    both = both.with_columns(
        # An injected snapshot repeats the record's latest secondary values.
        *[forward_fill_in_group(pl.col(c), ["record_node_id"]).alias(c) for c in carry
          if c.startswith(("v::", "f::", "t::")) or c in (
              "record_id", "source_system", "source_table", "time_precision", "_region",
              "source_event_id", "ingested_at")],
    ).filter(pl.col("record_id").is_not_null())
    # join_asof with `by` needs `on` sorted within each group.
    both = both.sort("record_node_id", "record_time").join_asof(
        status.sort("record_time").select("record_node_id", "record_time", "_main_deleted"),
        on="record_time", by="record_node_id", strategy="backward", check_sortedness=False)
    return both.with_columns(
        (pl.col("deleted").fill_null(False) | pl.col("_main_deleted").fill_null(False))
        .alias("deleted")).drop("_main_deleted", "_injected")


def _normalised(frame: pl.DataFrame, attribute: str, kind: str) -> pl.DataFrame:
    """Add `n::<attribute>` (normalised as `kind`) and its `__valid` flag to `frame`."""
    region = None
    if kind == "phone" and "_region" in frame.columns:
        frame = normalise.normalise(frame.with_columns(pl.col("_region").alias("_hint")),
                                    "_hint", "country")
        region = "_hint"
    frame = frame.with_columns(pl.col(f"v::{attribute}").alias(f"n::{attribute}"))
    return normalise.normalise(frame, f"n::{attribute}", kind, region)


def _emit(frame: pl.DataFrame, table: TableSpec, attribute: str, rel_type: str, tier: int,
          field_time: pl.Expr) -> pl.DataFrame:
    return frame.select(
        "record_node_id", "source_system", "source_table", "record_id",
        pl.lit(attribute).alias("attribute"), pl.lit(rel_type).alias("rel_type"),
        pl.col(f"f::{attribute}").alias("source_field"),
        pl.col(f"v::{attribute}").alias("raw_value"), pl.col(f"n::{attribute}").alias("value"),
        pl.col(f"n::{attribute}__valid").alias("is_valid"), field_time.alias("field_time"),
        "time_precision", pl.lit(tier, pl.Int8).alias("tier"), "record_time", "source_event_id",
        "fivetran_synced", "landing_date", "source_file", "source_line", "ingested_at")


def diff_snapshots(frame: pl.DataFrame, table: TableSpec, registry: Registry,
                   attributes: list[str]) -> pl.DataFrame:
    """Snapshot frame -> change rows (Tier 2 diffs and Tier 1 events), normalising the
    values that may be changes."""
    assert table.records is not None
    keep = set()
    for a in attributes:
        chain = registry.for_table(table.source, table.name)[a]
        if any(m.source_field in table.records.keep_when_deleted for m in chain):
            keep.add(a)
    gone = pl.col("deleted").fill_null(False)
    frame = frame.with_columns(
        *[pl.when(gone).then(None).otherwise(pl.col(f"{p}::{a}")).alias(f"{p}::{a}")
          for a in attributes if a not in keep for p in ("v", "f")],
    ).sort("record_node_id", *ORDER)
    group = ["record_node_id"]
    out = []
    for a in attributes:
        rel = registry.rel_type(a)
        value = pl.col(f"n::{a}")
        if f"t::{a}" not in frame.columns:  # Tier 2: diff consecutive snapshots
            # Normalisation is a function of the landed value (and the region hint for
            # phones): where those repeat, nothing changed. Only the rest is normalised,
            # then compared with the previous candidate of the record.
            raw = [pl.col(f"v::{a}")]
            if registry.kind(a) == "phone":
                raw.append(pl.col("_region"))
            repeat = pl.all_horizontal([r.eq_missing(prev_in_group(r, group)) for r in raw])
            candidates = _normalised(frame.filter(~repeat), a, registry.kind(a))
            changed = value.ne_missing(prev_in_group(value, group))
            out.append(_emit(candidates.filter(changed), table, a, rel, 2,
                             pl.col("record_time")))
            continue
        # Tier 1: events on their own time; deletes close at the record time.
        own = pl.col(f"t::{a}")
        events = _normalised(frame.filter(pl.col(f"v::{a}").is_not_null() | gone), a,
                             registry.kind(a))
        events = events.filter(value.is_not_null() | gone).with_columns(
            pl.when(value.is_not_null() & own.is_not_null()).then(own)
            .otherwise(pl.col("record_time")).alias("_ft"),
            pl.when(value.is_not_null() & own.is_not_null()).then(pl.lit(1, pl.Int8))
            .otherwise(pl.lit(2, pl.Int8)).alias("_tier"),
        )
        if table.records.tier != 1:
            # The frame is in (record, record time, ...) order; a field with its own time
            # needs (record, field time, ...). For a Tier 1 table both are the event time.
            events = events.sort("record_node_id", "_ft", *ORDER)
            # A Tier 2 row re-landing the same event is the same event.
            events = events.unique(["record_node_id", "_ft", f"n::{a}"], keep="first",
                                   maintain_order=True)
        changed = pl.col(f"n::{a}").ne_missing(prev_in_group(pl.col(f"n::{a}"),
                                                             ["record_node_id"]))
        picked = events.filter(changed)
        out.append(_emit(picked, table, a, rel, 1, pl.col("_ft")).with_columns(
            picked.get_column("_tier").alias("tier")))
    if not out:
        return pl.DataFrame(schema=FIELD_CHANGES_SCHEMA)
    return pl.concat(out).cast(dict(FIELD_CHANGES_SCHEMA))  # type: ignore[arg-type]


def table_changes(table: TableSpec, frame: pl.DataFrame, registry: Registry,
                  main_snapshots: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One bronze table (already attached when secondary) -> (changes, snapshot frame)."""
    chains = registry.for_table(table.source, table.name)
    snap = snapshot_frame(table, frame, chains)
    attributes = list(chains)
    if table.main_ref is not None and main_snapshots is not None:
        snap = follow_main_deletes(snap, main_snapshots)
    if not attributes:
        return pl.DataFrame(schema=FIELD_CHANGES_SCHEMA), snap
    return diff_snapshots(snap, table, registry, attributes), snap


def field_changes(bronze: dict[str, pl.DataFrame], registry: Registry,
                  tables: tuple[TableSpec, ...]) -> pl.DataFrame:
    """Bronze frames (by `source/table`, all rows of the records to compute) -> changes.
    `tables`: the record tables (`bronze.record_tables`), main tables first.

    Row order is part of the contract (the graph builds edges from neighbours): the rows
    of one (record, attribute) are contiguous and in field-time order."""
    out: list[pl.DataFrame] = []
    snaps: dict[str, pl.DataFrame] = {}
    by_ref = {t.ref: t for t in tables}
    for table in sorted(tables, key=lambda t: t.main_ref is not None):
        frame = bronze.get(table.ref)
        if frame is None:
            continue
        attachment = table.records.attachment if table.records else None
        if attachment is not None:
            main = table.main_ref
            assert main is not None
            frame = attachment.attach(
                frame, bronze.get(main, pl.DataFrame(schema=by_ref[main].schema())))
        changes, snap = table_changes(table, frame, registry,
                                      snaps.get(table.main_ref) if table.main_ref else None)
        out.append(changes)
        if table.main_ref is None:
            snaps[table.ref] = snap
    return pl.concat(out) if out else pl.DataFrame(schema=FIELD_CHANGES_SCHEMA)
