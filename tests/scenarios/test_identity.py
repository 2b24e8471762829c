"""Identity scenarios through the landing contract: who is the same person, and why not.

Each test lands hand-written connector files, builds bronze, silver and identity, and
reads `silver/identity` back. The over-merge cases (role mailbox, family mailbox,
recycled phone) are where customer data platforms most often fail their users.
"""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest

from c360_assets.silver.explain import explain_pair, explain_person
from c360_assets.silver.identity_model import Model, load_model, save_lake_model
from tests.helpers import csv_text, identity, ingest, land, persons, read_silver, silver

SF = ("id,first_name,last_name,email,phone,mailing_street,mailing_city,mailing_postal_code,"
      "mailing_country_code,birthdate,is_deleted,master_record_id,created_date,"
      "last_modified_date,_fivetran_synced")
SHOP = "id,email,first_name,last_name,phone,created_at,updated_at,_fivetran_deleted,_fivetran_synced"
ZD = "id,name,email,phone,created_at,updated_at,_fivetran_deleted,_fivetran_synced"
SEG = "id,user_id,anonymous_id,timestamp,received_at,email,first_name,last_name"


def sf(rid: str, first: str, last: str, email: str = "", phone: str = "", street: str = "",
       city: str = "", postal: str = "", birth: str = "", deleted: str = "false",
       master: str = "", created: str = "2025-01-01T00:00:00Z",
       t: str = "2026-02-01T08:00:00Z") -> str:
    return (f"{rid},{first},{last},{email},{phone},{street},{city},{postal},DE,{birth},"
            f"{deleted},{master},{created},{t},{t}")


def shop(cid: str, email: str, first: str, last: str, phone: str = "",
         t: str = "2026-02-03T00:00:00Z", created: str = "") -> str:
    return f"{cid},{email},{first},{last},{phone},{created or t},{t},false,{t}"


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "landing", tmp_path / "lake"


def deliver(dirs: tuple[Path, Path], source: str, table: str, day: str, header: str,
            *rows: str, name: str = "part-0.csv") -> None:
    landing, lake = dirs
    land(landing, source, table, day, name, csv_text(header, *rows))
    ingest(landing, lake, source, day)


def resolve(dirs: tuple[Path, Path], **overrides):  # noqa: ANN201
    silver(dirs[1])
    return identity(dirs[1], **overrides)


def test_role_mailbox_shared_by_many_contacts_keeps_them_separate_people(dirs):
    """Six Acme contacts all typed info@acme.com: a blocklisted role mailbox never links."""
    names = [("Anna", "Kurz"), ("Ben", "Voss"), ("Carla", "Haas"), ("Dirk", "Lang"),
             ("Eva", "Roth"), ("Falk", "Stein")]
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            *[sf(f"003R{i}", f, la, email="info@acme.com") for i, (f, la) in enumerate(names)])
    report = resolve(dirs)
    ids = persons(dirs[1])
    assert len({ids[f"customer:salesforce:003R{i}"] for i in range(6)}) == 6
    assert report.guarded_values.get("blocklist") == 1
    text = explain_pair(dirs[1], "salesforce:003R0", "salesforce:003R1")
    assert "DIFFERENT PERSONS" in text and "blocklist" in text


def test_a_value_shared_by_more_records_than_the_limit_does_not_link_by_itself(dirs):
    """A hotel front desk's address on seven Zendesk users: over the shared-value limit."""
    deliver(dirs, "zendesk", "user", "2026-02-01", ZD,
            *[f"{900 + i},Guest{i} Name{i},frontdesk@grandhotel.com,,2025-01-0{i + 1}T00:00:00Z,"
              f"2026-02-01T00:00:00Z,false,2026-02-01T01:00:00Z" for i in range(7)])
    resolve(dirs)
    assert len(set(persons(dirs[1]).values())) == 7
    shared = read_silver(dirs[1], "identity_shared_values")
    assert shared.filter(pl.col("value") == "frontdesk@grandhotel.com")["guard"][0] == (
        "shared by 7 zendesk records (limit 5)")


