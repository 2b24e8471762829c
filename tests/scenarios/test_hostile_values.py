"""Implausible values never win (issue 13), through the landing contract and the whole
graph: bronze, silver, identity, gold, and `c360 profile` on the result.

The people:
* Erika Stein - a real e-mail in Shopify; later her Salesforce record (one person with
  it through their shared phone) carries a 10,000-character "e-mail" at a newer field
  time: it breaks the e-mail's length limit, is implausible, so the real e-mail stays
  golden.
* Mia Wolf - moved her phone to a North American number that no numbering plan assigns
  (exchange 020): it fails the phone rules, but it is a plausible value, newer than her
  valid old one, and it wins as before: failing a format rule is not implausibility.
* Paul Roth - changed his phone in Shopify; then a Salesforce row whose SystemModstamp is
  9999-12-31 carries another phone: the row is quarantined, the real phone stays golden.
  A later row of his Salesforce contact claims creation on 0001-01-01: quarantined, so
  his person id (from his oldest record) does not move.
* Nina Brandt - her only first name arrives with a NUL byte and a terminal escape: gold
  holds it without them (flagged implausible), and `c360 profile` prints escapes, never raw
  control bytes.
* Olaf Lang - a 5 MB first name: the row is quarantined; his earlier snapshot stays.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from c360_assets.gold.profile import show
from c360_assets.lib.terminal import safe
from c360_assets.silver.graph import IMPLAUSIBLE_CONFIDENCE, INVALID_CONFIDENCE
from tests.helpers import csv_text, land
from tests.scenarios.test_gold import SF, SHOP, build, gold, shop

pytestmark = pytest.mark.xdist_group("hostile_world")

D1, D2 = "2026-02-01", "2026-02-02"
HUGE_EMAIL = "e" * 9_990 + "@stein.de"


def sf_row(rid: str, first: str, last: str, email: str, t: str, *, phone: str = "",
           created: str = "2023-01-10T00:00:00Z", modstamp: str | None = None) -> str:
    return (f"{rid},,{first},{last},{email},{phone},,,,DE,,,false,{created},{t},"
            f"{modstamp or t},{t}")


def landing_files(root: Path) -> None:
    def put(source: str, table: str, day: str, header: str, *rows: str) -> None:
        land(root, source, table, day, "part-0.csv", csv_text(header, *rows))

    put("shopify", "customer", D1, SHOP,
        shop("81001", "erika.stein@web.de", "Erika", "Stein", "+49 30 44455566",
             "2026-01-20T10:00:00Z"),
        shop("81002", "paul.roth@gmx.de", "Paul", "Roth", "+49 30 11122233",
             "2026-01-31T09:00:00Z"),
        shop("81003", "mia.wolf@web.de", "Mia", "Wolf", "+49 30 12345678",
             "2026-01-10T09:00:00Z"))
    put("salesforce", "contact", D1, SF,
        sf_row("003PAUL", "Paul", "Roth", "paul.roth@gmx.de", "2025-01-01T10:00:00Z",
               phone="+49 30 99988877"),
        sf_row("003NINA", "Ni\x00na\x1b[31m", "Brandt", "nina.brandt@posteo.de",
               "2025-05-01T10:00:00Z"),
        sf_row("003OLAF", "Olaf", "Lang", "olaf.lang@web.de", "2025-05-01T10:00:00Z"))
    put("salesforce", "contact", D2, SF,
        sf_row("003ERIKA", "Erika", "Stein", HUGE_EMAIL, "2026-02-01T12:00:00Z",
               phone="+49 30 44455566"),
        sf_row("003PAUL", "Paul", "Roth", "paul.roth@gmx.de", "2026-02-01T12:00:00Z",
               phone="+49 30 55566677", modstamp="9999-12-31T00:00:00Z"),
        sf_row("003PAUL", "Paul", "Roth", "paul.roth@gmx.de", "2026-02-01T13:00:00Z",
               phone="+49 30 99988877", created="0001-01-01T00:00:00Z"),
        sf_row("003OLAF", "O" * 5_000_000, "Lang", "olaf.lang@web.de", "2026-02-01T12:00:00Z"),
        sf_row("003MIA", "Mia", "Wolf", "mia.wolf@web.de", "2026-02-01T12:00:00Z",
               phone="+1 617 020 6070"))


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    landing_files(root / "landing")
    build(root / "landing", root / "lake")
    return root / "lake"


def profile(lake: Path, email: str) -> dict:
    found = gold(lake, "customer_profile_v2").filter(pl.col("email") == email)
    assert found.height == 1, found
    return found.row(0, named=True)


def test_implausible_rows_are_in_quarantine_with_their_reasons(lake):
    q = pl.read_delta(str(lake / "quarantine" / "salesforce_contact")).sort("line")
    assert q.select("line", "column").rows() == [(3, "system_modstamp"), (4, "created_date"),
                                                 (5, "first_name")]
    assert "implausible time '9999-12-31T00:00:00Z'" in q["reason"][0]
    assert "implausible time '0001-01-01T00:00:00Z'" in q["reason"][1]
    assert "a value of 5000000 characters" in q["reason"][2]


def test_a_future_record_time_does_not_win_the_phone(lake):
    paul = profile(lake, "paul.roth@gmx.de")
    assert (paul["phone"], paul["phone_source"]) == ("+493011122233", "shopify")


def test_a_sentinel_creation_time_does_not_move_the_person_id(lake):
    identity = pl.read_delta(str(lake / "silver" / "identity"))
    pid = identity.filter(pl.col("node_id") == "customer:salesforce:003PAUL")["person_id"].item()
    assert profile(lake, "paul.roth@gmx.de")["customer_id"] == pid
    changes = pl.read_delta(str(lake / "silver" / "field_changes"))
    assert changes.filter(pl.col("record_node_id") == "customer:salesforce:003PAUL")[
        "source_line"].max() == 2  # nothing from the quarantined rows


def test_an_absurdly_long_email_is_implausible_and_loses_to_a_real_one(lake):
    erika = gold(lake, "customer_profile_v2").filter(pl.col("first_name") == "Erika")
    assert erika.height == 1 and erika["source_record_count"].item() == 2
    assert (erika["email"].item(), erika["email_source"].item()) == ("erika.stein@web.de",
                                                                     "shopify")
    edges = pl.read_delta(str(lake / "silver" / "relationships")).filter(
        (pl.col("source_node_id") == "customer:salesforce:003ERIKA")
        & (pl.col("rel_type") == "HAS_EMAIL") & pl.col("is_current"))
    assert edges["confidence"].to_list() == [IMPLAUSIBLE_CONFIDENCE]  # kept, flagged


def test_a_newer_phone_that_fails_the_format_rules_still_wins(lake):
    mia = profile(lake, "mia.wolf@web.de")
    assert (mia["phone"], mia["phone_source"]) == ("+16170206070", "salesforce")
    edges = pl.read_delta(str(lake / "silver" / "relationships")).filter(
        (pl.col("source_node_id") == "customer:salesforce:003MIA")
        & (pl.col("rel_type") == "HAS_PHONE") & pl.col("is_current"))
    assert edges["confidence"].to_list() == [INVALID_CONFIDENCE]  # invalid, not implausible


def test_control_characters_never_reach_gold_or_the_terminal(lake):
    nina = profile(lake, "nina.brandt@posteo.de")
    assert nina["first_name"] == "Nina[31m"
    text = show(lake, "nina.brandt@posteo.de")
    # The profile shows values from gold and silver; the CLI prints it through `safe`.
    assert "\x00" not in text and "\x1b" not in text
    assert "\x1b" not in safe("Ni\x1b[31mna") and "\\x1b" in safe("Ni\x1b[31mna")


def test_a_five_megabyte_first_name_stays_out_and_the_earlier_snapshot_stands(lake):
    olaf = profile(lake, "olaf.lang@web.de")
    assert olaf["first_name"] == "Olaf"
    names = pl.read_delta(str(lake / "silver" / "nodes")).filter(
        pl.col("node_type") == "firstName")["value"]
    assert names.str.len_chars().max() < 100
