"""Typing landed values per the landing contract: ids, SAP dates, timestamps, strings."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from c360_assets.bronze import sap, segment, shopify, zendesk
from c360_assets.bronze.landing import ingest_table, parse_timestamp
from tests.helpers import NOW, land, land_parquet

DAY = dt.date(2026, 4, 15)
D = DAY.isoformat()
UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-04-15T09:05:00+02:00", dt.datetime(2026, 4, 15, 7, 5, tzinfo=UTC)),
        ("2026-04-15T09:05:00-05:00", dt.datetime(2026, 4, 15, 14, 5, tzinfo=UTC)),
        ("2026-04-15T09:05:00Z", dt.datetime(2026, 4, 15, 9, 5, tzinfo=UTC)),
        ("2019-11-11T17:23:34.000+0000", dt.datetime(2019, 11, 11, 17, 23, 34, tzinfo=UTC)),
        ("2026-04-15 09:05:00", dt.datetime(2026, 4, 15, 9, 5, tzinfo=UTC)),  # no offset = UTC
        ("2020-09-11 13:26:15.000 ", dt.datetime(2020, 9, 11, 13, 26, 15, tzinfo=UTC)),
        ("2015-02-23T22:28:55.111Z", dt.datetime(2015, 2, 23, 22, 28, 55, 111000, tzinfo=UTC)),
        ("2026-04-15", dt.datetime(2026, 4, 15, tzinfo=UTC)),
        ("2026-04-15T09:05", dt.datetime(2026, 4, 15, 9, 5, tzinfo=UTC)),
        ("not a time", None),
        ("2026-13-45T00:00:00Z", None),
    ],
)
def test_timestamps_honour_offsets_and_default_to_utc(text: str, expected: dt.datetime | None) -> None:
    got = pl.select(parse_timestamp(pl.lit(text))).item()
    assert got == expected


def test_shopify_64bit_ids_stay_exact_in_csv_jsonl_and_parquet(tmp_path) -> None:
    big = 706405506930370084  # loses its last digits through float64
    header = "id,email,updated_at,_fivetran_deleted,_fivetran_synced\n"
    land(tmp_path, "shopify", "customer", D, "a.csv", header + f"{big},a@x.com,{D}T10:00:00Z,false,{D}T11:00:00Z\n")
    land(tmp_path, "shopify", "customer", D, "b.jsonl",
         f'{{"id": {big + 1}, "updated_at": "{D}T10:00:00-04:00", "_fivetran_deleted": false, '
         f'"_fivetran_synced": "{D}T11:00:00Z"}}\n')
    land_parquet(tmp_path, "shopify", "customer", D, "c.parquet", pl.DataFrame({
        "id": pl.Series([big + 2], dtype=pl.Int64),
        "updated_at": [dt.datetime(2026, 4, 15, 10)], "_fivetran_deleted": [False],
        "_fivetran_synced": [dt.datetime(2026, 4, 15, 11)]}))
    batch = ingest_table(tmp_path, shopify.CUSTOMER, [DAY], NOW)
    assert batch.quarantine.is_empty()
    assert sorted(batch.good["id"].to_list()) == [big, big + 1, big + 2]
    assert batch.good.schema["id"] == pl.Int64


def test_ids_that_passed_through_float_are_quarantined(tmp_path) -> None:
    land_parquet(tmp_path, "zendesk", "user", D, "a.parquet", pl.DataFrame({
        "id": [403957746773.0, 7.064055069303701e17], "name": ["Ann", "Bob"],
        "updated_at": ["2026-04-15T10:00:00Z"] * 2, "_fivetran_deleted": [False] * 2,
        "_fivetran_synced": ["2026-04-15T11:00:00Z"] * 2}))
    batch = ingest_table(tmp_path, zendesk.USER, [DAY], NOW)
    assert batch.good["id"].to_list() == [403957746773]  # integral and below 2**53: exact
    assert batch.quarantine.height == 1
    row = batch.quarantine.row(0, named=True)
    assert row["column"] == "id" and "not a float" in row["reason"] and row["line"] == 2


def test_sap_dates_sentinels_and_zero_padded_keys(tmp_path) -> None:
    csv = (
        "mandt,kunnr,name1,land1,erdat,laeda,loevm,_fivetran_deleted,_fivetran_synced\n"
        "800,0000100001,Dunder Mifflin,US,20111201,00000000,,FALSE,2023-01-16 20:59:25\n"
        "800,CA301,Krusty Krab,,20111201,20250314,X,FALSE,2023-01-16 20:59:25\n"
        "800,0000100003,Bad Date,GB,2011-12-01,,,FALSE,2023-01-16 20:59:25\n"
    )
    land(tmp_path, "sap", "kna1", D, "kna1.csv", csv)
    batch = ingest_table(tmp_path, sap.KNA1, [DAY], NOW)
    good = batch.good.sort("kunnr")
    assert good["kunnr"].to_list() == ["0000100001", "CA301"]  # zeros kept, alphanumeric ok
    assert good["erdat"].to_list() == [dt.date(2011, 12, 1)] * 2
    assert good["laeda"].to_list() == [None, dt.date(2025, 3, 14)]  # 00000000 = no value
    assert good["land1"].to_list() == ["US", None]  # '' = no value
    assert good["loevm"].to_list() == [None, "X"]
    bad = batch.quarantine.row(0, named=True)
    assert bad["line"] == 4 and bad["column"] == "erdat" and "YYYYMMDD" in bad["reason"]


def test_strings_are_trimmed_and_unknown_columns_kept_as_json(tmp_path) -> None:
    land(tmp_path, "zendesk", "user", D, "u.csv",
         "id,name,email,custom_field,updated_at,_fivetran_deleted,_fivetran_synced\n"
         "1, Smith, John ,  John@X.com ,vip,2026-04-15T10:00:00Z,false,2026-04-15T11:00:00Z\n"
         .replace(" Smith, John ", '" Smith, John "'))
    batch = ingest_table(tmp_path, zendesk.USER, [DAY], NOW)
    row = batch.good.row(0, named=True)
    assert row["name"] == "Smith, John"
    assert row["email"] == "John@X.com"
    assert row["_extra"] == '{"custom_field":"vip"}'
    assert row["_landing_date"] == DAY and row["_source_file"] == f"zendesk/user/{D}/u.csv"


def test_segment_traits_nested_camelcase_or_flattened_mean_the_same(tmp_path) -> None:
    land(tmp_path, "segment", "identifies", D, "nested.jsonl",
         '{"id":"m1","user_id":"u1","timestamp":"2026-04-15T10:00:00Z",'
         '"traits":{"firstName":"Ann","address":{"postalCode":"10115"}}}\n')
    land(tmp_path, "segment", "identifies", D, "flat.csv",
         "id,user_id,timestamp,first_name,address_postal_code,context_ip\n"
         "m2,u1,2026-04-15T11:00:00Z,Ann,10115,1.2.3.4\n")
    batch = ingest_table(tmp_path, segment.IDENTIFIES, [DAY], NOW)
    traits = dict(zip(batch.good["id"], batch.good["traits"], strict=True))
    assert traits["m1"] == traits["m2"] == '{"address_postal_code":"10115","first_name":"Ann"}'
    assert batch.good.filter(pl.col("id") == "m2")["_extra"].item() == '{"context_ip":"1.2.3.4"}'


def test_shopify_rest_consent_column_spelling_maps_to_the_contract_name(tmp_path) -> None:
    land(tmp_path, "shopify", "customer", D, "rest.jsonl",
         '{"id": 1, "email_marketing_consent_state": "subscribed", '
         '"email_marketing_consent_consent_updated_at": "2022-04-01T11:22:06-04:00", '
         '"updated_at": "2012-08-24T14:01:46-04:00", "_fivetran_deleted": false, '
         '"_fivetran_synced": "2026-04-15T11:00:00Z"}\n')
    batch = ingest_table(tmp_path, shopify.CUSTOMER, [DAY], NOW)
    row = batch.good.row(0, named=True)
    assert row["email_marketing_consent_updated_at"] == dt.datetime(2022, 4, 1, 15, 22, 6, tzinfo=UTC)
    assert row["_extra"] is None


@pytest.mark.parametrize("values", [
    ["2026-04-15T09:05:00.123+0000", "2026-04-15T10:05:00.000+0000", None],
    ["2026-04-15T09:05:00Z", " 2026-04-15T10:05:00Z ", ""],
    ["2026-04-15 09:05:00", "2026-04-15 10:05:00.5"],
    ["2026-04-15T09:05:00-04:00", "2026-04-15T09:05:00+02:00"],
    ["2026-04-15T09:05:00Z", "2026-04-15 11:05:00", "2026-04-15", "nonsense"],  # mixed formats
])
def test_column_parse_equals_value_by_value_parse(values) -> None:
    from c360_assets.bronze.landing import parse_timestamp_column

    series = pl.Series("t", values, dtype=pl.String)
    expected = pl.select(parse_timestamp(pl.lit(series).str.strip_chars().replace("", None))).to_series()
    assert parse_timestamp_column(series).to_list() == expected.to_list()


def test_column_parse_keeps_every_fraction_digit_up_to_microseconds() -> None:
    from c360_assets.bronze.landing import parse_timestamp_column

    values = ["2026-04-15T09:05:00.1Z", "2026-04-15T09:05:00.123456789Z", "2026-04-15T09:05:00.000302Z"]
    got = parse_timestamp_column(pl.Series("t", values)).to_list()
    assert [g.microsecond for g in got] == [100000, 123456, 302]
    assert pl.select(parse_timestamp(pl.lit(pl.Series(values)))).to_series().to_list() == got
