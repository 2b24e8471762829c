"""Echoes: a source landing back what a c360 sync wrote into it.

A sync whose destination is also a source (`echo:` in its file: Salesforce contacts
written by `profile_to_salesforce`) records what each acknowledged write put in which
record and field (`<lake>/activation/echoes`: source, record id, attribute, value as
sent, the gold field time of that value, when it was sent, until when a change counts
as its echo). When that source lands a change of the same record and attribute to the
same value (after normalisation) within the window, the change is an echo:

* it stays in silver as what it is (the source's record now holds the value, at the
  time the source says: SCD-2 history is the source's own);
* it is not news: its edge carries `echo_field_time` (the field time of the value c360
  sent) in `properties`, and gold resolves it at that time, not at the write-back's
  time, and below any other candidate at that time (`is_echo` in
  stg_attribute_candidates, `resolve_winner`): it never beats what it echoes.

Without this, the value c360 wrote would come back looking newer than the customer's
own change and win the next build (with field-time survivorship, every echo would).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from c360_assets.lib import delta, layout

# A change up to this long before the send is still its echo (clocks differ).
CLOCK_SKEW = "10m"
ECHO_COLUMN = "echo_field_time"


def read_echoes(lake: Path, sources: set[str] | None = None) -> pl.DataFrame | None:
    path = layout.activation(lake) / "echoes"
    if not delta.table_exists(path):
        return None
    frame = pl.scan_delta(str(path))
    if sources is not None:
        frame = frame.filter(pl.col("source_system").is_in(sorted(sources)))
    frame = frame.filter(pl.col("attribute").is_not_null()).select(
        "source_system", "record_id", "attribute", "value", "field_time", "sent_at", "until")
    out = frame.collect()
    return out if out.height else None


def mark(changes: pl.DataFrame, echoes: pl.DataFrame | None) -> pl.DataFrame:
    """`changes` (field_changes rows) with `echo_field_time`: the field time of the value
    a sync sent, where the change is its echo; null elsewhere."""
    if echoes is None or changes.is_empty():
        return changes.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias(ECHO_COLUMN))
    keys = ["source_system", "record_id", "attribute", "value"]
    indexed = changes.with_row_index("_echo_row")
    hits = (indexed.filter(pl.col("value").is_not_null())
            .select("_echo_row", *keys, "field_time")
            .join(echoes.rename({"field_time": "_sent_field_time"}), on=keys, how="inner")
            .filter((pl.col("field_time") >= pl.col("sent_at").dt.offset_by("-" + CLOCK_SKEW))
                    & (pl.col("field_time") <= pl.col("until")))
            .sort("sent_at")
            .group_by("_echo_row").agg(pl.col("_sent_field_time").last().alias(ECHO_COLUMN)))
    return (indexed.join(hits, on="_echo_row", how="left", maintain_order="left")
            .drop("_echo_row"))