def test_family_mailbox_shared_by_two_people_with_different_names_and_birth_dates(dirs):
    """Anna and Peter Schmidt share a household address and schmidt.family@gmail.com."""
    home = dict(street="Ringstr. 5", city="Köln", postal="50667")
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003F1", "Anna", "Schmidt", email="schmidt.family@gmail.com",
               birth="1980-01-01", **home),
            sf("003F2", "Peter", "Schmidt", email="schmidt.family@gmail.com",
               birth="1978-05-05", **home))
    deliver(dirs, "shopify", "customer", "2026-02-02", SHOP,
            "7100,schmidt.family@gmail.com,Anna,Schmidt,,2025-03-01T00:00:00Z,"
            "2026-02-02T00:00:00Z,false,2026-02-02T01:00:00Z")
    resolve(dirs)
    ids = persons(dirs[1])
    anna, peter = ids["customer:salesforce:003F1"], ids["customer:salesforce:003F2"]
    assert anna != peter
    assert ids["customer:shopify:7100"] == anna  # the Shopify buyer is Anna by name
    text = explain_pair(dirs[1], "salesforce:003F1", "salesforce:003F2")
    assert "DIFFERENT PERSONS" in text and "first names differ" in text


def test_recycled_phone_does_not_merge_its_old_and_new_owner(dirs):
    """The carrier gave Tom Berger's old number to Lisa Novak."""
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003P1", "Tom", "Berger", email="tom.berger@web.de", phone="+4915112345678"))
    deliver(dirs, "shopify", "customer", "2026-02-03", SHOP,
            shop("7200", "lisa.novak@gmx.de", "Lisa", "Novak", "+4915112345678"))
    resolve(dirs)
    ids = persons(dirs[1])
    assert ids["customer:salesforce:003P1"] != ids["customer:shopify:7200"]


def test_typo_in_the_name_with_same_birth_date_and_address_merges(dirs):
    """A duplicate Salesforce contact keyed 'Jnoathan' with its own e-mail, same birth
    date and address: no shared identifier, the probabilistic model links them."""
    home = dict(street="Hauptstraße 12", city="Berlin", postal="10115", birth="1985-03-03")
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003T1", "Jonathan", "Miller", email="jon.miller@gmail.com", **home),
            sf("003T2", "Jnoathan", "Miller", email="j.miller7@outlook.com", **home))
    report = resolve(dirs)
    ids = persons(dirs[1])
    assert ids["customer:salesforce:003T1"] == ids["customer:salesforce:003T2"]
    rows = read_silver(dirs[1], "identity").filter(pl.col("rule") == "probabilistic")
    assert rows.height == 2 and report.links_by_rule.get("probabilistic") == 1
    assert "Splink match weight" in explain_pair(dirs[1], "salesforce:003T1", "salesforce:003T2")


def test_same_name_and_address_but_different_birth_dates_stay_apart(dirs):
    """Father and son, both Klaus Weber at one address: the birth dates contradict."""
    home = dict(street="Lindenweg 3", city="Bonn", postal="53111")
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003W1", "Klaus", "Weber", birth="1950-06-01", **home),
            sf("003W2", "Klaus", "Weber", birth="1982-09-09", **home))
    resolve(dirs)
    ids = persons(dirs[1])
    assert ids["customer:salesforce:003W1"] != ids["customer:salesforce:003W2"]


@pytest.mark.parametrize("typed", ["", "Jo"])
def test_segment_anonymous_visitor_links_to_the_identified_user(dirs, typed):
    """An anonymous visitor (anon-7) signs up later as user u7 on the same device; the
    identify carrying both ids links them. Segment itself asserted the link, so no guard
    splits it - not even when the visitor had typed another first name ('Jo') into a
    form - and explain says it is asserted."""
    deliver(dirs, "segment", "identifies", "2026-03-01", SEG,
            f"m1,,anon-7,2026-03-01T09:00:00Z,2026-03-01T09:00:01Z,,{typed},{typed and 'Lund'}",
            "m2,u7,anon-7,2026-03-01T10:00:00Z,2026-03-01T10:00:01Z,mia@example.org,Mia,Lund")
    report = resolve(dirs)
    ids = persons(dirs[1])
    assert ids["customer:segment:anon:anon-7"] == ids["customer:segment:u7"]
    assert report.links_by_rule == {"anonymous_id": 1}
    shared = read_silver(dirs[1], "identity_shared_values")
    assert shared.filter(pl.col("kind") == "anonymous_id")["guard"].to_list() == [None]
    text = explain_pair(dirs[1], "segment:anon:anon-7", "segment:u7")
    assert "SAME PERSON" in text and "asserted by the source" in text


