"""The attribute registry and source priorities: shipped config loads, bad rows are
errors naming file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from c360_assets.bronze import BUILTIN_BY_NAME
from c360_assets.lib.config import ConfigError, config_dir
from c360_assets.lib.registry import CANONICAL_FILE, PRIORITY_FILE, REGISTRY_FILE, parse_registry
from c360_assets.silver import sources

NAMES = tuple(BUILTIN_BY_NAME)


def test_shipped_registry_maps_every_contract_attribute_with_seed_priorities():
    reg = parse_registry(config_dir() / REGISTRY_FILE, config_dir() / PRIORITY_FILE, NAMES)
    assert reg.priorities == {"salesforce": 1, "sap": 2, "shopify": 3, "zendesk": 4,
                              "segment": 5}
    mapped = {(m.source_system, m.canonical_name) for m in reg.mappings}
    for attribute in ("email", "phone", "fullName", "street", "city", "postalCode", "country"):
        assert ("sap", attribute) in mapped
    assert reg.for_table("salesforce", "contact")["country"][0].source_field == (
        "mailing_country_code")  # the code first, then the free-text country
    assert {"email", "phone", "mobilePhone", "anonymousId", "mergedInto"} <= reg.identifying()
    assert not {"firstName", "lastName", "city", "country"} & reg.identifying()


def _copy(tmp_path: Path) -> Path:
    for name in (REGISTRY_FILE, PRIORITY_FILE, CANONICAL_FILE):
        shutil.copy(config_dir() / name, tmp_path / name)
    return tmp_path


def _append(path: Path, line: str) -> int:
    text = path.read_text()
    path.write_text(text + line + "\n")
    return text.count("\n") + 1


@pytest.mark.parametrize(("row", "message"), [
    ("salesforce,contact,email,email,HAS_MAIL,true,1,true", "one relationship type"),
    ("salesforce,contact,email,email,HAS_EMAIL,yes,1,true", "expected true or false"),
    ("oracle,contact,email,email,HAS_EMAIL,true,1,true", "unknown source"),
    ("salesforce,contact,phone,email,HAS_PHONE,true,1,true", "one relationship type"),
    ("salesforce,contact,email,email,HAS_EMAIL,true,0,true", "registry_version"),
    ("salesforce,contact,email,email,HAS_EMAIL,true,1", "expected 8 columns"),
])
def test_bad_registry_row_is_an_error_naming_file_and_line(tmp_path, row, message):
    folder = _copy(tmp_path)
    line = _append(folder / REGISTRY_FILE, row)
    with pytest.raises(ConfigError, match=message) as err:
        parse_registry(folder / REGISTRY_FILE, folder / PRIORITY_FILE, NAMES)
    assert f"{REGISTRY_FILE}:{line}" in str(err.value)


def test_missing_priority_and_unknown_field_are_errors(tmp_path):
    folder = _copy(tmp_path)
    lines = (folder / PRIORITY_FILE).read_text().splitlines()
    (folder / PRIORITY_FILE).write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ConfigError, match="no priority for segment"):
        parse_registry(folder / REGISTRY_FILE, folder / PRIORITY_FILE, NAMES)

    folder = _copy(tmp_path)
    line = _append(folder / REGISTRY_FILE, "zendesk,user,nickname,nickName,HAS_NICK,false,1,true")
    reg = parse_registry(folder / REGISTRY_FILE, folder / PRIORITY_FILE, NAMES)
    from c360_assets.bronze import BUILTIN, record_tables
    schemas = {t.key: t.schema() for s in BUILTIN for t in s.tables}
    with pytest.raises(ConfigError, match=f":{line}: zendesk/user has no field 'nickname'"):
        sources.check_registry(reg, record_tables(BUILTIN), schemas)


def test_a_new_registry_row_is_a_new_attribute_without_code(tmp_path):
    """Adding a source field is a registry row: Zendesk external_id as a new attribute."""
    import polars as pl

    from c360_assets.silver.field_changes import field_changes
    folder = _copy(tmp_path)
    _append(folder / REGISTRY_FILE, "zendesk,user,external_id,crmId,HAS_CRM_ID,true,2,true")
    reg = parse_registry(folder / REGISTRY_FILE, folder / PRIORITY_FILE, NAMES)
    import datetime as dt

    from c360_assets.bronze.zendesk import USER
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    row = {c: None for c in USER.schema()}
    row.update(id=5, name="Eve Ng", external_id=" CRM-7 ", updated_at=t, _fivetran_synced=t,
               _fivetran_deleted=False, _landing_date=dt.date(2026, 1, 1), _source_file="f",
               _source_line=1, _ingested_at=t)
    frame = pl.DataFrame([row], schema=USER.schema())
    from c360_assets.bronze import BUILTIN, record_tables
    changes = field_changes({"zendesk/user": frame}, reg, record_tables(BUILTIN))
    crm = changes.filter(pl.col("attribute") == "crmId").row(0, named=True)
    assert (crm["value"], crm["rel_type"], crm["raw_value"]) == ("CRM-7", "HAS_CRM_ID", " CRM-7 ")


def test_canonical_attributes_drive_identity_gold_and_normalisation():
    """config/canonical_attributes.csv is the one list: what identity reads, the profile's
    columns and each attribute's kind (the values these had as code)."""
    from c360_assets.silver.identity import Inputs

    reg = parse_registry(config_dir() / REGISTRY_FILE, config_dir() / PRIORITY_FILE, NAMES)
    inputs = Inputs.of(reg)
    assert inputs.link_kinds == {"email": "email", "phone": "phone", "mobilePhone": "phone",
                                 "anonymousId": "anonymous_id"}
    assert inputs.features == {
        "email": "email", "firstName": "first_name", "lastName": "last_name",
        "fullName": "full_name", "phone": "phone", "mobilePhone": "mobile_phone",
        "street": "street", "city": "city", "postalCode": "postal_code",
        "country": "country", "birthDate": "birth_date"}
    assert reg.gold_columns() == (
        ("email", "email"), ("firstName", "first_name"), ("lastName", "last_name"),
        ("fullName", "full_name"), ("phone", "phone"), ("mobilePhone", "mobile_phone"),
        ("street", "street"), ("city", "city"), ("postalCode", "postal_code"),
        ("country", "country"), ("birthDate", "birth_date"), ("emailConsent", "email_consent"))
    assert reg.kind("mobilePhone") == "phone" and reg.kind("crmId") == "text"


