"""Bad input is quarantined or reported with its reason, and good rows still land."""

from __future__ import annotations

import datetime as dt

import polars as pl

from c360_assets.bronze import salesforce, segment
from c360_assets.bronze.landing import ingest_table
from tests.helpers import NOW, land

DAY = dt.date(2026, 4, 15)
D = DAY.isoformat()
HEADER = "id,last_name,email,is_deleted,last_modified_date,_fivetran_synced\n"


def good_row(i: int) -> str:
    return f"003G{i:014d},Good{i},g{i}@x.com,false,2026-04-14T09:05:00Z,2026-04-15T09:05:00Z\n"


def contacts(tmp_path):
    return ingest_table(tmp_path, salesforce.CONTACT, [DAY], NOW)


def reasons(batch) -> list[str]:
    return batch.quarantine["reason"].to_list()


def test_missing_required_value_and_unparseable_values_are_quarantined_with_line(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "a.csv", HEADER + good_row(1)
         + "003B00000000000001,,b@x.com,false,2026-04-14T09:05:00Z,2026-04-15T09:05:00Z\n"
         + "003B00000000000002,Bad,b@x.com,maybe,yesterday,2026-04-15T09:05:00Z\n"
         + good_row(2))
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1", "Good2"]
    q = batch.quarantine.sort("line")
    assert q["line"].to_list() == [3, 4]
    assert q["_source_file"].to_list() == [f"salesforce/contact/{D}/a.csv"] * 2
    assert q["column"].to_list() == ["last_name", "is_deleted"]
    assert q["reason"][0] == "last_name: required value is missing"
    assert "is_deleted: expected a boolean" in q["reason"][1]
    assert "last_modified_date: expected an ISO-8601 timestamp, got 'yesterday'" in q["reason"][1]
    assert '"last_modified_date":"yesterday"' in q["raw"][1]  # nothing lost


def test_file_missing_a_required_column_does_not_cost_other_files(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "good.csv", HEADER + good_row(1))
    land(tmp_path, "salesforce", "contact", D, "no_id.csv",
         "last_name,is_deleted,last_modified_date,_fivetran_synced\n"
         "X,false,2026-04-14T09:05:00Z,2026-04-15T09:05:00Z\n")
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1"]
    assert reasons(batch) == ["file has no required column 'id'"]
    assert [p.reason for p in batch.problems] == ["file has no required column 'id'"]
    assert batch.problems[0].path.endswith("no_id.csv")


def test_empty_file_is_reported(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "good.csv", HEADER + good_row(1))
    land(tmp_path, "salesforce", "contact", D, "empty.csv", "")
    batch = contacts(tmp_path)
    assert batch.good.height == 1
    assert [(p.path.endswith("empty.csv"), p.reason) for p in batch.problems] == [(True, "empty file")]
    assert batch.quarantine.select("line", "reason").rows() == [(None, "empty file")]


def test_non_utf8_line_is_quarantined_and_the_rest_of_the_file_lands(tmp_path) -> None:
    content = (HEADER + good_row(1)).encode() + (
        "003L00000000000001,M\xfcller,m@x.com,false,2026-04-14T09:05:00Z,2026-04-15T09:05:00Z\n"
    ).encode("latin-1") + good_row(2).encode()
    land(tmp_path, "salesforce", "contact", D, "latin1.csv", content)
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1", "Good2"]
    assert batch.good["_source_line"].to_list() == [2, 4]
    row = batch.quarantine.row(0, named=True)
    assert row["line"] == 3 and row["reason"] == "invalid UTF-8 byte 0xfc at column 21"
    assert "1 unreadable line(s), first at line 3" in batch.problems[0].reason


def test_ragged_csv_record_is_quarantined_and_quoted_newlines_keep_line_numbers(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "ragged.csv", HEADER
         + '003Q00000000000001,"Two\nLines",q@x.com,false,2026-04-14T09:05:00Z,2026-04-15T09:05:00Z\n'
         + "003R00000000000001,Short,false\n" + good_row(3))
    batch = contacts(tmp_path)
    assert batch.good.select("last_name", "_source_line").rows() == [("Two\nLines", 2), ("Good3", 5)]
    assert batch.quarantine.select("line", "reason").rows() == [(4, "expected 6 fields, found 3")]


def test_broken_json_line_is_quarantined(tmp_path) -> None:
    land(tmp_path, "segment", "identifies", D, "e.jsonl",
         '{"id":"m1","user_id":"u1","timestamp":"2026-04-15T10:00:00Z","traits":{"email":"a@b.c"}}\n'
         '{"id":"m2","user_id":\n'
         '\n'
         '{"id":"m3","timestamp":"2026-04-15T10:00:00Z"}\n')
    batch = ingest_table(tmp_path, segment.IDENTIFIES, [DAY], NOW)
    assert batch.good["id"].to_list() == ["m1"]
    q = batch.quarantine.sort("line").select("line", "reason").rows()
    assert q[0][0] == 2 and q[0][1].startswith("invalid JSON")
    assert q[1] == (4, "neither user_id nor anonymous_id is present")


def test_unsupported_file_type_is_reported_and_markers_ignored(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "good.csv", HEADER + good_row(1))
    land(tmp_path, "salesforce", "contact", D, "export.xlsx", b"PK\x03\x04")
    land(tmp_path, "salesforce", "contact", D, "_SUCCESS", b"")
    batch = contacts(tmp_path)
    assert batch.good.height == 1
    assert len(batch.problems) == 1 and "unsupported file type '.xlsx'" in batch.problems[0].reason


def test_unreadable_parquet_is_reported(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "good.csv", HEADER + good_row(1))
    land(tmp_path, "salesforce", "contact", D, "broken.parquet", b"not parquet at all")
    batch = contacts(tmp_path)
    assert batch.good.height == 1
    assert batch.problems[0].reason.startswith("unreadable Parquet file")


def test_repeated_delivery_of_the_same_rows_is_kept_once(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "part-1.csv", HEADER + good_row(1) + good_row(2))
    land(tmp_path, "salesforce", "contact", D, "part-2.csv", HEADER + good_row(2) + good_row(3))
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1", "Good2", "Good3"]
    assert batch.duplicates_dropped == 1
    # The copy kept is the first by file name and line.
    assert batch.good.filter(pl.col("last_name") == "Good2")["_source_file"].item().endswith("part-1.csv")


def test_whitespace_only_jsonl_lines_keep_line_numbers_right(tmp_path) -> None:
    land(tmp_path, "segment", "identifies", D, "ws.jsonl",
         '{"id":"m1","user_id":"u1","timestamp":"2026-04-15T10:00:00Z"}\n'
         '   \n'
         '{"id":"m2","user_id":"u2","timestamp":"2026-04-15T10:00:00Z"}\n')
    batch = ingest_table(tmp_path, segment.IDENTIFIES, [DAY], NOW)
    assert batch.good.select("id", "_source_line").rows() == [("m1", 1), ("m2", 3)]


def test_csv_whose_header_is_not_utf8_keeps_every_line_in_quarantine(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "good.csv", HEADER + good_row(1))
    land(tmp_path, "salesforce", "contact", D, "bad-header.csv",
         "id,last_name,n\xe4me\n".encode("latin-1") + good_row(7).encode())
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1"]
    rows = batch.quarantine.filter(pl.col("line").is_not_null()).sort("line")
    assert rows["line"].to_list() == [1, 2]
    assert rows["raw"][1].startswith("003G00000000000007,Good7")
    assert any(p.reason == "header line is not valid UTF-8" for p in batch.problems)