def test_first_name_change_with_shared_email_and_phone_links(dirs):
    """Jordan Lee became Mia Lee: Salesforce still has the old first name, Shopify the
    new one; both hold her e-mail and her mobile. Two independent identifiers agree, so
    the differing first name is weighed, not a veto."""
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003N1", "Jordan", "Lee", email="j.lee@posteo.de", phone="+4915198765432"))
    deliver(dirs, "shopify", "customer", "2026-02-03", SHOP,
            shop("7300", "j.lee@posteo.de", "Mia", "Lee", "+4915198765432"))
    resolve(dirs)
    ids = persons(dirs[1])
    assert ids["customer:salesforce:003N1"] == ids["customer:shopify:7300"]
    links = read_silver(dirs[1], "identity_links")
    assert links.filter(pl.col("status") == "accepted").height == 1
    # With the first-name contradiction switched on as a hard rule, the veto returns.
    resolve(dirs, hard_rules=["first_names_differ"])
    ids = persons(dirs[1])
    assert ids["customer:salesforce:003N1"] != ids["customer:shopify:7300"]


def test_first_name_change_recorded_in_one_system_links_through_a_shared_email(dirs):
    """Lea Roux becomes Anaïs Roux: Shopify's record changes its first name, Salesforce
    keeps Lea. Only the e-mail is shared, but the Shopify record's own history holds
    both names, so the e-mail is not contested: one person, linked deterministically."""
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003L1", "Lea", "Roux", email="lea.roux@posteo.de"))
    for day, first in (("2026-02-02", "Lea"), ("2026-02-05", "Anaïs")):
        deliver(dirs, "shopify", "customer", day, SHOP,
                shop("7500", "lea.roux@posteo.de", first, "Roux", t=f"{day}T00:00:00Z",
                     created="2025-01-01T00:00:00Z"))
    report = resolve(dirs)
    ids = persons(dirs[1])
    assert ids["customer:salesforce:003L1"] == ids["customer:shopify:7500"]
    assert report.links_by_rule == {"email": 1}


def test_household_sharing_only_a_mailbox_stays_two_people(dirs):
    """Anna Kurz and Ben Voss share kurz.voss@gmail.com and nothing else."""
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003H1", "Anna", "Kurz", email="kurz.voss@gmail.com"))
    deliver(dirs, "shopify", "customer", "2026-02-03", SHOP,
            shop("7400", "kurz.voss@gmail.com", "Ben", "Voss"))
    resolve(dirs)
    ids = persons(dirs[1])
    assert ids["customer:salesforce:003H1"] != ids["customer:shopify:7400"]
    pair = read_silver(dirs[1], "identity_links").filter(pl.col("rule") == "probabilistic")
    assert pair.height == 1 and pair["status"][0] in ("refused", "contradiction",
                                                      "below_threshold")


def test_household_sharing_mailbox_and_landline_stays_two_when_one_source_holds_both(dirs):
    """Anna and Ben Kurz share kurz.family@gmail.com and the landline. Salesforce holds
    them as two contacts (a source holding one person twice under two different first
    names is rare: its duplicates carry typos), so the two shared identifiers are a
    family's, not one person's whose first name changed. Shopify's Ben joins Salesforce's
    Ben, whose name agrees; Anna stays her own person."""
    mailbox, landline = "kurz.family@gmail.com", "+4930123456"
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003K1", "Anna", "Kurz", email=mailbox, phone=landline),
            sf("003K2", "Ben", "Kurz", email=mailbox, phone=landline))
    deliver(dirs, "shopify", "customer", "2026-02-03", SHOP,
            shop("7600", mailbox, "Ben", "Kurz", landline))
    resolve(dirs)
    ids = persons(dirs[1])
    assert ids["customer:salesforce:003K2"] == ids["customer:shopify:7600"]
    assert ids["customer:salesforce:003K1"] != ids["customer:shopify:7600"]
    shared = read_silver(dirs[1], "identity_shared_values")
    assert shared.filter(pl.col("value") == mailbox)["guard"].str.contains(
        "one source holds two of its holders").all()


# Five couples at five addresses, each a Salesforce contact pair: one last name, one
# address, first names and birth dates both differ (two people each time).
COUPLES = [("Petra", "Koch", "1975-11-05", "Jonas", "1973-02-14", "Kirchstr. 12", "30868"),
           ("Emily", "Braun", "1979-07-13", "Felix", "1977-03-30", "Birkenweg 4", "26943"),
           ("Marie", "Neumann", "1962-09-04", "Tobias", "1960-12-01", "Schulstr. 73", "97785"),
           ("Sabine", "Meyer", "1979-05-26", "Lukas", "1981-08-19", "Waldweg 25", "12171"),
           ("Hannah", "Engel", "1990-01-31", "Dirk", "1988-06-07", "Hauptstr. 137", "06124")]


