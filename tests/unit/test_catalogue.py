"""The source catalogue: the five built-in sources plus the modules `c360.yaml` names,
each checked before anything runs."""

from __future__ import annotations

import pytest

from c360_assets.bronze import BUILTIN, catalogue, check_spec, record_tables
from c360_assets.lib.config import ConfigError, parse_config


def test_the_builtin_sources_are_well_declared():
    assert [check_spec(s) for s in BUILTIN] == [[]] * len(BUILTIN)
    tables = record_tables(BUILTIN)
    # Secondary tables come after every main table (silver reads them in this order).
    secondary = [i for i, t in enumerate(tables) if t.main_ref is not None]
    assert secondary and min(secondary) > max(i for i, t in enumerate(tables)
                                               if t.main_ref is None)


def test_a_configured_module_joins_the_catalogue():
    config = parse_config("sources:\n  hubspot: {module: tests.sixth_source.hubspot}\n")
    assert [s.name for s in catalogue(config)] == [*(s.name for s in BUILTIN), "hubspot"]


@pytest.mark.parametrize(("text", "message"), [
    ("sources:\n  hubspot: {start_date: 2020-01-01}\n", "sources.hubspot: unknown source"),
    ("sources:\n  hubspot: {module: no.such.module}\n",
     "sources.hubspot.module: cannot import 'no.such.module'"),
    ("sources:\n  hubspot: {module: tests.helpers}\n", "declares no SOURCE"),
    ("sources:\n  crm: {module: tests.sixth_source.hubspot}\n",
     "must be the SourceSpec named 'crm'"),
    ("sources:\n  sap: {module: tests.sixth_source.hubspot}\n", "sap ships with c360"),
])
def test_a_bad_source_entry_names_its_key(text, message):
    with pytest.raises(ConfigError, match="config/c360.yaml: ") as err:
        parse_config(text, origin="config/c360.yaml")
    assert message in str(err.value)


def test_a_broken_declaration_is_refused_with_what_is_wrong():
    import dataclasses

    from tests.sixth_source import hubspot

    contact = hubspot.CONTACT
    records = dataclasses.replace(contact.records, key_columns=("contact_id",),
                                  json_fields="properties")
    broken = dataclasses.replace(hubspot.SOURCE, tables=(
        dataclasses.replace(contact, records=records),))
    assert check_spec(broken) == [
        "table contact: key_columns ['contact_id'] are not columns",
        "table contact: json_fields 'properties' is not a column"]
