"""Hostile landing input is contained (issue 13): symlinks out of the landing root, files
that are not files, implausible times, absurd lengths, a file that is not in its format,
a valid all-null column, and a file that trips an error nobody foresaw."""

from __future__ import annotations

import datetime as dt
import json
import os

import polars as pl
import pytest

from c360_assets.bronze import BUILTIN_BY_NAME, landing, salesforce, sap, segment, shopify
from c360_assets.bronze.landing import ingest_table, landed_days
from c360_assets.lib.config import BronzeConfig
from tests.helpers import NOW, land

DAY = dt.date(2026, 4, 15)
D = DAY.isoformat()
HEADER = ("id,last_name,email,is_deleted,created_date,last_modified_date,system_modstamp,"
          "_fivetran_synced\n")


def row(i: int, *, created: str = "2025-02-01T08:00:00Z", modstamp: str = "2026-04-14T09:05:00Z",
        last_name: str | None = None) -> str:
    return (f"003G{i:014d},{last_name or f'Good{i}'},g{i}@x.com,false,{created},"
            f"2026-04-14T09:05:00Z,{modstamp},2026-04-15T09:05:00Z\n")


def contacts(root, rules: BronzeConfig | None = None):
    return ingest_table(root, salesforce.CONTACT, [DAY], NOW, rules or BronzeConfig())


# ---------------------------------------------------------------------------- symlinks


def test_a_symlinked_file_leading_out_of_the_landing_root_is_reported_not_read(tmp_path) -> None:
    root = tmp_path / "landing"
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    land(root, "salesforce", "contact", D, "good.csv", HEADER + row(1))
    os.symlink(secret, root / "salesforce" / "contact" / D / "evil.csv")
    batch = contacts(root)
    assert batch.good["last_name"].to_list() == ["Good1"]
    assert "root:x" not in str(batch.quarantine.rows())  # not a byte of it stored
    (q,) = batch.quarantine.rows(named=True)
    assert q["_source_file"] == f"salesforce/contact/{D}/evil.csv" and q["raw"] is None
    assert "outside the landing root: not followed" in q["reason"]
    assert [p.path.endswith("evil.csv") for p in batch.problems] == [True]


def test_a_day_folder_symlinked_elsewhere_is_reported_and_not_a_landing_day(tmp_path) -> None:
    root = tmp_path / "landing"
    elsewhere = tmp_path / "elsewhere"
    land(elsewhere, "x", "y", "z", "stolen.csv", HEADER + row(9))
    land(root, "salesforce", "contact", "2026-04-14", "good.csv", HEADER + row(1))
    os.symlink(elsewhere / "x" / "y" / "z", root / "salesforce" / "contact" / D)
    days, problems = landed_days(root, BUILTIN_BY_NAME["salesforce"])
    assert days == [dt.date(2026, 4, 14)]
    assert len(problems) == 1 and problems[0].path.endswith(D)
    assert "outside the landing root" in problems[0].reason
    # Asked for that day anyway (a --partitions range), it is still not read.
    batch = contacts(root)
    assert batch.good.is_empty() and "not followed" in batch.quarantine["reason"].item()


def test_a_symlink_inside_the_landing_root_is_followed(tmp_path) -> None:
    root = tmp_path / "landing"
    target = land(root, "salesforce", "contact", "2026-04-14", "a.csv", HEADER + row(1))
    (root / "salesforce" / "contact" / D).mkdir(parents=True)
    os.symlink(target, root / "salesforce" / "contact" / D / "same.csv")
    batch = contacts(root)
    assert batch.good["last_name"].to_list() == ["Good1"] and batch.quarantine.is_empty()


def test_a_landing_root_that_is_itself_a_symlink_is_fine(tmp_path) -> None:
    real = tmp_path / "real"
    land(real, "salesforce", "contact", D, "a.csv", HEADER + row(1))
    os.symlink(real, tmp_path / "landing")
    batch = contacts(tmp_path / "landing")
    assert batch.good.height == 1 and not batch.problems


