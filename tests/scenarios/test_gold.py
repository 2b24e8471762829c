"""Gold scenarios through the landing contract: the golden record, field by field.

One small landing (five people, three landing days, all five sources' tables) goes
through the whole Dagster graph - bronze, silver, identity, then `dbt build` of the gold
models and their tests on the embedded DuckDB target - and the published Delta tables
under `<lake>/gold/` are read back, as a consumer would.

The people:
* Maria Keller - the seed's example: a Salesforce sync at 09:05 carries her phone
  unchanged since 2024 (her e-mail changed then), while she changed her phone in Shopify
  at 09:00. Phone must come from Shopify, e-mail from Salesforce.
* Jonas Weber - SAP's change date is date-only (00:00 UTC): a same-day Shopify phone
  change at 08:30 is newer; a Shopify city change the evening before is older.
* Clara Berg - e-mail consent subscribed, unsubscribed, opted out in Salesforce, then
  subscribed again in Shopify.
* Lena Fischer - one person in Salesforce, SAP, Shopify and Zendesk; her employer changed
  from Old Corp to New Corp in Salesforce.
* Tom Gone - a Zendesk user who was deleted: no golden record.
* James Porter - a newer Salesforce duplicate of him was keyed "Jmaes": a typo, the
  older spelling stays his first name.
* Kim Novak became Alex Novak: Shopify has the new first name, Salesforce the old one,
  both the same e-mail and phone. One person (two identifiers agree), and the newer
  first name is a real change: it wins.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from c360_assets.lib.config import load_config
from c360_assets.plan import materialize
from c360_assets.runner import instance_for
from tests.helpers import csv_text, land

# One worker builds the shared world once (pytest -n 2 runs with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("gold_world")

UTC = dt.UTC
D1, D2, D3A, D3 = "2026-02-01", "2026-03-02", "2026-03-10", "2026-03-11"

SF = ("id,account_id,first_name,last_name,email,phone,mailing_street,mailing_city,"
      "mailing_postal_code,mailing_country_code,birthdate,has_opted_out_of_email,is_deleted,"
      "created_date,last_modified_date,system_modstamp,_fivetran_synced")
SF_ACCOUNT = "id,name,is_deleted,last_modified_date,_fivetran_synced"
SF_ASSET = "id,account_id,name,serial_number,status,is_deleted,last_modified_date,_fivetran_synced"
KNA1 = ("mandt,kunnr,name1,stras,ort01,pstlz,land1,telf1,adrnr,erdat,laeda,loevm,"
        "_fivetran_deleted,_fivetran_synced")
ADR6 = ("client,addrnumber,persnumber,consnumber,flgdefault,smtp_addr,_fivetran_deleted,"
        "_fivetran_synced")
SHOP = ("id,email,first_name,last_name,phone,email_marketing_consent_state,"
        "email_marketing_consent_updated_at,updated_at,_fivetran_deleted,_fivetran_synced")
SHOP_ADDRESS = "customer_id,id,address_1,city,zip,country_code,is_default,_fivetran_synced"
ZD = "id,name,email,phone,active,created_at,updated_at,_fivetran_deleted,_fivetran_synced"


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def sf(rid: str, first: str, last: str, email: str, t: str, *, account: str = "",
       phone: str = "", street: str = "", city: str = "", postal: str = "",
       opted_out: str = "", synced: str | None = None) -> str:
    return (f"{rid},{account},{first},{last},{email},{phone},{street},{city},{postal},DE,,"
            f"{opted_out},false,2023-01-10T00:00:00Z,{t},{t},{synced or t}")


def kna1(kunnr: str, name: str, street: str, city: str, phone: str, adrnr: str,
         laeda: str, synced: str) -> str:
    return (f"100,{kunnr},{name},{street},{city},20095,DE,{phone},{adrnr},20200101,{laeda},,"
            f"false,{synced}")


def shop(cid: str, email: str, first: str, last: str, phone: str, t: str,
         consent: str = "", consent_at: str = "") -> str:
    return f"{cid},{email},{first},{last},{phone},{consent},{consent_at},{t},false,{t}"


def landing_files(root: Path) -> None:
    """The five people's connector output over four landing days."""
    def put(source: str, table: str, day: str, header: str, *rows: str) -> None:
        land(root, source, table, day, "part-0.csv", csv_text(header, *rows))

    # Day 1: everyone's first snapshots.
    put("salesforce", "contact", D1, SF,
        sf("003MARIA", "Maria", "Keller", "maria.keller@mailbox.org", "2024-05-01T10:00:00Z",
           phone="+49 30 12345671", street="Hauptstr. 1", city="Berlin", postal="10115",
           synced="2026-02-01T09:05:00Z"),
        sf("003LENA", "Lena", "Fischer", "lena.fischer@t-online.de", "2025-01-01T10:00:00Z",
           account="001OLD", city="München", postal="80331"),
        sf("003JAMES", "James", "Porter", "james.porter@posteo.de", "2025-01-01T10:00:00Z"),
        sf("003JMAES", "Jmaes", "Porter", "james.porter@posteo.de", "2026-01-20T10:00:00Z"),
        sf("003KIM", "Kim", "Novak", "k.novak@mailbox.org", "2025-01-01T10:00:00Z",
           phone="+49 30 5550101"))
    put("salesforce", "account", D1, SF_ACCOUNT,
        "001OLD,Old Corp GmbH,false,2024-01-01T00:00:00Z,2026-02-01T09:00:00Z",
        "001NEW,New Corp AG,false,2024-01-01T00:00:00Z,2026-02-01T09:00:00Z")
    put("salesforce", "asset", D1, SF_ASSET,
        "02iOLD1,001OLD,Legacy CRM,SN-OLD-1,Installed,false,2024-01-01T00:00:00Z,"
        "2026-02-01T09:00:00Z",
        "02iNEW1,001NEW,Campaign Suite,SN-NEW-1,Installed,false,2024-01-01T00:00:00Z,"
        "2026-02-01T09:00:00Z")
    put("sap", "kna1", D1, KNA1,
        kna1("0000100001", "Jonas Weber", "Lindenweg 2", "Hamburg", "+49 40 12345679",
             "0000620001", "20250101", "2026-02-01T02:00:00Z"),
        kna1("0000100002", "Lena Fischer", "Isartorplatz 3", "München", "", "0000620002",
             "20240101", "2026-02-01T02:00:00Z"))
    put("sap", "adr6", D1, ADR6,
        "100,0000620001,,001,X,jonas.weber@web.de,false,2026-02-01T02:00:00Z",
        "100,0000620002,,001,X,lena.fischer@t-online.de,false,2026-02-01T02:00:00Z")
    put("shopify", "customer", D1, SHOP,
        shop("70001", "maria.keller@mailbox.org", "Maria", "Keller", "+49 30 12345671",
             "2025-06-01T12:00:00Z"),
        shop("70002", "jonas.weber@web.de", "Jonas", "Weber", "+49 40 12345679",
             "2025-03-01T10:00:00Z"),
        shop("70003", "clara.berg@gmx.de", "Clara", "Berg", "", "2024-01-01T10:00:00Z",
             "SUBSCRIBED", "2024-01-01T10:00:00Z"),
        shop("70004", "lena.fischer@t-online.de", "Lena", "Fischer", "",
             "2025-06-01T10:00:00Z"),
        shop("70005", "k.novak@mailbox.org", "Alex", "Novak", "+49 30 5550101",
             "2026-01-15T10:00:00Z"))
    put("shopify", "customer_address", D1, SHOP_ADDRESS,
        "70002,80002,Am Markt 9,Hamburg,20095,DE,true,2026-02-01T03:00:00Z",
        "70004,80004,Unter den Linden 5,Berlin,10117,DE,true,2026-02-01T03:00:00Z")
    put("zendesk", "user", D1, ZD,
        "3604,Lena Fischer,lena.fischer@t-online.de,,true,2024-02-01T00:00:00Z,"
        "2024-02-01T00:00:00Z,false,2026-02-01T04:00:00Z",
        "3605,Tom Gone,tom.gone@posteo.de,,true,2024-02-01T00:00:00Z,"
        "2024-02-01T00:00:00Z,false,2026-02-01T04:00:00Z")

    # Day 2: Salesforce syncs Maria at 09:05 (e-mail changed; phone unchanged since 2024);
    # Shopify has her new phone from 09:00. Clara unsubscribes, then opts out in
    # Salesforce. Lena moves to New Corp. Tom is deleted in Zendesk.
    put("salesforce", "contact", D2, SF,
        sf("003MARIA", "Maria", "Keller", "maria.k@posteo.de", "2026-03-01T09:05:00Z",
           phone="+49 30 12345671", street="Hauptstr. 1", city="Berlin", postal="10115"),
        sf("003LENA", "Lena", "Fischer", "lena.fischer@t-online.de", "2026-03-01T12:00:00Z",
           account="001NEW", city="München", postal="80331"),
        sf("003CLARA", "Clara", "Berg", "clara.berg@gmx.de", "2024-09-01T10:00:00Z",
           opted_out="true"))
    put("shopify", "customer", D2, SHOP,
        shop("70001", "maria.keller@mailbox.org", "Maria", "Keller", "+49 30 22345672",
             "2026-03-01T09:00:00Z"),
        shop("70003", "clara.berg@gmx.de", "Clara", "Berg", "", "2024-06-01T10:00:00Z",
             "UNSUBSCRIBED", "2024-06-01T10:00:00Z"))
    put("zendesk", "user", D2, ZD,
        "3605,Tom Gone,tom.gone@posteo.de,,false,2024-02-01T00:00:00Z,"
        "2026-03-01T00:00:00Z,false,2026-03-02T04:00:00Z")

    # Day 3a: Jonas moves to Lübeck in Shopify, the evening before SAP's change date.
    put("shopify", "customer", D3A, SHOP,
        shop("70002", "jonas.weber@web.de", "Jonas", "Weber", "+49 40 12345679",
             "2026-03-09T22:00:00Z"))
    put("shopify", "customer_address", D3A, SHOP_ADDRESS,
        "70002,80002,Am Markt 9,Lübeck,20095,DE,true,2026-03-10T03:00:00Z")

    # Day 3: SAP changes Jonas's phone and city on 2026-03-10 (date only); Shopify has a
    # newer phone from 08:30 that day. Clara subscribes again.
    put("sap", "kna1", D3, KNA1,
        kna1("0000100001", "Jonas Weber", "Lindenweg 2", "Bremen", "+49 40 22345678",
             "0000620001", "20260310", "2026-03-11T02:00:00Z"))
    put("shopify", "customer", D3, SHOP,
        shop("70002", "jonas.weber@web.de", "Jonas", "Weber", "+49 40 32345678",
             "2026-03-10T08:30:00Z"),
        shop("70003", "clara.berg@gmx.de", "Clara", "Berg", "", "2025-02-01T10:00:00Z",
             "SUBSCRIBED", "2025-02-01T10:00:00Z"))


