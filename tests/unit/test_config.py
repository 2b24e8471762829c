"""Platform configuration is validated once, with errors that name the file and key."""

from __future__ import annotations

import datetime as dt

import pytest

from c360_assets.lib.config import ConfigError, load_config, parse_config


def test_shipped_config_loads() -> None:
    config = load_config()
    assert config.source("sap").start_date == dt.date(2020, 1, 1)
    assert 0 < config.bronze.quarantine_warn_rate < 1


def test_defaults_when_empty() -> None:
    assert parse_config("").source("shopify").start_date == dt.date(2020, 1, 1)


@pytest.mark.parametrize(("text", "message"), [
    ("sources:\n  hubspot: {start_date: 2020-01-01}\n", "sources.hubspot: unknown source"),
    ("sources:\n  sap: {start_date: soon}\n", "sources.sap.start_date"),
    ("bronze:\n  quarantine_warn_rate: 2\n", "bronze.quarantine_warn_rate"),
    ("bronze:\n  typo_key: 1\n", "bronze.typo_key"),
    ("- a list\n", "expected a mapping"),
    ("sources: [unclosed\n", "not valid YAML"),
    ("identity:\n  blocklist: {email: ['(a)\\1']}\n", "identity.blocklist"),
    ("identity:\n  blocklist: {fax: ['x']}\n", "unknown kind 'fax'"),
    ("identity:\n  shared_value_limit: 0\n", "identity.shared_value_limit"),
    ("identity:\n  hard_rules: [names_differ]\n", "identity.hard_rules"),
    ("gold:\n  survivorship: {firstName: newest_unless_typo}\n", "gold.survivorship"),
])
def test_bad_config_names_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, origin="config/c360.yaml")
    assert "config/c360.yaml" in str(err.value) and message in str(err.value)
