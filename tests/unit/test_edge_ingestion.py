"""Each edge carries when the change that opened it was ingested (gold's last tie-break)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from c360_assets.silver import graph

T = dt.datetime(2026, 2, 1, 10, tzinfo=dt.UTC)


def change(record: str, value: str, at: dt.datetime, day: str, file: str, line: int) -> dict:
    return {"record_node_id": record, "source_system": "shopify", "attribute": "phone",
            "rel_type": "HAS_PHONE", "raw_value": value, "value": value, "is_valid": True,
            "field_time": at, "source_event_id": None,
            "landing_date": dt.date.fromisoformat(day), "source_file": file,
            "source_line": line}


def edges(rows: list[dict]) -> pl.DataFrame:
    changes = graph.with_targets(pl.DataFrame(rows).with_columns(
        pl.col("field_time").cast(pl.Datetime("us", "UTC"))))
    return graph.attribute_edges(changes, {"phone": "phone"})


def test_an_edge_carries_its_changes_landing_date_file_and_line_as_one_sortable_string():
    out = edges([change("customer:shopify:1", "+4930111", T, "2026-02-01", "a.csv", 7),
                 change("customer:shopify:1", "+4930222", T + dt.timedelta(hours=1),
                        "2026-02-03", "b.csv", 12)])
    assert out.sort("valid_from")["ingestion_order"].to_list() == [
        "2026-02-01|a.csv|000000000007", "2026-02-03|b.csv|000000000012"]


def test_changes_at_one_field_time_all_carry_the_latest_ingestion():
    """A record landed twice with different values at one record time (a conflicting
    re-delivery): both edges it opens carry the later file's position, as gold's join
    over every change at that time did."""
    out = edges([change("customer:shopify:1", "+4930111", T, "2026-02-01", "a.csv", 7),
                 change("customer:shopify:1", "+4930222", T, "2026-02-02", "b.csv", 3),
                 change("customer:shopify:2", "+4930333", T, "2026-02-01", "a.csv", 8)])
    by_record = dict(out.group_by("record_node_id").agg(pl.col("ingestion_order").unique())
                     .iter_rows())
    assert by_record == {"customer:shopify:1": ["2026-02-02|b.csv|000000000003"],
                         "customer:shopify:2": ["2026-02-01|a.csv|000000000008"]}