def build(landing: Path, lake: Path, config=None, select: str | None = None):  # noqa: ANN001, ANN201
    summary = materialize(landing, lake, select=select, config=config or load_config(),
                          instance=instance_for(lake), log_level="ERROR", echo=lambda _: None)
    assert summary.ok, summary.problems
    return summary


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("gold")
    landing, lake = root / "landing", root / "lake"
    landing_files(landing)
    summary = build(landing, lake)
    return landing, lake, summary


def gold(lake: Path, table: str) -> pl.DataFrame:
    return pl.read_delta(str(lake / "gold" / table))


def profile_of(lake: Path, sfdc_or_email: str) -> dict:
    profiles = gold(lake, "customer_profile_v2")
    found = profiles.filter(pl.col("email") == sfdc_or_email)
    assert found.height == 1, f"one profile with e-mail {sfdc_or_email}, got {found.height}"
    return found.row(0, named=True)


def extensions(row: dict) -> dict[str, str]:
    value = row["extensions"]
    return dict(value) if isinstance(value, dict) else {e["key"]: e["value"] for e in value}


def test_dbt_build_passes_and_its_tests_are_asset_checks(world):
    _, _, summary = world
    checks = {f"{table}:{name}": ok for table, t in summary.tables.items()
              for name, ok in t.checks.items()}
    gold_checks = {k: ok for k, ok in checks.items() if k.startswith("gold/")}
    assert gold_checks and all(gold_checks.values()), gold_checks
    assert "gold/customer_profile_v2:unique_customer_profile_v2_customer_id" in gold_checks
    assert any(k.startswith("gold/customer_profile_v2:recent_within_hours") for k in gold_checks)
    # One duplicate-current-edge check (c360's own, with silver), not a second in dbt.
    edge_checks = [k for k in checks if "no_duplicate_current_edges" in k]
    assert edge_checks == ["silver/relationships:no_duplicate_current_edges"]
    assert checks[edge_checks[0]]
    for table in ("customer_profile_v1", "customer_profile_v2", "company_assets",
                  "consent_log", "resolved_attributes", "source_freshness",
                  "attribute_conflicts", "profile_completeness"):
        assert (world[1] / "gold" / table / "_delta_log").is_dir(), table