def test_a_fifo_named_like_a_data_file_is_reported_not_opened(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "good.csv", HEADER + row(1))
    os.mkfifo(tmp_path / "salesforce" / "contact" / D / "pipe.csv")
    batch = contacts(tmp_path)  # would block forever if it were opened
    assert batch.good.height == 1
    assert batch.quarantine["reason"].to_list() == ["not a regular file: not read"]


# ---------------------------------------------------------------------------- implausible times


def test_a_record_time_far_in_the_future_is_quarantined_with_its_reason(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "a.csv",
         HEADER + row(1) + row(2, modstamp="9999-12-31T00:00:00Z"))
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1"]
    (q,) = batch.quarantine.rows(named=True)
    assert q["line"] == 3 and q["column"] == "system_modstamp"
    assert q["reason"].startswith("system_modstamp: implausible time '9999-12-31T00:00:00Z'")
    assert f"end of landing day {D} plus bronze.future_tolerance_hours 24 h" in q["reason"]


def test_a_sentinel_creation_time_is_quarantined(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "a.csv", HEADER + row(1)
         + row(2, created="0001-01-01T00:00:00Z") + row(3, created="1970-01-01T00:00:00Z"))
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1"]
    assert batch.quarantine["column"].to_list() == ["created_date", "created_date"]
    assert all("bronze.earliest_time 1970-01-02" in r for r in batch.quarantine["reason"])


def test_the_plausible_window_is_configurable_and_inclusive_of_the_tolerance(tmp_path) -> None:
    late = "2026-04-16T23:59:59Z"  # the landing day's end (04-16 00:00) + 23:59:59
    land(tmp_path, "salesforce", "contact", D, "a.csv", HEADER
         + row(1, modstamp=late) + row(2, created="1985-06-01T00:00:00Z"))
    assert contacts(tmp_path).good.height == 2
    strict = BronzeConfig(future_tolerance_hours=0, earliest_time=dt.datetime(1990, 1, 1, tzinfo=dt.UTC))
    batch = contacts(tmp_path, strict)
    assert batch.good.is_empty()
    assert batch.quarantine["column"].to_list() == ["system_modstamp", "created_date"]


def test_sap_dates_are_checked_and_device_clocks_are_not(tmp_path) -> None:
    land(tmp_path, "sap", "kna1", D, "k.csv",
         "mandt,kunnr,name1,erdat,laeda,_fivetran_deleted,_fivetran_synced\n"
         "100,0000000001,Ok,20200101,20260414,false,2026-04-15T01:00:00Z\n"
         "100,0000000002,Bad,19000101,20260414,false,2026-04-15T01:00:00Z\n"
         "100,0000000003,Bad,20200101,99991231,false,2026-04-15T01:00:00Z\n")
    batch = ingest_table(tmp_path, sap.KNA1, [DAY], NOW)
    assert batch.good["kunnr"].to_list() == ["0000000001"]
    assert batch.quarantine["column"].to_list() == ["erdat", "laeda"]
    # Segment: `timestamp` is the corrected time; the device's own clocks may be anything.
    land(tmp_path, "segment", "identifies", D, "e.jsonl",
         '{"id":"m1","user_id":"u1","timestamp":"2026-04-15T10:00:00Z",'
         '"original_timestamp":"2031-01-01T00:00:00Z","sent_at":"1999-01-01T00:00:00Z"}\n'
         '{"id":"m2","user_id":"u1","timestamp":"2036-04-15T10:00:00Z"}\n')
    batch = ingest_table(tmp_path, segment.IDENTIFIES, [DAY], NOW)
    assert batch.good["id"].to_list() == ["m1"]
    assert batch.quarantine["column"].to_list() == ["timestamp"]


# ---------------------------------------------------------------------------- lengths


def test_a_value_longer_than_the_limit_quarantines_its_row_and_quarantine_keeps_a_clip(tmp_path) -> None:
    huge = "A" * 5_000_000
    land(tmp_path, "salesforce", "contact", D, "a.csv", HEADER + row(1) + row(2, last_name=huge))
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1"]
    (q,) = batch.quarantine.rows(named=True)
    assert q["column"] == "last_name"
    assert q["reason"] == ("last_name: a value of 5000000 characters (longer than "
                           "bronze.max_value_chars, 65536)")
    assert len(q["raw"]) < 10_000 and "[5000000 characters in all]" in q["raw"]


