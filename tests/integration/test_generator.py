"""The world generator: deterministic, contract-clean, and as awkward as real sources."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import polars as pl
import pytest

from c360_assets.bronze import BUILTIN
from c360_assets.bronze.landing import ingest_table, landed_days
from c360_assets.generator import generate
from tests.conftest import WORLD_START
from tests.helpers import NOW


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _bronze(root: Path) -> dict[str, pl.DataFrame]:
    out = {}
    for source in BUILTIN:
        days, problems = landed_days(root, source)
        assert not problems
        for table in source.tables:
            batch = ingest_table(root, table, days, NOW)
            assert batch.problems == [], (table.key, batch.problems[:3])
            assert batch.quarantine.is_empty(), (table.key, batch.quarantine.head(3).to_dicts())
            out[table.key] = batch.good
    return out


@pytest.fixture(scope="session")
def rich_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rich") / "landing"
    generate(5000, 14, 2024, out, start=WORLD_START, progress=lambda _: None)
    return out


@pytest.fixture(scope="session")
def rich(rich_world) -> dict[str, pl.DataFrame]:
    return _bronze(rich_world)


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path) -> None:
    generate(200, 5, 3, tmp_path / "a", start=WORLD_START, progress=lambda _: None)
    generate(200, 5, 3, tmp_path / "b", start=WORLD_START, progress=lambda _: None)
    generate(200, 5, 4, tmp_path / "c", start=WORLD_START, progress=lambda _: None)
    a = _digest(tmp_path / "a")
    assert len(a) > 40
    assert a == _digest(tmp_path / "b")
    assert a != _digest(tmp_path / "c")


def test_generated_landing_passes_the_contract(small_world) -> None:
    tables = _bronze(small_world)
    assert all(t.height > 0 for t in tables.values()), {k: t.height for k, t in tables.items()}


def test_every_landed_record_is_in_the_truth(rich_world, rich) -> None:
    truth = pl.read_parquet(rich_world / "_truth" / "records.parquet")
    ids = {
        ("salesforce", "contact"): rich["salesforce_contact"]["id"],
        ("sap", "kna1"): rich["sap_kna1"].select(pl.format("{}:{}", "mandt", "kunnr")).to_series(),
        ("shopify", "customer"): rich["shopify_customer"]["id"].cast(pl.String),
        ("segment", "identifies"): rich["segment_identifies"].select(
            pl.coalesce("user_id", pl.format("anon:{}", "anonymous_id"))).to_series(),
        ("zendesk", "user"): rich["zendesk_user"]["id"].cast(pl.String),
    }
    for (source, table), landed in ids.items():
        known = set(truth.filter((pl.col("source") == source) & (pl.col("table") == table))["record_id"])
        assert set(landed.unique()) <= known, source
    # every source holds its own subset of people
    per_source = truth.group_by("source").agg(pl.col("person_id").n_unique())
    assert per_source.height == 5 and per_source["person_id"].max() < 5000
    assert truth.group_by("person_id").agg(pl.col("source").n_unique())["source"].max() >= 4


def test_truth_attributes_have_normalised_current_values_and_observed_flags(rich_world) -> None:
    attrs = pl.read_parquet(rich_world / "_truth" / "attributes.parquet")
    assert set(attrs.columns) == {"person_id", "attribute", "value", "changed_at", "observed"}
    assert set(attrs["attribute"]) == {"email", "firstName", "lastName", "fullName", "phone",
                                       "mobilePhone", "street", "city", "postalCode", "country",
                                       "birthDate", "emailConsent"}
    assert attrs.filter(pl.col("attribute") == "email")["value"].str.contains("^[a-z0-9._]+@[a-z0-9.-]+$").all()
    assert attrs.filter(pl.col("attribute") == "phone")["value"].str.contains(r"^\+\d{8,15}$").all()
    assert attrs.filter(pl.col("attribute") == "country")["value"].str.contains("^[A-Z]{2}$").all()
    assert set(attrs.filter(pl.col("attribute") == "emailConsent")["value"]) == {"true", "false"}
    share = attrs["observed"].mean()
    assert 0.6 < share < 1.0  # some true values never reach any source
    assert attrs.filter(pl.col("changed_at") >= dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).height > 100


def test_tier2_snapshots_repeat_unchanged_fields_and_resyncs_reland_rows(rich) -> None:
    contact = rich["salesforce_contact"]
    multi = contact.group_by("id").agg(pl.len(), pl.col("system_modstamp").n_unique().alias("times"),
                                       pl.col("email").n_unique().alias("emails"))
    # a record landed again with a new record time but the same e-mail (another field or a touch)
    assert multi.filter((pl.col("times") > 1) & (pl.col("emails") == 1)).height > 10
    # a full re-sync re-lands unchanged rows: same record time, new _fivetran_synced
    resynced = contact.group_by("id", "system_modstamp").agg(pl.col("_fivetran_synced").n_unique())
    assert resynced.filter(pl.col("_fivetran_synced") > 1).height > 100


def test_segment_identifies_are_partial_late_skewed_and_link_anonymous_ids(rich) -> None:
    ident = rich["segment_identifies"]
    traits = ident["traits"].str.json_decode()
    sent = traits.struct.unnest().select(pl.sum_horizontal(pl.all().is_not_null()).alias("n"))["n"]
    assert (sent == 1).sum() > 20  # only the changed trait was sent
    assert ident.filter(pl.col("received_at") - pl.col("timestamp") > dt.timedelta(days=1)).height > 0
    assert ident.filter(pl.col("original_timestamp") - pl.col("timestamp") > dt.timedelta(days=365)).height > 0
    both = ident.filter(pl.col("user_id").is_not_null() & pl.col("anonymous_id").is_not_null())
    anon_only = ident.filter(pl.col("user_id").is_null())
    assert both.height > 0 and anon_only.height > 0
    assert set(anon_only["anonymous_id"]) & set(both["anonymous_id"])  # anonymous -> user links


def test_shopify_consent_has_its_own_time_and_ids_exceed_float_precision(rich) -> None:
    customer = rich["shopify_customer"]
    assert customer.filter(pl.col("email_marketing_consent_updated_at") != pl.col("updated_at")).height > 100
    states = set(customer["email_marketing_consent_state"].str.to_lowercase())
    assert states == {"subscribed", "unsubscribed", "not_subscribed"}
    assert customer["id"].min() > 2**53


def test_sap_has_date_only_change_dates_and_deletion_flags(rich) -> None:
    kna1 = rich["sap_kna1"]
    assert kna1["laeda"].null_count() > 0 and kna1["laeda"].drop_nulls().len() > 0
    assert (kna1["loevm"] == "X").sum() > 0
    assert kna1["kunnr"].str.starts_with("0000").all()


def test_format_noise_emails_phones_countries_names(rich) -> None:
    contact = rich["salesforce_contact"]
    assert contact["email"].str.contains("[A-Z]").sum() > 10
    assert contact["phone"].str.starts_with("(").sum() > 10  # US national format
    assert contact["phone"].str.starts_with("+").sum() > 10  # E.164
    assert {"United Kingdom", "UK", "Great Britain"} & set(contact["mailing_country"])
    assert contact["mailing_country_code"].null_count() > 0
    nfd = contact["first_name"].drop_nulls().filter(contact["first_name"].drop_nulls().str.contains("\u0308|\u0301"))
    assert nfd.len() > 0  # decomposed accents (NFD) as some systems store them
    zendesk = rich["zendesk_user"]
    assert zendesk["name"].str.contains(", ").sum() > 10  # "Last, First"


def test_shared_mailboxes_family_emails_recycled_phones(rich_world, rich) -> None:
    contact = rich["salesforce_contact"]
    role = contact.filter(pl.col("email").str.to_lowercase().str.contains("^(info|sales|support|contact|office)@"))
    assert role.group_by(pl.col("email").str.to_lowercase()).agg(pl.col("id").n_unique())["id"].max() >= 2
    attrs = pl.read_parquet(rich_world / "_truth" / "attributes.parquet")
    family = attrs.filter((pl.col("attribute") == "email") & pl.col("value").str.contains(r"\.family\d+@"))
    assert family.group_by("value").len()["len"].max() == 2
    # Shopify allows one customer per e-mail: a household has at most one Shopify record.
    shop_people = pl.read_parquet(rich_world / "_truth" / "records.parquet").filter(
        pl.col("source") == "shopify")["person_id"]
    per_mailbox = family.filter(pl.col("person_id").is_in(shop_people.implode())).group_by("value").len()
    assert per_mailbox["len"].max() == 1
    truth = pl.read_parquet(rich_world / "_truth" / "records.parquet")
    # a recycled number: one phone held by two different people at different times
    zd = rich["zendesk_user"].select(pl.col("id").cast(pl.String).alias("record_id"), "phone")
    sf = contact.select(pl.col("id").alias("record_id"), "phone")
    shop = rich["shopify_customer"].select(pl.col("id").cast(pl.String).alias("record_id"), "phone")
    phones = pl.concat([zd, sf, shop]).with_columns(
        pl.col("phone").str.replace_all(r"[^\d+]", "")).join(truth, on="record_id")
    e164 = phones.filter(pl.col("phone").str.starts_with("+"))
    shared = e164.group_by("phone").agg(pl.col("person_id").n_unique())
    assert shared["person_id"].max() >= 2
    junk = rich["zendesk_user"].filter(pl.col("email").is_in(["test@test.com", "noreply@example.com", "none@none.com"]))
    assert junk.height > 0


def test_deletes_merges_and_merge_chains(rich_world, rich) -> None:
    contact = rich["salesforce_contact"]
    merged = contact.filter(pl.col("is_deleted") & pl.col("master_record_id").is_not_null())
    assert merged.height > 0
    assert contact.filter(pl.col("is_deleted") & pl.col("master_record_id").is_null()).height > 0
    losers = set(merged["id"])
    assert set(merged["master_record_id"]) & losers  # A -> B where B itself merged into C
    truth = pl.read_parquet(rich_world / "_truth" / "records.parquet")
    chain = truth.filter(pl.col("merged_into").is_in(truth["merged_into"].drop_nulls().implode())
                         & pl.col("record_id").is_in(truth["merged_into"].drop_nulls().implode()))
    assert chain.height > 0
    assert rich["shopify_customer"]["_fivetran_deleted"].sum() > 0
    users = rich["zendesk_user"]
    assert (~users["active"]).sum() > 0
    assert (users["name"] == "Permanently Deleted User").sum() > 0


def test_b2b_accounts_contacts_and_assets(rich) -> None:
    accounts = set(rich["salesforce_account"]["id"])
    contact_accounts = set(rich["salesforce_contact"]["account_id"].drop_nulls())
    assert contact_accounts <= accounts and len(contact_accounts) > 50
    assets = rich["salesforce_asset"]
    assert set(assets["account_id"]) <= accounts and assets.height > 50
    assert rich["zendesk_user"]["organization_id"].drop_nulls().is_in(
        rich["zendesk_organization"]["id"].implode()).all()


def test_the_cli_offers_every_world_profile():
    from c360_assets.cli import PROFILE_NAMES
    from c360_assets.generator.world import PROFILES

    assert tuple(PROFILES) == PROFILE_NAMES


def test_the_changes_profile_changes_first_names_and_drops_contact_values(tmp_path):
    """The second world: real first-name changes reach the truth and the sources, and
    some records land with neither e-mail nor phone; the default world has neither."""
    out = tmp_path / "changes"
    report = generate(1500, 30, 5, out, start=WORLD_START, progress=lambda _: None,
                      profile="changes")
    assert report.profile == "changes"
    window = dt.datetime.combine(WORLD_START, dt.time(), tzinfo=dt.UTC)

    def first_names_set_in_window(root: Path) -> int:
        truth = pl.read_parquet(root / "_truth" / "attributes.parquet")
        return truth.filter((pl.col("attribute") == "firstName")
                            & (pl.col("changed_at") >= window)).height
    generate(1500, 30, 5, tmp_path / "default", start=WORLD_START, progress=lambda _: None)
    # Both worlds have people who sign up in the window; only one has renamed people.
    assert first_names_set_in_window(out) > first_names_set_in_window(tmp_path / "default") + 20
    contacts = pl.concat([pl.read_csv(p, infer_schema=False) for p in
                          (out / "salesforce" / "contact").rglob("*.csv")], how="diagonal")
    bare = contacts.filter(pl.col("email").is_null() & pl.col("phone").is_null()
                           & pl.col("mobile_phone").is_null())
    assert bare.height > 0
    with pytest.raises(ValueError, match="unknown world profile"):
        generate(10, 1, 1, tmp_path / "x", progress=lambda _: None, profile="nope")