def test_seed_phone_example_phone_from_shopify_email_from_salesforce(world):
    """Salesforce's 09:05 sync carries a phone unchanged since 2024: Shopify's 09:00 phone
    change wins the phone; Salesforce's 09:05 e-mail change wins the e-mail."""
    maria = profile_of(world[1], "maria.k@posteo.de")
    assert (maria["phone"], maria["phone_source"]) == ("+493022345672", "shopify")
    assert maria["phone_updated_at"] == ts("2026-03-01T09:00:00Z")
    assert (maria["email"], maria["email_source"]) == ("maria.k@posteo.de", "salesforce")
    assert maria["email_updated_at"] == ts("2026-03-01T09:05:00Z")
    resolved = gold(world[1], "resolved_attributes").filter(
        (pl.col("customer_id") == maria["customer_id"]) & (pl.col("attribute") == "phone"))
    assert resolved.row(0, named=True)["competing_values"] == 2


def test_sap_date_only_change_loses_to_same_day_shopify_and_beats_the_evening_before(world):
    jonas = profile_of(world[1], "jonas.weber@web.de")
    # SAP 2026-03-10 (00:00 UTC) vs Shopify 2026-03-10 08:30: Shopify is newer.
    assert (jonas["phone"], jonas["phone_source"]) == ("+494032345678", "shopify")
    assert jonas["phone_updated_at"] == ts("2026-03-10T08:30:00Z")
    # SAP 2026-03-10 vs Shopify 2026-03-09 22:00: SAP's date is newer.
    assert (jonas["city"], jonas["city_source"]) == ("Bremen", "sap")
    assert jonas["city_updated_at"] == ts("2026-03-10T00:00:00Z")