def test_an_extra_column_is_held_to_the_same_limit(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "a.csv",
         HEADER.rstrip("\n") + ",notes\n" + row(1).rstrip("\n") + ",short\n"
         + row(2).rstrip("\n") + "," + "n" * 70_000 + "\n")
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1"]
    assert batch.quarantine["column"].to_list() == ["notes"]


# ---------------------------------------------------------------------------- formats


def test_a_file_that_is_not_csv_at_all_leaves_a_quarantine_row(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "good.csv", HEADER + row(1))
    land(tmp_path, "salesforce", "contact", D, "blob.csv", os.urandom(16).hex() * 330_000)
    batch = contacts(tmp_path)
    assert batch.good.height == 1
    (q,) = batch.quarantine.rows(named=True)
    assert q["_source_file"].endswith("blob.csv") and q["line"] is None
    assert q["reason"].startswith("not a salesforce contact file: its columns name none of the "
                                  "contract's (file has no required column 'id'")
    assert len(q["raw"]) < 10_000
    assert any(p.path.endswith("blob.csv") for p in batch.problems)


def test_a_header_only_file_missing_a_required_column_still_leaves_a_row(tmp_path) -> None:
    land(tmp_path, "salesforce", "contact", D, "h.csv", "id,email\n")
    batch = contacts(tmp_path)
    assert batch.quarantine.select("line", "column").rows() == [(None, "last_name")]


def test_a_consent_time_null_on_every_row_of_a_jsonl_file_ingests(tmp_path) -> None:
    lines = [json.dumps({"id": i, "email": f"c{i}@x.com",
                         "email_marketing_consent_state": "subscribed",
                         "email_marketing_consent_updated_at": None,
                         "updated_at": "2026-04-14T10:00:00Z", "_fivetran_deleted": False,
                         "_fivetran_synced": "2026-04-15T01:00:00Z"}) for i in range(1, 4)]
    land(tmp_path, "shopify", "customer", D, "c.jsonl", "\n".join(lines) + "\n")
    land(tmp_path, "shopify", "customer", D, "d.jsonl", lines[0].replace('"id": 1', '"id": 9')
         .replace("null", '"2026-04-14T09:00:00Z"') + "\n")
    batch = ingest_table(tmp_path, shopify.CUSTOMER, [DAY], NOW)
    assert sorted(batch.good["id"].to_list()) == [1, 2, 3, 9]
    assert batch.quarantine.is_empty() and not batch.problems
    assert batch.good.sort("id")["email_marketing_consent_updated_at"].null_count() == 3


def test_an_unforeseen_error_in_one_file_costs_only_that_file(tmp_path, monkeypatch) -> None:
    land(tmp_path, "salesforce", "contact", D, "a.csv", HEADER + row(1))
    land(tmp_path, "salesforce", "contact", D, "b.csv", HEADER + row(2) + row(3))
    real = landing.type_rows

    def flaky(spec, raw, *, day, file, rules):
        if file.endswith("b.csv"):
            raise RuntimeError("boom")
        return real(spec, raw, day=day, file=file, rules=rules)

    monkeypatch.setattr(landing, "type_rows", flaky)
    batch = contacts(tmp_path)
    assert batch.good["last_name"].to_list() == ["Good1"]
    assert batch.quarantine["line"].to_list() == [2, 3]
    assert all("could not be typed" in r and "boom" in r for r in batch.quarantine["reason"])


@pytest.mark.parametrize("value", ["Jo\x00hn", "\x1b[31mred\x1b[0m"])
def test_control_characters_land_in_bronze_as_landed(tmp_path, value) -> None:
    """Bronze keeps what landed (the audit trail); silver's normalisation cleans it."""
    frame = pl.DataFrame({"id": ["003G00000000000001"], "last_name": [value],
                          "is_deleted": [False], "last_modified_date": ["2026-04-14T09:05:00Z"],
                          "_fivetran_synced": ["2026-04-15T09:05:00Z"]})
    path = tmp_path / "salesforce" / "contact" / D / "a.parquet"
    path.parent.mkdir(parents=True)
    frame.write_parquet(path)
    assert contacts(tmp_path).good["last_name"].to_list() == [value]