def test_the_profile_contract_lists_the_canonical_gold_columns():
    import yaml

    reg = parse_registry(config_dir() / REGISTRY_FILE, config_dir() / PRIORITY_FILE, NAMES)
    spec = yaml.safe_load((config_dir().parent / "dbt_project" / "models" / "gold"
                           / "_customer_profile.yml").read_text())
    model = next(m for m in spec["models"] if m["name"] == "customer_profile")
    columns = [c["name"] for c in model["columns"]]
    expected = [part for _, c in reg.gold_columns()
                for part in (c, f"{c}_source", f"{c}_updated_at")]
    assert [c for c in columns if c in expected] == expected
    for version in model["versions"]:
        if version["v"] == 1:  # v1: the values only
            excluded = {c for x in version["columns"] for c in x.get("exclude", [])}
            assert {f"{c}_source" for _, c in reg.gold_columns()} <= excluded


@pytest.mark.parametrize(("row", "message"), [
    ("shoeSize,size,shoe_size,", "unknown kind 'size'"),
    ("shoeSize,text,Shoe Size,", "is not a lower-case identifier"),
    ("shoeSize,text,email,", "gold_column email is already line 2's"),
    ("email,email,,", "email is listed twice"),
])
def test_bad_canonical_rows_name_file_line_and_column(tmp_path, row, message):
    folder = _copy(tmp_path)
    line = _append(folder / "canonical_attributes.csv", row)
    with pytest.raises(ConfigError, match=f"canonical_attributes.csv:{line}: .*{message}"):
        parse_registry(folder / REGISTRY_FILE, folder / PRIORITY_FILE, NAMES)


def test_an_identity_column_identity_does_not_compare_is_an_error(tmp_path):
    from c360_assets.silver.identity import Inputs

    folder = _copy(tmp_path)
    line = _append(folder / "canonical_attributes.csv", "shoeSize,text,,shoe_size")
    reg = parse_registry(folder / REGISTRY_FILE, folder / PRIORITY_FILE, NAMES)
    with pytest.raises(ConfigError, match=f"canonical_attributes.csv:{line}: identity_column"):
        Inputs.of(reg)