def test_consent_revoked_then_regranted_ends_granted_and_the_log_keeps_every_change(world):
    clara = profile_of(world[1], "clara.berg@gmx.de")
    assert (clara["email_consent"], clara["email_consent_source"]) == ("true", "shopify")
    assert clara["email_consent_updated_at"] == ts("2025-02-01T10:00:00Z")
    log = (gold(world[1], "consent_log").filter(pl.col("customer_id") == clara["customer_id"])
           .sort("field_time"))
    assert log.select("source_system", "email_consent").rows() == [
        ("shopify", "true"), ("shopify", "false"), ("salesforce", "false"), ("shopify", "true")]
    assert log.filter(pl.col("source_system") == "shopify")["raw_value"].to_list() == [
        "SUBSCRIBED", "UNSUBSCRIBED", "SUBSCRIBED"]
    assert log.get_column("field_time").to_list() == [
        ts("2024-01-01T10:00:00Z"), ts("2024-06-01T10:00:00Z"), ts("2024-09-01T10:00:00Z"),
        ts("2025-02-01T10:00:00Z")]
    assert log.get_column("superseded_at").to_list() == [
        ts("2024-06-01T10:00:00Z"), ts("2024-09-01T10:00:00Z"), ts("2025-02-01T10:00:00Z"),
        None]
    # Salesforce's opt-out is still its current value; the newer Shopify grant wins.
    assert log.filter(pl.col("source_system") == "salesforce")["is_current"].to_list() == [True]