def names_change_here(lake: Path) -> None:
    """Give the lake a model like one `identity-train` learns where first names change
    or get replaced (FEBRL, the `changes` world): a clearly different first name is
    worth -6 bits, not the shipped model's -18.7, so agreeing last name and address
    outweigh it."""
    model = load_model()
    splink = copy.deepcopy(model.splink)
    first = next(c for c in splink["comparisons"] if c["output_column_name"] == "first_name")
    other = first["comparison_levels"][-1]
    other["m_probability"] = other["u_probability"] * 2 ** -6
    save_lake_model(lake, Model(splink, model.threshold, {"method": "test"}))


def couples_and_francois(dirs: tuple[Path, Path], partners_share_birth_date: bool
                         ) -> dict[str, str]:
    """The COUPLES as Salesforce contact pairs (the second with the first's birth date,
    or its own), plus Francois Koch at Petra Koch's address with no birth date; resolved
    with a model where first names change (`names_change_here`). Returns the persons."""
    rows = []
    for i, (f1, last, b1, f2, b2, street, postal) in enumerate(COUPLES):
        home = dict(street=street, city="Hannover", postal=postal)
        rows += [sf(f"003C{i}a", f1, last, birth=b1, **home),
                 sf(f"003C{i}b", f2, last, birth=b1 if partners_share_birth_date else b2,
                    **home)]
    rows.append(sf("003C9", "Francois", "Koch", street="Kirchstr. 12", city="Hannover",
                   postal="30868"))
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF, *rows)
    names_change_here(dirs[1])
    resolve(dirs)
    return persons(dirs[1])


def test_a_different_first_name_at_one_address_without_birth_dates_stays_apart_where_the_data_shows_households(
        dirs):
    """In this data, every pair that agrees on last name and address but not on the
    first name, and whose birth dates can be compared, disagrees on the birth date too:
    such pairs are households here. So Francois Koch, a contact at Petra Koch's address
    with no birth date, is her partner, not Petra under another name - although the
    shared address and last name outweigh the differing first name in the model."""
    ids = couples_and_francois(dirs, partners_share_birth_date=False)
    assert len(set(ids.values())) == 11
    pair = read_silver(dirs[1], "identity_links").filter(
        (pl.col("node_l") == "customer:salesforce:003C0a")
        & (pl.col("node_r") == "customer:salesforce:003C9"))
    assert pair["match_weight"][0] >= 0 and pair["status"][0] == "refused"
    assert "0 of the 5 pairs" in pair["reason"][0] and "a household" in pair["reason"][0]
    text = explain_pair(dirs[1], "salesforce:003C0a", "salesforce:003C9")
    assert "DIFFERENT PERSONS" in text and "a household" in text


def test_a_different_first_name_at_one_address_without_birth_dates_links_where_the_data_shows_name_changes(
        dirs):
    """The counter-case: here the pairs that agree on last name and address but not on
    the first name keep their birth date (one person under a changed or replaced first
    name, as in FEBRL), so a pair without birth dates is weighed by the model as usual
    and Francois joins Petra."""
    ids = couples_and_francois(dirs, partners_share_birth_date=True)
    assert all(ids[f"customer:salesforce:003C{i}a"] == ids[f"customer:salesforce:003C{i}b"]
               for i in range(5))
    assert ids["customer:salesforce:003C9"] == ids["customer:salesforce:003C0a"]


def test_salesforce_merge_chain_is_one_person(dirs):
    """A -> B -> C merged in Salesforce; no shared values between them."""
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003A", "Ann", "Lee", email="a@one.com"), sf("003B", "Ann", "Lee", email="b@two.com"),
            sf("003C", "Ann", "Lee", email="c@three.com"))
    deliver(dirs, "salesforce", "contact", "2026-02-02", SF,
            sf("003A", "Ann", "Lee", email="a@one.com", deleted="true", master="003B",
               t="2026-02-02T08:00:00Z"))
    deliver(dirs, "salesforce", "contact", "2026-02-03", SF,
            sf("003B", "Ann", "Lee", email="b@two.com", deleted="true", master="003C",
               t="2026-02-03T08:00:00Z"))
    resolve(dirs)
    ids = persons(dirs[1])
    assert len({ids[f"customer:salesforce:003{x}"] for x in "ABC"}) == 1
    rules = dict(read_silver(dirs[1], "identity").select("node_id", "rule").iter_rows())
    assert rules["customer:salesforce:003A"] == "salesforce_merge"


