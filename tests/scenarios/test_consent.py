"""Consent by purpose, with expiry (issue 17): gold/consent_status per person and purpose.

Times are relative to today (the status is evaluated as of the build):
* Ana granted e-mail marketing 25 months ago: expired (grants last 24 months).
* Ben granted it 3 months ago: granted, allowed, expires 21 months from now.
* Cem granted 10 months ago and revoked 2 months ago: revoked.
* Dora granted 30 months ago, revoked 28 months ago, granted again a month ago: granted.
* Eva granted a month ago in Shopify and opted out in Salesforce since: revoked
  (the latest decision wins, whoever recorded it).
* Finn never decided: no row (no consent).
The consent log keeps every decision as evidence. A purpose naming an attribute that
is not a consent attribute is a configuration error.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from c360_assets.bronze import catalogue
from c360_assets.gold.settings import dbt_vars
from c360_assets.lib.config import ConfigError, load_config, parse_config
from c360_assets.lib.registry import load_registry
from c360_assets.plan import materialize
from c360_assets.runner import instance_for
from tests.helpers import csv_text, land

pytestmark = pytest.mark.xdist_group("consent_world")

SHOP = ("id,email,first_name,last_name,phone,email_marketing_consent_state,"
        "email_marketing_consent_updated_at,updated_at,_fivetran_deleted,_fivetran_synced")
SF = ("id,account_id,first_name,last_name,email,phone,mailing_street,mailing_city,"
      "mailing_postal_code,mailing_country_code,birthdate,has_opted_out_of_email,is_deleted,"
      "created_date,last_modified_date,system_modstamp,_fivetran_synced")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TODAY = NOW.date().isoformat()


def ago(months: int = 0, days: int = 0) -> dt.datetime:
    return NOW - dt.timedelta(days=round(months * 30.44) + days)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def shop(cid: str, email: str, first: str, state: str, at: dt.datetime | None) -> str:
    when = iso(at) if at else ""
    updated = iso(at or ago(days=5))
    return f"{cid},{email},{first},Test,,{state},{when},{updated},false,{iso(NOW)}"


@pytest.fixture(scope="session")
def consent(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("consent")
    landing, lake = root / "landing", root / "lake"
    land(landing, "shopify", "customer", TODAY, "part-0.csv", csv_text(
        SHOP,
        shop("801", "ana@consent.test", "Ana", "SUBSCRIBED", ago(25)),
        shop("802", "ben@consent.test", "Ben", "SUBSCRIBED", ago(3)),
        shop("803", "cem@consent.test", "Cem", "SUBSCRIBED", ago(10)),
        shop("803", "cem@consent.test", "Cem", "UNSUBSCRIBED", ago(2)),
        shop("804", "dora@consent.test", "Dora", "SUBSCRIBED", ago(30)),
        shop("804", "dora@consent.test", "Dora", "UNSUBSCRIBED", ago(28)),
        shop("804", "dora@consent.test", "Dora", "SUBSCRIBED", ago(1)),
        shop("805", "eva@consent.test", "Eva", "SUBSCRIBED", ago(1)),
        shop("806", "finn@consent.test", "Finn", "", None)))
    t = iso(ago(days=10))
    land(landing, "salesforce", "contact", TODAY, "part-0.csv", csv_text(
        SF, f"003EVA,,Eva,Test,eva@consent.test,,,,,DE,,true,false,{t},{t},{t},{iso(NOW)}"))
    summary = materialize(landing, lake, instance=instance_for(lake), log_level="ERROR",
                          echo=lambda _: None)
    assert summary.ok, summary.problems
    profiles = pl.read_delta(str(lake / "gold" / "customer_profile_v2")).select(
        "customer_id", "email")
    status = pl.read_delta(str(lake / "gold" / "consent_status")).join(
        profiles, on="customer_id")
    log = pl.read_delta(str(lake / "gold" / "consent_log")).join(profiles, on="customer_id")
    out = {row["email"].split("@")[0]: row for row in status.iter_rows(named=True)}
    out["_log"] = {e: g for (e,), g in log.group_by("email")}  # type: ignore[assignment]
    return out


def test_a_grant_older_than_24_months_has_expired(consent):
    ana = consent["ana"]
    assert (ana["purpose"], ana["status"], ana["allowed"]) == ("email_marketing", "expired", False)
    assert ana["expires_at"] < ana["status_as_of"]


def test_a_recent_grant_is_allowed_until_it_expires(consent):
    ben = consent["ben"]
    assert (ben["status"], ben["allowed"], ben["decided_by_source"]) == ("granted", True, "shopify")
    months = (ben["expires_at"] - ben["decided_at"]).days / 30.44
    assert 23.5 < months < 24.5


def test_a_revoked_grant_is_revoked(consent):
    cem = consent["cem"]
    assert (cem["status"], cem["allowed"], cem["expires_at"]) == ("revoked", False, None)


def test_a_regrant_after_a_revocation_is_granted_from_its_own_time(consent):
    dora = consent["dora"]
    assert (dora["status"], dora["allowed"]) == ("granted", True)
    assert abs((dora["decided_at"] - ago(1)).total_seconds()) < 2 * 86400
    assert consent["_log"]["dora@consent.test"].height == 3  # the evidence: every decision


def test_the_latest_decision_wins_whoever_recorded_it(consent):
    eva = consent["eva"]
    assert (eva["status"], eva["decided_by_source"]) == ("revoked", "salesforce")


def test_no_decision_is_no_consent(consent):
    assert "finn" not in consent


def test_a_purpose_must_name_a_consent_attribute():
    config = parse_config("privacy:\n  consent:\n    sms: {attribute: phone}\n")
    sources = catalogue(load_config())
    with pytest.raises(ConfigError, match=r"privacy\.consent\.sms\.attribute: 'phone'"):
        dbt_vars(config, load_registry(sources=tuple(s.name for s in sources)), sources)
    with pytest.raises(ConfigError, match="purpose 'SMS!'"):
        parse_config("privacy:\n  consent:\n    'SMS!': {attribute: emailConsent}\n")


def test_expiry_is_configurable_per_purpose(tmp_path: Path):
    config = parse_config("privacy:\n  consent:\n    email_marketing: "
                          "{attribute: emailConsent, expires_after_months: 0}\n")
    sources = catalogue(config)
    got = dbt_vars(config, load_registry(sources=tuple(s.name for s in sources)), sources)
    assert got["c360"]["consent_purposes"] == [["email_marketing", "emailConsent", 0]]
