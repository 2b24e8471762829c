"""The dbt project itself: both targets parse, the settings come from config, and the
gold assets join the one lineage graph."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.bronze import BUILTIN
from c360_assets.gold.assets import dbt_executable
from c360_assets.gold.inputs import DBT_PROJECT_DIR
from c360_assets.gold.settings import dbt_vars
from c360_assets.lib.config import ConfigError, parse_config
from c360_assets.lib.registry import load_registry


def parse(target: str, out: Path) -> dict:
    env = {**os.environ, "C360_DBT_TARGET": target, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(
        [dbt_executable(), "parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
         str(DBT_PROJECT_DIR), "--target-path", str(out), "--no-partial-parse"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "manifest.json").read_text())


def test_dbt_parse_succeeds_for_the_databricks_target_without_a_connection(tmp_path):
    manifest = parse("databricks", tmp_path)
    assert manifest["metadata"]["adapter_type"] == "databricks"
    profiles = {n["version"]: n for n in manifest["nodes"].values()
                if n["resource_type"] == "model" and n["name"] == "customer_profile"}
    assert set(profiles) == {1, 2}
    v1, v2 = profiles[1], profiles[2]
    assert v1["deprecation_date"] and not v2.get("deprecation_date")
    assert v2["contract"]["enforced"] and v1["contract"]["enforced"]
    assert v2["columns"]["extensions"]["data_type"] == "map<string,string>"
    assert v2["columns"]["phone_updated_at"]["data_type"] == "timestamp"
    assert "extensions" not in v1["columns"] and "phone_source" not in v1["columns"]
    assert manifest["sources"]["source.c360.silver.relationships"]["schema"] == "silver"


def test_duckdb_target_types_and_delta_sources(tmp_path):
    manifest = parse("duckdb", tmp_path)
    v2 = next(n for n in manifest["nodes"].values()
              if n["name"] == "customer_profile" and n["version"] == 2)
    assert v2["columns"]["extensions"]["data_type"] == "map(varchar, varchar)"
    source = manifest["sources"]["source.c360.silver.identity"]
    assert source["meta"]["plugin"] == "delta"
    assert source["meta"]["delta_table_path"].endswith("/silver/identity")
    assert source["meta"]["dagster"]["asset_key"] == ["silver", "identity"]


def test_vars_carry_priorities_rules_and_windows_from_config():
    config = parse_config("gold:\n  survivorship:\n    street: {rule: source_priority, "
                          "sources: [sap]}\n    city: most_frequent\n"
                          "freshness:\n  stale_after_hours: 6\n  sources: {sap: 30}\n")
    got = dbt_vars(config, load_registry(), BUILTIN)["c360"]
    assert got["source_priority"] == {"salesforce": 1, "sap": 2, "shopify": 3, "zendesk": 4,
                                      "segment": 5}
    assert got["survivorship"] == {"city": {"rule": "most_frequent", "sources": None},
                                   "street": {"rule": "source_priority", "sources": ["sap"]}}
    assert got["stale_after_hours"]["sap"] == 30 and got["stale_after_hours"]["zendesk"] == 6


@pytest.mark.parametrize(("text", "message"), [
    ("gold:\n  survivorship:\n    street: newest_wins\n", "gold.survivorship.street"),
    ("gold:\n  survivorship:\n    street: {rule: most_recent, sources: [sap]}\n",
     "applies to rule source_priority only"),
    ("gold:\n  survivorship:\n    street: {rule: source_priority, sources: [hubspot]}\n",
     "gold.survivorship.street.sources: unknown source 'hubspot'"),
    ("freshness:\n  sources: {hubspot: 3}\n", "unknown source 'hubspot'"),
    ("freshness:\n  stale_after_hours: 0\n", "freshness.stale_after_hours"),
])
def test_bad_gold_settings_name_the_key(text, message):
    with pytest.raises(ConfigError, match="c360.yaml") as err:
        parse_config(text, origin="config/c360.yaml")
    assert message in str(err.value)


def test_survivorship_for_an_attribute_the_registry_does_not_know_is_an_error():
    config = parse_config("gold:\n  survivorship:\n    shoeSize: most_recent\n")
    with pytest.raises(ConfigError, match="gold.survivorship.shoeSize: not a canonical"):
        dbt_vars(config, load_registry(), BUILTIN)


def test_gold_assets_continue_the_silver_lineage():
    from c360_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    candidates = graph.get(dg.AssetKey(["gold", "stg_attribute_candidates"]))
    # The ingestion position travels with the edge: no field_changes read.
    assert {k.to_user_string() for k in candidates.parent_keys} == {
        "silver/relationships", "silver/nodes", "silver/identity"}
    profile = graph.get(dg.AssetKey(["gold", "customer_profile_v2"]))
    assert profile.group_name == "gold" and "dbt" in profile.kinds
    assert profile.owners == ["team:data-platform"]
    assert "golden customer record" in (profile.description or "")
    checks = {k.name for k in graph.asset_check_keys
              if k.asset_key == dg.AssetKey(["silver", "relationships"])}
    assert checks == {"no_duplicate_current_edges"}  # c360's own; dbt adds none
    gold_dbt = next(a for a in defs.assets if getattr(a, "node_def", None)
                    and a.node_def.name == "gold_dbt")
    specs = {spec.key.name: spec for spec in gold_dbt.check_specs}
    assert specs["unique_customer_profile_v2_customer_id"].blocking  # dbt severity error