def test_a_person_from_four_sources_has_all_four_source_ids_in_extensions(world):
    lena = profile_of(world[1], "lena.fischer@t-online.de")
    assert extensions(lena) == {"sfdc_contact_id": "003LENA", "sap_kunnr": "100:0000100002",
                                "shopify_id": "70004", "zendesk_id": "3604"}
    assert lena["source_record_count"] == 4
    v1 = gold(world[1], "customer_profile_v1").filter(
        pl.col("customer_id") == lena["customer_id"])
    assert v1.height == 1 and "extensions" not in v1.columns and "email_source" not in v1.columns
    assert v1.row(0, named=True)["email"] == "lena.fischer@t-online.de"


def test_company_assets_follow_the_current_employer_only(world):
    lena = profile_of(world[1], "lena.fischer@t-online.de")
    assets = gold(world[1], "company_assets").filter(
        pl.col("customer_id") == lena["customer_id"])
    assert assets.select("company_name", "asset_name", "serial_number").rows() == [
        ("New Corp AG", "Campaign Suite", "SN-NEW-1")]


def test_a_person_whose_records_are_all_deleted_has_no_profile(world):
    profiles = gold(world[1], "customer_profile_v2")
    assert profiles.filter(pl.col("email") == "tom.gone@posteo.de").is_empty()
    identity = pl.read_delta(str(world[1] / "silver" / "identity"))
    tom = identity.filter(pl.col("node_id") == "customer:zendesk:3605")["person_id"].item()
    assert tom not in profiles.get_column("customer_id").to_list()
    assert profiles.height == 6  # Maria, Jonas, Clara, Lena, James, Alex


def test_monitoring_models_report_conflicts_completeness_and_freshness(world):
    lake = world[1]
    maria = profile_of(lake, "maria.k@posteo.de")
    conflicts = gold(lake, "attribute_conflicts").filter(
        pl.col("customer_id") == maria["customer_id"])
    phone = conflicts.filter(pl.col("attribute") == "phone").row(0, named=True)
    assert (phone["distinct_values"], phone["sources"], phone["winning_source"]) == (
        2, "salesforce,shopify", "shopify")
    completeness = gold(lake, "profile_completeness")
    email = completeness.filter(pl.col("attribute") == "email")
    assert email["attribute_share"].unique().to_list() == [1.0]
    assert email["persons"].sum() == 6
    freshness = gold(lake, "source_freshness").sort("source_system")
    assert freshness["source_system"].to_list() == sorted(
        ["salesforce", "sap", "shopify", "segment", "zendesk"])
    # Newest events are months old (and Segment landed nothing): all stale.
    assert set(freshness["status"]) == {"STALE"}
    sap = freshness.filter(pl.col("source_system") == "sap").row(0, named=True)
    assert sap["stale_after_hours"] == 26.0 and sap["newest_event_at"] == ts("2026-03-10T00:00:00Z")


@pytest.mark.parametrize(("attribute", "rule", "expected"), [
    # Default: Shopify's street (2025-03-01) is newer than SAP's (2025-01-01).
    ("street", None, ("Am Markt 9", "shopify")),
    ("street", {"rule": "source_priority", "sources": ["sap"]}, ("Lindenweg 2", "sap")),
])
def test_survivorship_override_from_config_changes_the_winner(world, tmp_path, attribute,
                                                               rule, expected):
    landing, lake, _ = world
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    config = load_config()
    survivorship = dict(config.gold.survivorship)
    if rule is not None:
        survivorship[attribute] = rule
    config = config.model_copy(update={"gold": config.gold.model_validate(
        {"survivorship": survivorship})})
    build(landing, copy, config=config, select="group:gold")
    jonas = profile_of(copy, "jonas.weber@web.de")
    assert (jonas[attribute], jonas[f"{attribute}_source"]) == expected
    chosen = gold(copy, "resolved_attributes").filter(
        (pl.col("customer_id") == jonas["customer_id"]) & (pl.col("attribute") == attribute))
    assert chosen["rule"].item() == (rule or {"rule": "most_recent"})["rule"]