def test_person_ids_stay_when_an_unrelated_record_arrives_and_the_older_id_survives_a_merge(
        dirs):
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003O", "Old", "Timer", email="old@a.com", created="2020-01-01T00:00:00Z"))
    deliver(dirs, "shopify", "customer", "2026-02-01", SHOP,
            "7300,,Old,Timer,+4917012345678,2024-06-01T00:00:00Z,2026-02-01T00:00:00Z,false,"
            "2026-02-01T01:00:00Z")
    resolve(dirs)
    before = persons(dirs[1])
    older, newer = before["customer:salesforce:003O"], before["customer:shopify:7300"]
    assert older != newer

    # An unrelated record: nobody's id moves, only it is re-resolved, only its row written.
    deliver(dirs, "zendesk", "user", "2026-02-02", ZD,
            "990,Someone Else,someone@else.org,,2026-02-02T00:00:00Z,2026-02-02T00:00:00Z,false,"
            "2026-02-02T01:00:00Z")
    report = resolve(dirs)
    after = persons(dirs[1])
    assert {k: after[k] for k in before} == before
    assert report.mode == "scoped" and report.records_reresolved == 1
    assert report.records_reassigned == 1

    # A Zendesk user holding both the e-mail and the phone joins the two persons.
    deliver(dirs, "zendesk", "user", "2026-02-03", ZD,
            "991,Old Timer,old@a.com,+4917012345678,2026-02-03T00:00:00Z,2026-02-03T00:00:00Z,"
            "false,2026-02-03T01:00:00Z")
    report = resolve(dirs)
    merged = persons(dirs[1])
    assert merged["customer:shopify:7300"] == merged["customer:salesforce:003O"] == older
    assert merged["customer:zendesk:991"] == older and report.merges == 1
    events = read_silver(dirs[1], "identity_events")
    assert events.select("event_type", "from_person_id", "to_person_id").rows() == [
        ("MERGED_INTO", newer, older)]
    assert "3 record(s)" in explain_person(dirs[1], older)


def test_a_split_leaves_the_id_with_the_part_holding_the_oldest_record(dirs):
    """A contact and an anonymous visitor linked by one e-mail; two more visitors with it
    make it over-shared (limit 2): the link goes, the older record keeps the person id."""
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF,
            sf("003S1", "Rita", "Ora", email="desk@firm.de", created="2021-01-01T00:00:00Z"))
    deliver(dirs, "segment", "identifies", "2026-02-01", SEG,
            "m1,,anon-1,2026-02-01T09:00:00Z,2026-02-01T09:00:01Z,desk@firm.de,,")
    resolve(dirs, shared_value_limit=2)
    first = persons(dirs[1])
    rita = first["customer:salesforce:003S1"]
    assert first["customer:segment:anon:anon-1"] == rita

    deliver(dirs, "segment", "identifies", "2026-02-02", SEG,
            "m2,,anon-2,2026-02-02T09:00:00Z,2026-02-02T09:00:01Z,desk@firm.de,,",
            "m3,,anon-3,2026-02-02T10:00:00Z,2026-02-02T10:00:01Z,desk@firm.de,,")
    report = resolve(dirs, shared_value_limit=2)
    after = persons(dirs[1])
    assert after["customer:salesforce:003S1"] == rita
    visitor = after["customer:segment:anon:anon-1"]
    assert visitor != rita and report.splits == 1
    events = read_silver(dirs[1], "identity_events")
    assert events.select("event_type", "from_person_id", "to_person_id").rows() == [
        ("SPLIT", rita, visitor)]
    links = read_silver(dirs[1], "identity_links").filter(pl.col("rule") == "probabilistic")
    assert "accepted" not in set(links["status"])
    assert set(links["contradiction"]) == {"nothing but a guarded e-mail or phone agrees"}


def test_rerun_with_nothing_new_is_a_noop(dirs):
    deliver(dirs, "salesforce", "contact", "2026-02-01", SF, sf("003N", "No", "Op"))
    resolve(dirs)
    assert identity(dirs[1]).mode == "no-op"


def test_a_lake_without_customers_yet_then_the_first_one(dirs):
    deliver(dirs, "salesforce", "account", "2026-02-01",
            "id,name,is_deleted,last_modified_date,_fivetran_synced",
            "001A,Acme,false,2026-02-01T00:00:00Z,2026-02-01T01:00:00Z")
    report = resolve(dirs)
    assert (report.records, report.persons) == (0, 0)
    assert identity(dirs[1]).mode == "no-op"
    deliver(dirs, "salesforce", "contact", "2026-02-02", SF, sf("003F", "First", "One"))
    report = resolve(dirs)
    assert report.mode == "incremental" and report.persons == 1
    assert list(persons(dirs[1])) == ["customer:salesforce:003F"]
