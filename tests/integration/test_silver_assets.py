"""The silver multi-asset through Dagster: lineage, metadata, incremental no-op."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from c360_assets.bronze import BUILTIN
from c360_assets.bronze.assets import bronze_key
from c360_assets.definitions import build_definitions
from c360_assets.plan import materialize
from c360_assets.resources import C360Paths
from c360_assets.silver.assets import FIELD_CHANGES_KEY, NODES_KEY, RELATIONSHIPS_KEY

SILVER = (FIELD_CHANGES_KEY, NODES_KEY, RELATIONSHIPS_KEY)


def _silver_metadata(instance: dg.DagsterInstance) -> dict[str, dict]:
    out = {}
    for key in SILVER:
        event = instance.get_latest_materialization_event(key)
        assert event is not None
        mat = event.asset_materialization
        out[key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def test_silver_depends_on_every_bronze_table_in_group_silver():
    defs = build_definitions(paths=C360Paths(landing_root="/nonexistent", lake_root="/nonexistent"))
    graph = defs.resolve_asset_graph()
    bronze = {bronze_key(t) for s in BUILTIN for t in s.tables}
    for key in SILVER:
        node = graph.get(key)
        assert set(node.parent_keys) == bronze
        assert node.group_name == "silver"
        assert node.description



def test_the_upstream_definitions_are_the_whole_graph_less_gold_without_dbt():
    """`c360 materialize` runs bronze and silver from `upstream_definitions` and loads
    dagster-dbt only for gold: they must be exactly the part of the graph upstream of
    gold (the privacy group's receipts step, the serving store and the activation group's
    syncs come after gold), with the same checks, and must not import dbt."""
    import subprocess
    import sys

    from c360_assets.assemble import upstream_definitions

    paths = C360Paths(landing_root="/nonexistent", lake_root="/nonexistent")
    whole, upstream = build_definitions(paths=paths), upstream_definitions(paths=paths)
    whole_graph, upstream_graph = whole.resolve_asset_graph(), upstream.resolve_asset_graph()
    non_gold = {k for k in whole_graph.get_all_asset_keys()
                if k.path[0] not in ("gold", "activation", "serving")
                and k != dg.AssetKey(["privacy", "erasure_receipts"])}
    assert set(upstream_graph.get_all_asset_keys()) == non_gold
    assert (set(upstream_graph.asset_check_keys)
            == {c for c in whole_graph.asset_check_keys
                if c.asset_key.path[0] not in ("gold", "activation", "serving")})
    for key in non_gold:
        assert upstream_graph.get(key).parent_keys == whole_graph.get(key).parent_keys
    probe = ("import sys; from c360_assets.assemble import upstream_definitions; "
             "upstream_definitions(); print(sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('dbt', 'dagster_dbt')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout

def test_silver_materialises_after_bronze_with_metadata_and_reruns_as_noop(
        small_world: Path, tmp_path: Path, instance: dg.DagsterInstance):
    lake = tmp_path / "lake"
    summary = materialize(small_world, lake, instance=instance, echo=lambda _: None)
    assert summary.ok, summary.problems
    meta = _silver_metadata(instance)
    fc = pl.read_delta(str(lake / "silver" / "field_changes"))
    assert meta["silver/field_changes"]["mode"] == "full"
    assert meta["silver/field_changes"]["dagster/row_count"] == fc.height > 0
    assert meta["silver/relationships"]["edges_opened"] > 0
    assert meta["silver/relationships"]["edges_closed"] > 0
    assert meta["silver/field_changes"]["rows_written"] == fc.height
    assert set(meta["silver/nodes"]["watermark"]) == {t.key for s in BUILTIN for t in s.tables}
    versions = {k: m["delta_version"] for k, m in meta.items()}

    summary = materialize(small_world, lake, instance=instance, select="group:silver",
                          echo=lambda _: None)
    assert summary.ok
    meta = _silver_metadata(instance)
    assert meta["silver/field_changes"]["mode"] == "no-op"
    assert {k: m["delta_version"] for k, m in meta.items()} == versions
    assert not any(m["new_commit"] for m in meta.values())
    assert all(m["rows_written"] == m["rows_removed"] == 0 for m in meta.values())