def test_most_frequent_rule_prefers_the_value_most_records_hold(world, tmp_path):
    """Lena: München in Salesforce and SAP, Berlin (newest) in Shopify."""
    landing, lake, _ = world
    assert profile_of(lake, "lena.fischer@t-online.de")["city"] == "Berlin"
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    config = load_config()
    config = config.model_copy(update={"gold": config.gold.model_validate(
        {"survivorship": {"city": "most_frequent"}})})
    build(landing, copy, config=config, select="group:gold")
    lena = profile_of(copy, "lena.fischer@t-online.de")
    assert (lena["city"], lena["city_source"]) == ("München", "salesforce")


def test_a_newer_typo_loses_to_the_older_spelling_but_a_real_change_wins(world):
    """firstName's default rule is most_recent_unless_typo."""
    james = profile_of(world[1], "james.porter@posteo.de")
    assert (james["first_name"], james["source_record_count"]) == ("James", 2)
    alex = profile_of(world[1], "k.novak@mailbox.org")
    assert alex["source_record_count"] == 2  # Kim and Alex are one person
    assert (alex["first_name"], alex["first_name_source"]) == ("Alex", "shopify")
    rules = gold(world[1], "resolved_attributes").filter(
        (pl.col("attribute") == "firstName")
        & pl.col("customer_id").is_in([james["customer_id"], alex["customer_id"]]))
    assert set(rules["rule"]) == {"most_recent_unless_typo"}


def test_profile_command_prints_winner_source_time_and_losers(world, capsys):
    from c360_assets.cli import main

    assert main(["profile", "maria.k@posteo.de", "--lake", str(world[1])]) == 0
    out = capsys.readouterr().out
    phone = out[out.index("\nphone"):out.index("\nmobile_phone")]
    assert "+493022345672   [shopify, field time 2026-03-01 09:00:00Z]" in phone
    assert "lost: +493012345671   [salesforce 003MARIA, field time 2024-05-01 10:00:00Z" in phone
    assert "sfdc_contact_id: 003MARIA" in out and "shopify_id: 70001" in out
    # By person id, and an unknown e-mail is an error, not an empty profile.
    person = profile_of(world[1], "maria.k@posteo.de")["customer_id"]
    assert main(["profile", person, "--lake", str(world[1])]) == 0
    assert main(["profile", "nobody@nowhere.org", "--lake", str(world[1])]) == 2


def test_a_failing_blocking_check_stops_the_build_and_publishes_nothing(world, tmp_path):
    """A gold-only run over a graph with a duplicate current edge: the run checks its
    input first (c360's blocking check on silver/relationships), fails, says why, and
    the published gold tables stay as they were."""
    from c360_assets.lib import delta

    landing, lake, _ = world
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    edges = pl.read_delta(str(copy / "silver" / "relationships"))
    duplicate = edges.filter(pl.col("is_current")).head(1).with_columns(
        pl.col("target_node_id") + "-dup")
    delta.write_rows(copy / "silver" / "relationships", duplicate, append=True)
    before = delta.table_version(copy / "gold" / "customer_profile_v2")
    summary = materialize(landing, copy, select="group:gold", config=load_config(),
                          instance=instance_for(copy), log_level="ERROR", echo=lambda _: None)
    assert not summary.ok
    assert any("no_duplicate_current_edges" in p for p in summary.problems), summary.problems
    assert summary.tables["silver/relationships"].checks == {"no_duplicate_current_edges": False}
    assert delta.table_version(copy / "gold" / "customer_profile_v2") == before


