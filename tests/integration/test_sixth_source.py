"""A sixth source is a module plus registry rows: nothing else in c360 changes.

`tests/sixth_source/hubspot.py` declares HubSpot contacts the way a user would
(docs/adding-a-source.md); the test names it in a copy of `config/` (`c360.yaml`
`sources:`, registry and priority rows) and runs the whole pipeline: its records reach
bronze, the silver graph, identity (linking to a Salesforce contact through the e-mail),
the golden record with provenance, `customer_profile.extensions` and `c360 profile`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from c360_assets.lib.config import parse_config
from c360_assets.plan import materialize
from tests.helpers import csv_text, land
from tests.sixth_source import hubspot

HUBSPOT = ("id,property_email,property_firstname,property_lastname,property_phone,"
           "property_city,property_country,archived,property_lastmodifieddate,"
           "_fivetran_deleted,_fivetran_synced")
SF = ("id,first_name,last_name,email,phone,mailing_city,mailing_country_code,is_deleted,"
      "last_modified_date,system_modstamp,_fivetran_synced")


@pytest.fixture
def config_with_hubspot(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config", folder)
    for name, rows in (("attribute_name_registry.csv", hubspot.REGISTRY_ROWS),
                       ("source_priority.csv", hubspot.PRIORITY_ROW)):
        with (folder / name).open("a", encoding="utf-8") as fh:
            fh.write(rows)
    text = (folder / "c360.yaml").read_text().replace("sources:\n", hubspot.CONFIG, 1)
    (folder / "c360.yaml").write_text(text)
    monkeypatch.setenv("C360_CONFIG_DIR", str(folder))
    return parse_config(text, origin=str(folder / "c360.yaml"))


def test_a_sixth_source_flows_to_gold_and_the_profile(config_with_hubspot, tmp_path):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    land(landing, "salesforce", "contact", "2026-02-01", "contact.csv", csv_text(
        SF, "003ADA,Ada,Lovelace,ada@lovelace.example,+44 20 7946 0001,Oxford,GB,false,"
            "2026-02-01T09:00:00Z,2026-02-01T09:00:00Z,2026-02-01T09:30:00Z"))
    land(landing, "hubspot", "contact", "2026-02-02", "contact.csv", csv_text(
        HUBSPOT,
        # Ada again: a newer phone and a city of her own time.
        "501,ada@lovelace.example,Ada,Lovelace,+44 20 7946 0999,London,GB,false,"
        "2026-02-02T10:00:00Z,false,2026-02-02T10:30:00Z",
        "502,grace@hopper.example,Grace,Hopper,,Arlington,US,false,"
        "2026-02-02T11:00:00Z,false,2026-02-02T11:30:00Z",
        # Archived in HubSpot: a deleted record speaks for nobody.
        "503,tom@gone.example,Tom,Gone,,,,true,2026-02-02T12:00:00Z,false,"
        "2026-02-02T12:30:00Z"))

    summary = materialize(landing, lake, config=config_with_hubspot, echo=lambda _: None)
    assert summary.ok, summary

    changes = pl.read_delta(str(lake / "silver" / "field_changes"))
    assert set(changes.filter(pl.col("source_system") == "hubspot")
               .get_column("record_node_id")) == {"customer:hubspot:501", "customer:hubspot:502"}
    nodes = pl.read_delta(str(lake / "silver" / "nodes"))
    tom = nodes.filter(pl.col("node_id") == "customer:hubspot:503").row(0, named=True)
    assert '"deleted":true' in tom["properties"]
    identity = pl.read_delta(str(lake / "silver" / "identity"))
    person = dict(identity.select("node_id", "person_id").iter_rows())
    assert person["customer:hubspot:501"] == person["customer:salesforce:003ADA"]

    profiles = pl.read_delta(str(lake / "gold" / "customer_profile_v2"))
    ada = profiles.filter(pl.col("email") == "ada@lovelace.example").row(0, named=True)
    assert (ada["phone"], ada["phone_source"]) == ("+442079460999", "hubspot")
    assert (ada["city"], ada["city_source"]) == ("London", "hubspot")
    extensions = dict((e["key"], e["value"]) for e in ada["extensions"]) \
        if isinstance(ada["extensions"], list) else ada["extensions"]
    assert extensions == {"sfdc_contact_id": "003ADA", "hubspot_id": "501"}
    grace = profiles.filter(pl.col("email") == "grace@hopper.example").row(0, named=True)
    assert (grace["first_name"], grace["first_name_source"]) == ("Grace", "hubspot")
    assert profiles.filter(pl.col("email") == "tom@gone.example").height == 0

    from c360_assets.gold.profile import show
    text = show(lake, "ada@lovelace.example")
    assert "hubspot_id: 501" in text and "[hubspot, field time 2026-02-02 10:00:00Z]" in text
