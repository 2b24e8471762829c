"""Silver scenarios through the landing contract: field times, SCD-2 edges, deletes, merges.

Each test lands hand-written connector files, runs bronze and silver, and reads the
silver Delta tables back, as a user would.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from c360_assets.lib.hashing import sha256
from tests.helpers import csv_text, ingest, land, read_silver, silver

UTC = dt.UTC

SF_HEADER = ("id,account_id,first_name,last_name,email,phone,mailing_country_code,is_deleted,"
             "master_record_id,last_modified_date,system_modstamp,_fivetran_synced")
SHOP_HEADER = ("id,email,first_name,last_name,phone,email_marketing_consent_state,"
               "email_marketing_consent_updated_at,updated_at,_fivetran_deleted,_fivetran_synced")


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def value_id(attribute: str, value: str) -> str:
    return sha256(pl.Series([f"{attribute}:{value}"])).item()


def edges(lake: Path, record: str, rel_type: str) -> pl.DataFrame:
    return (read_silver(lake, "relationships")
            .filter((pl.col("record_node_id") == record) & (pl.col("rel_type") == rel_type))
            .sort("version"))


def current(lake: Path, record: str, rel_type: str) -> dict:
    rows = edges(lake, record, rel_type).filter("is_current")
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def changes(lake: Path, record: str, attribute: str | None = None) -> pl.DataFrame:
    fc = read_silver(lake, "field_changes").filter(pl.col("record_node_id") == record)
    if attribute:
        fc = fc.filter(pl.col("attribute") == attribute)
    return fc.sort("field_time")


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "landing", tmp_path / "lake"


def deliver(dirs: tuple[Path, Path], source: str, table: str, day: str, header: str,
            *rows: str) -> None:
    """Land one CSV file for `source/table` on `day` and ingest that day to bronze."""
    landing, lake = dirs
    land(landing, source, table, day, "part-0.csv", csv_text(header, *rows))
    ingest(landing, lake, source, day)


def test_seed_example_shopify_phone_at_0900_vs_salesforce_full_sync_at_0905(dirs):
    """Shopify changes the phone at 09:00; a Salesforce full sync at 09:05 carries a new
    e-mail and the phone unchanged since 2024. Only the e-mail moves to 09:05."""
    landing, lake = dirs
    land(landing, "salesforce", "contact", "2024-03-01", "part-0.csv", csv_text(
        SF_HEADER,
        "003A,,Jane,Doe,jane@old.com,+14155550100,US,false,,2024-03-01T10:00:00Z,"
        "2024-03-01T10:00:00Z,2024-03-01T10:05:00Z"))
    land(landing, "shopify", "customer", "2024-03-02", "part-0.csv", csv_text(
        SHOP_HEADER,
        "7001,jane@old.com,Jane,Doe,+14155550100,subscribed,2024-03-02T08:00:00Z,"
        "2024-03-02T08:00:00Z,false,2024-03-02T08:30:00Z"))
    land(landing, "shopify", "customer", "2026-04-15", "part-0.csv", csv_text(
        SHOP_HEADER,
        "7001,jane@old.com,Jane,Doe,+14155550199,subscribed,2024-03-02T08:00:00Z,"
        "2026-04-15T09:00:00Z,false,2026-04-15T09:01:00Z"))
    land(landing, "salesforce", "contact", "2026-04-15", "part-0.csv", csv_text(
        SF_HEADER,
        "003A,,Jane,Doe,jane@new.com,+14155550100,US,false,,2026-04-15T09:05:00Z,"
        "2026-04-15T09:05:00Z,2026-04-15T09:06:00Z"))
    for source, day in (("salesforce", "2024-03-01"), ("shopify", "2024-03-02"),
                        ("shopify", "2026-04-15"), ("salesforce", "2026-04-15")):
        ingest(landing, lake, source, day)
    silver(lake)

    sf_phone = current(lake, "customer:salesforce:003A", "HAS_PHONE")
    assert sf_phone["updated_at"] == ts("2024-03-01T10:00:00Z")
    assert sf_phone["target_node_id"] == value_id("phone", "+14155550100")
    sf_email = current(lake, "customer:salesforce:003A", "HAS_EMAIL")
    assert sf_email["updated_at"] == ts("2026-04-15T09:05:00Z")
    assert sf_email["target_node_id"] == value_id("email", "jane@new.com")
    shop_phone = current(lake, "customer:shopify:7001", "HAS_PHONE")
    assert shop_phone["updated_at"] == ts("2026-04-15T09:00:00Z")
    assert shop_phone["target_node_id"] == value_id("phone", "+14155550199")
    # The 09:05 snapshot produced exactly one Salesforce change: the e-mail.
    late = changes(lake, "customer:salesforce:003A").filter(
        pl.col("record_time") == ts("2026-04-15T09:05:00Z"))
    assert late.get_column("attribute").to_list() == ["email"]
    old_edge = edges(lake, "customer:salesforce:003A", "HAS_EMAIL").row(0, named=True)
    assert not old_edge["is_current"] and old_edge["valid_to"] == ts("2026-04-15T09:05:00Z")


def test_resync_with_new_fivetran_synced_emits_no_change_and_opens_no_edge(dirs):
    landing, lake = dirs
    row = ("003B,,Ann,Lee,ann@x.com,+14155550101,US,false,,2026-01-05T10:00:00Z,"
           "2026-01-05T10:00:00Z,{synced}")
    land(landing, "salesforce", "contact", "2026-01-05", "part-0.csv",
         csv_text(SF_HEADER, row.format(synced="2026-01-05T10:05:00Z")))
    ingest(landing, lake, "salesforce", "2026-01-05")
    silver(lake)
    before = {n: read_silver(lake, n) for n in ("field_changes", "relationships", "nodes")}
    versions = {n: _version(lake, n) for n in before}

    land(landing, "salesforce", "contact", "2026-02-10", "part-90001.csv",
         csv_text(SF_HEADER, row.format(synced="2026-02-10T03:00:00Z")))
    ingest(landing, lake, "salesforce", "2026-02-10")
    report = silver(lake)

    assert report.mode == "incremental" and report.records_touched == 1
    assert {n: _version(lake, n) for n in before} == versions  # nothing committed
    for name, frame in before.items():
        assert read_silver(lake, name).sort(frame.columns).equals(frame.sort(frame.columns))


def _version(lake: Path, name: str) -> int:
    from deltalake import DeltaTable
    return DeltaTable(str(lake / "silver" / name)).version()


def test_value_flip_flop_a_b_a_gives_three_edge_versions_current_a(dirs):
    landing, lake = dirs
    times = ["2026-01-01T08:00:00Z", "2026-01-02T08:00:00Z", "2026-01-03T08:00:00Z"]
    for day, (t, email) in enumerate(zip(times, ["a@x.com", "b@x.com", "a@x.com"],
                                         strict=True), start=1):
        land(landing, "salesforce", "contact", f"2026-01-0{day}", "part-0.csv", csv_text(
            SF_HEADER, f"003C,,Al,Fox,{email},,US,false,,{t},{t},{t}"))
        ingest(landing, lake, "salesforce", f"2026-01-0{day}")
    silver(lake)
    versions = edges(lake, "customer:salesforce:003C", "HAS_EMAIL")
    assert versions.get_column("version").to_list() == [1, 2, 3]
    assert versions.get_column("is_current").to_list() == [False, False, True]
    assert versions.get_column("valid_from").to_list() == [ts(t) for t in times]
    assert versions.get_column("valid_to").to_list() == [ts(times[1]), ts(times[2]), None]
    a, b = value_id("email", "a@x.com"), value_id("email", "b@x.com")
    assert versions.get_column("target_node_id").to_list() == [a, b, a]


def test_sap_date_only_time_is_midnight_utc_and_older_than_same_day_shopify(dirs):
    landing, lake = dirs
    land(landing, "sap", "kna1", "2026-04-16", "part-0.csv", csv_text(
        "mandt,kunnr,name1,telf1,land1,laeda,loevm,_fivetran_deleted,_fivetran_synced",
        "100,0000100001,Jane Doe,+14155550111,US,20260415,,false,2026-04-16T02:00:00Z"))
    land(landing, "shopify", "customer", "2026-04-15", "part-0.csv", csv_text(
        SHOP_HEADER, "7002,,Jane,Doe,+14155550122,,,2026-04-15T09:00:00Z,false,"
                     "2026-04-15T09:01:00Z"))
    ingest(landing, lake, "sap", "2026-04-16")
    ingest(landing, lake, "shopify", "2026-04-15")
    silver(lake)
    sap = changes(lake, "customer:sap:100:0000100001", "phone").row(0, named=True)
    assert sap["field_time"] == ts("2026-04-15T00:00:00Z")
    assert sap["time_precision"] == "date"
    shop = changes(lake, "customer:shopify:7002", "phone").row(0, named=True)
    assert shop["time_precision"] == "timestamp"
    assert shop["field_time"] > sap["field_time"]  # same day, Shopify is newer


SEG_HEADER = "id,user_id,anonymous_id,timestamp,received_at,email,first_name,phone,address_city"


def test_segment_identify_with_two_traits_touches_only_those_two(dirs):
    lake = dirs[1]
    deliver(dirs, "segment", "identifies", "2026-03-01", SEG_HEADER,
            "m1,u1,,2026-03-01T10:00:00Z,2026-03-01T10:00:01Z,u@x.com,Uma,+4915112345678,Berlin",
            "m2,u1,,2026-03-01T11:00:00Z,2026-03-01T11:00:01Z,,Ulla,,Hamburg")
    silver(lake)
    second = changes(lake, "customer:segment:u1").filter(pl.col("source_event_id") == "m2")
    assert sorted(second.get_column("attribute").to_list()) == ["city", "firstName"]
    assert set(second.get_column("tier").to_list()) == {1}
    # The traits not sent keep their edges and times.
    assert current(lake, "customer:segment:u1", "HAS_EMAIL")["updated_at"] == ts(
        "2026-03-01T10:00:00Z")
    assert current(lake, "customer:segment:u1", "HAS_CITY")["updated_at"] == ts(
        "2026-03-01T11:00:00Z")


def test_segment_late_and_out_of_order_identifies_order_by_timestamp(dirs):
    lake = dirs[1]
    # The newer call lands first; an offline device delivers an older one a day later.
    deliver(dirs, "segment", "identifies", "2026-03-02", SEG_HEADER,
            "m3,u2,,2026-03-02T09:00:00Z,2026-03-02T09:00:01Z,new@x.com,,,")
    silver(lake)
    deliver(dirs, "segment", "identifies", "2026-03-03", SEG_HEADER,
            "m4,u2,,2026-03-01T09:00:00Z,2026-03-03T07:00:00Z,old@x.com,,,")
    silver(lake)
    history = edges(lake, "customer:segment:u2", "HAS_EMAIL")
    assert history.get_column("target_node_id").to_list() == [
        value_id("email", "old@x.com"), value_id("email", "new@x.com")]
    assert history.get_column("is_current").to_list() == [False, True]
    assert history.get_column("valid_to").to_list() == [ts("2026-03-02T09:00:00Z"), None]


def test_segment_anonymous_and_identified_calls_share_the_anonymous_id_value(dirs):
    lake = dirs[1]
    deliver(dirs, "segment", "identifies", "2026-03-01", SEG_HEADER,
            "m5,,anon-9,2026-03-01T08:00:00Z,2026-03-01T08:00:01Z,a@x.com,,,",
            "m6,u9,anon-9,2026-03-01T09:00:00Z,2026-03-01T09:00:01Z,,,,")
    silver(lake)
    anon = current(lake, "customer:segment:anon:anon-9", "HAS_ANONYMOUS_ID")
    user = current(lake, "customer:segment:u9", "HAS_ANONYMOUS_ID")
    assert anon["target_node_id"] == user["target_node_id"] == value_id("anonymousId", "anon-9")


def test_shopify_consent_takes_its_own_time_not_updated_at(dirs):
    landing, lake = dirs
    # REST flavour: the doubled "consent" spelling of the column.
    land(landing, "shopify", "customer", "2026-05-02", "part-0.csv", csv_text(
        "id,email,email_marketing_consent_state,email_marketing_consent_consent_updated_at,"
        "updated_at,_fivetran_deleted,_fivetran_synced",
        "7003,c@x.com,SUBSCRIBED,2026-04-20T12:00:00Z,2026-05-02T08:00:00Z,false,"
        "2026-05-02T08:05:00Z",
        "7003,c@x.com,unsubscribed,2026-05-02T10:00:00Z,2026-05-02T10:30:00Z,false,"
        "2026-05-02T10:35:00Z"))
    ingest(landing, lake, "shopify", "2026-05-02")
    silver(lake)
    consent = changes(lake, "customer:shopify:7003", "emailConsent")
    assert consent.get_column("value").to_list() == ["true", "false"]
    assert consent.get_column("field_time").to_list() == [ts("2026-04-20T12:00:00Z"),
                                                           ts("2026-05-02T10:00:00Z")]
    assert set(consent.get_column("tier").to_list()) == {1}
    email = changes(lake, "customer:shopify:7003", "email").row(0, named=True)
    assert email["field_time"] == ts("2026-05-02T08:00:00Z") and email["tier"] == 2


def test_email_phone_country_format_variants_map_to_one_value_node(dirs):
    landing, lake = dirs
    t = "2026-01-05T10:00:00Z"
    land(landing, "salesforce", "contact", "2026-01-05", "part-0.csv", csv_text(
        "id,last_name,email,phone,mailing_country,is_deleted,last_modified_date,_fivetran_synced",
        f"003D,Koch,  Jörg.Koch@Example.DE ,0151 12345678,Deutschland,false,{t},{t}",
        f"003E,Koch,jorg.koch@example.de,+49 151 12345678,Germany,false,{t},{t}",
        f"003F,Koch,JORG.KOCH@EXAMPLE.DE,+4915112345678,DE,false,{t},{t}"))
    ingest(landing, lake, "salesforce", "2026-01-05")
    silver(lake)
    nodes = read_silver(lake, "nodes")
    by_type = {kind: nodes.filter(pl.col("node_type") == kind).get_column("value").to_list()
               for kind in ("phone", "country")}
    assert by_type == {"phone": ["+4915112345678"], "country": ["DE"]}
    emails = sorted(nodes.filter(pl.col("node_type") == "email").get_column("value").to_list())
    # Case and spaces fold; a different local part (ö vs o) is a different address.
    assert emails == ["jorg.koch@example.de", "jörg.koch@example.de"]
    targets = {r: current(lake, f"customer:salesforce:{r}", "HAS_PHONE")["target_node_id"]
               for r in ("003D", "003E", "003F")}
    assert len(set(targets.values())) == 1
    raw = changes(lake, "customer:salesforce:003D", "phone").get_column("raw_value").item()
    assert raw == "0151 12345678"  # the landed form is kept next to the normalised one


def test_invalid_phone_is_kept_best_effort_and_flagged(dirs):
    landing, lake = dirs
    t = "2026-01-05T10:00:00Z"
    land(landing, "zendesk", "user", "2026-01-05", "part-0.csv", csv_text(
        "id,name,email,phone,active,updated_at,_fivetran_deleted,_fivetran_synced",
        f"361,Zoe Ray,zoe@x.com,000-000-0000,true,{t},false,{t}"))
    ingest(landing, lake, "zendesk", "2026-01-05")
    silver(lake)
    phone = changes(lake, "customer:zendesk:361", "phone").row(0, named=True)
    assert phone["value"].startswith("+") and not phone["is_valid"]
    assert current(lake, "customer:zendesk:361", "HAS_PHONE")["confidence"] < 1.0


def test_deletes_close_every_current_edge_of_the_record(dirs):
    landing, lake = dirs
    land(landing, "salesforce", "contact", "2026-01-05", "part-0.csv", csv_text(
        SF_HEADER,
        "003G,001X,Gus,Hale,gus@x.com,+14155550102,US,false,,2026-01-05T10:00:00Z,"
        "2026-01-05T10:00:00Z,2026-01-05T10:05:00Z"))
    land(landing, "sap", "kna1", "2026-01-05", "part-0.csv", csv_text(
        "mandt,kunnr,name1,adrnr,loevm,_fivetran_deleted,_fivetran_synced",
        "100,0000100002,Gus Hale,0000620002,,false,2026-01-05T02:00:00Z"))
    land(landing, "sap", "adr6", "2026-01-05", "part-0.csv", csv_text(
        "client,addrnumber,persnumber,consnumber,flgdefault,smtp_addr,_fivetran_deleted,"
        "_fivetran_synced", "100,0000620002,,001,X,Gus@X.com,false,2026-01-05T02:00:00Z"))
    for source in ("salesforce", "sap"):
        ingest(landing, lake, source, "2026-01-05")
    silver(lake)
    assert current(lake, "customer:sap:100:0000100002", "HAS_EMAIL")["target_node_id"] == (
        value_id("email", "gus@x.com"))
    open_before = read_silver(lake, "relationships").filter("is_current").height

    land(landing, "salesforce", "contact", "2026-01-07", "part-0.csv", csv_text(
        SF_HEADER,
        "003G,001X,Gus,Hale,gus@x.com,+14155550102,US,true,,2026-01-07T10:00:00Z,"
        "2026-01-07T10:00:00Z,2026-01-07T10:05:00Z"))
    land(landing, "sap", "kna1", "2026-01-07", "part-0.csv", csv_text(
        "mandt,kunnr,name1,adrnr,loevm,_fivetran_deleted,_fivetran_synced",
        "100,0000100002,Gus Hale,0000620002,X,false,2026-01-07T02:00:00Z"))
    for source in ("salesforce", "sap"):
        ingest(landing, lake, source, "2026-01-07")
    report = silver(lake)
    assert (report.mode, report.edges_opened, report.edges_closed) == (
        "incremental", 0, open_before)
    rel = read_silver(lake, "relationships")
    for record, closed_at in (("customer:salesforce:003G", "2026-01-07T10:00:00Z"),
                              ("customer:sap:100:0000100002", "2026-01-07T02:00:00Z")):
        mine = rel.filter(pl.col("record_node_id") == record)
        assert mine.height > 0 and not mine.get_column("is_current").any(), record
        assert set(mine.get_column("valid_to").to_list()) == {ts(closed_at)}
    # The e-mail SAP keeps on ADR6 closes with its customer.
    assert "HAS_EMAIL" in rel.filter(
        pl.col("record_node_id") == "customer:sap:100:0000100002").get_column("rel_type")


def test_salesforce_merge_chain_a_b_c_resolves_to_c(dirs):
    landing, lake = dirs

    def contact(rid: str, deleted: bool, master: str, t: str) -> str:
        return (f"{rid},,Max,Moe,max@x.com,,US,{str(deleted).lower()},{master},{t},{t},{t}")

    land(landing, "salesforce", "contact", "2026-02-01", "part-0.csv", csv_text(
        SF_HEADER, contact("003A1", False, "", "2026-02-01T08:00:00Z"),
        contact("003B1", False, "", "2026-02-01T08:00:00Z"),
        contact("003C1", False, "", "2026-02-01T08:00:00Z")))
    land(landing, "salesforce", "contact", "2026-02-02", "part-0.csv", csv_text(
        SF_HEADER, contact("003A1", True, "003B1", "2026-02-02T08:00:00Z")))
    land(landing, "salesforce", "contact", "2026-02-03", "part-0.csv", csv_text(
        SF_HEADER, contact("003B1", True, "003C1", "2026-02-03T08:00:00Z")))
    for day in ("2026-02-01", "2026-02-02"):
        ingest(landing, lake, "salesforce", day)
    silver(lake)
    assert current(lake, "customer:salesforce:003A1", "MERGED_INTO")["target_node_id"] == (
        "customer:salesforce:003B1")
    ingest(landing, lake, "salesforce", "2026-02-03")
    silver(lake)  # touches B only: A's chain passes through B
    history = edges(lake, "customer:salesforce:003A1", "MERGED_INTO")
    assert history.get_column("target_node_id").to_list() == [
        "customer:salesforce:003B1", "customer:salesforce:003C1"]
    assert history.get_column("valid_from").to_list() == [ts("2026-02-02T08:00:00Z"),
                                                           ts("2026-02-03T08:00:00Z")]
    assert history.get_column("is_current").to_list() == [False, True]
    assert current(lake, "customer:salesforce:003B1", "MERGED_INTO")["target_node_id"] == (
        "customer:salesforce:003C1")
    # The losers' attribute edges are closed at their merge; the master's stay open.
    rel = read_silver(lake, "relationships")
    a_edges = rel.filter((pl.col("record_node_id") == "customer:salesforce:003A1")
                         & (pl.col("rel_type") != "MERGED_INTO"))
    assert not a_edges.get_column("is_current").any()
    assert current(lake, "customer:salesforce:003C1", "HAS_EMAIL")


def test_works_at_and_owns_edges_link_contact_company_and_assets(dirs):
    landing, lake = dirs
    t = "2026-01-05T10:00:00Z"
    land(landing, "salesforce", "contact", "2026-01-05", "part-0.csv", csv_text(
        SF_HEADER, f"003H,001A,Ina,Holt,ina@x.com,,US,false,,{t},{t},{t}"))
    land(landing, "salesforce", "account", "2026-01-05", "part-0.csv", csv_text(
        "id,name,is_deleted,last_modified_date,_fivetran_synced", f"001A,Acme,false,{t},{t}"))
    land(landing, "salesforce", "asset", "2026-01-05", "part-0.csv", csv_text(
        "id,account_id,name,is_deleted,last_modified_date,_fivetran_synced",
        f"02iA,001A,Adobe Experience Manager,false,{t},{t}",
        f"02iB,001A,Adobe Analytics,false,{t},{t}"))
    ingest(landing, lake, "salesforce", "2026-01-05")
    silver(lake)
    assert current(lake, "customer:salesforce:003H", "WORKS_AT")["target_node_id"] == (
        "company:salesforce:001A")
    owns = read_silver(lake, "relationships").filter(pl.col("rel_type") == "OWNS")
    assert set(owns.get_column("source_node_id")) == {"company:salesforce:001A"}
    assert sorted(owns.get_column("target_node_id")) == ["asset:salesforce:02iA",
                                                          "asset:salesforce:02iB"]
    assert owns.get_column("is_current").all()
    nodes = read_silver(lake, "nodes")
    assert {"company:salesforce:001A", "asset:salesforce:02iA"} <= set(
        nodes.get_column("node_id"))