def test_the_duplicate_edge_check_blocks_gold_in_the_same_pipeline_and_names_the_key(world, tmp_path):
    """c360's own blocking check runs with silver: gold is not even started, and the check
    says which key is duplicated and how to find it."""
    from c360_assets.lib import delta

    landing, lake, _ = world
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    edges = pl.read_delta(str(copy / "silver" / "relationships"))
    duplicate = edges.filter(pl.col("is_current")).head(1).with_columns(
        pl.col("target_node_id") + "-dup")
    delta.write_rows(copy / "silver" / "relationships", duplicate, append=True)
    before = delta.table_version(copy / "gold" / "customer_profile_v2")
    instance = instance_for(copy)
    summary = materialize(landing, copy, select="silver/relationships,group:gold",
                          config=load_config(), instance=instance, log_level="ERROR",
                          echo=lambda _: None)
    assert not summary.ok
    assert summary.tables["silver/relationships"].checks["no_duplicate_current_edges"] is False
    assert [what for what, _, _ in summary.runs] == ["silver"]  # gold never started
    assert delta.table_version(copy / "gold" / "customer_profile_v2") == before
    import dagster as dg

    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["silver", "relationships"]), "no_duplicate_current_edges")])
    evaluation = next(iter(record.values())).event.dagster_event.event_specific_data
    assert evaluation.metadata["duplicate_keys"].value == 1
    assert duplicate["record_node_id"][0] in evaluation.metadata["examples"].value
    assert "HAVING n > 1" in evaluation.metadata["reproduce"].value


def test_conflicts_check_reports_count_examples_and_trend_against_the_previous_run(world, tmp_path):
    import dagster as dg

    from c360_assets.definitions import build_definitions
    from c360_assets.gold.assets import dbt_resource
    from c360_assets.lib import delta
    from c360_assets.ops.checks import CONFLICTS_CHECK, CONFLICTS_KEY
    from c360_assets.resources import C360Paths

    landing, lake, summary = world
    assert summary.tables["gold/attribute_conflicts"].checks[CONFLICTS_CHECK] is True
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    defs = build_definitions(load_config(), C360Paths(landing_root=str(landing), lake_root=str(copy)))
    key = dg.AssetCheckKey(CONFLICTS_KEY, CONFLICTS_CHECK)
    instance = instance_for(copy)

    def evaluate() -> dict:
        result = dg.materialize([*defs.assets, *defs.asset_checks], instance=instance,
                                resources={"c360": C360Paths(landing_root=str(landing),
                                                             lake_root=str(copy)),
                                           "dbt": dbt_resource()},
                                selection=dg.AssetSelection.checks(key))
        [evaluation] = result.get_asset_check_evaluations()
        return {"passed": evaluation.passed, **{k: v.value for k, v in evaluation.metadata.items()}}

    first = evaluate()
    conflicts = gold(copy, "attribute_conflicts")
    across = conflicts.filter(pl.col("source_count") >= 2).height
    assert across >= 1  # Maria's phone: Shopify vs Salesforce
    assert first["passed"] and first["conflicts"] == across
    assert "phone" in first["by_attribute"] and "reproduce" in first
    assert first["change"] == 0  # the world's build evaluated it once already: no change
    # Gold republished with twice the conflicts: the trend breaks the 10% alarm.
    delta.commit(copy / "gold" / "attribute_conflicts",
                  delta.to_arrow(pl.concat([conflicts, conflicts.with_columns(
                      pl.col("customer_id") + "-x")])), mode="overwrite")
    second = evaluate()
    assert not second["passed"]
    assert (second["conflicts"], second["previous_conflicts"], second["change"]) == (
        2 * across, across, across)


def test_at_one_field_time_the_later_ingested_value_wins(tmp_path):
    """Two Shopify customers of one person (one e-mail), updated at the same instant with
    different phones: field time, confidence and source cannot tell, so the later
    ingestion (landing date, file, line: carried on the edge by silver) wins, not the
    smaller record id."""
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    t = "2026-02-01T10:00:00Z"
    land(landing, "shopify", "customer", D1, "part-0.csv",
         csv_text(SHOP, shop("71003", "tie@posteo.de", "Tia", "Tie", "+49 30 1111111", t)))
    land(landing, "shopify", "customer", D2, "part-0.csv",
         csv_text(SHOP, shop("71004", "tie@posteo.de", "Tia", "Tie", "+49 30 2222222", t)))
    build(landing, lake)
    edges = pl.read_delta(str(lake / "silver" / "relationships")).filter(
        pl.col("rel_type") == "HAS_PHONE")
    assert sorted(edges["ingestion_order"].str.slice(0, 10).to_list()) == [D1, D2]
    assert profile_of(lake, "tie@posteo.de")["phone"] == "+49302222222"
