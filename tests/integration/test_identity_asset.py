"""The identity multi-asset through Dagster: lineage, metadata, the cluster-size check,
and its accuracy on a small generated world against the generator's truth."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from c360_assets.definitions import build_definitions
from c360_assets.plan import materialize
from c360_assets.resources import C360Paths
from c360_assets.silver.assets import (
    CLUSTER_SIZE_CHECK,
    IDENTITY_EVENTS_KEY,
    IDENTITY_KEY,
    NODES_KEY,
    RELATIONSHIPS_KEY,
)
from c360_assets.silver.identity_build import truth_labels


def test_identity_follows_the_graph_in_group_silver():
    defs = build_definitions(paths=C360Paths(landing_root="/nonexistent", lake_root="/nonexistent"))
    graph = defs.resolve_asset_graph()
    for key in (IDENTITY_KEY, IDENTITY_EVENTS_KEY):
        node = graph.get(key)
        assert set(node.parent_keys) == {NODES_KEY, RELATIONSHIPS_KEY}
        assert node.group_name == "silver" and node.description
    assert dg.AssetCheckKey(IDENTITY_KEY, CLUSTER_SIZE_CHECK) in graph.asset_check_keys


def _metadata(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(IDENTITY_KEY)
    assert event is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_identity_materialises_with_metadata_check_and_truth_accuracy(
        small_world: Path, tmp_path: Path, instance: dg.DagsterInstance):
    lake = tmp_path / "lake"
    summary = materialize(small_world, lake, instance=instance, echo=lambda _: None)
    assert summary.ok, summary.problems
    assert summary.tables["silver/identity"].checks == {CLUSTER_SIZE_CHECK: True}
    meta = _metadata(instance)
    ident = pl.read_delta(str(lake / "silver" / "identity"))
    assert meta["mode"] == "full" and meta["records"] == ident.height == meta["dagster/row_count"]
    assert meta["persons"] == ident["person_id"].n_unique()
    assert meta["largest_cluster"] == ident.group_by("person_id").len()["len"].max()
    assert set(meta["links_by_rule"]) >= {"email", "phone"}
    # Every customer record has exactly one identity row.
    nodes = pl.read_delta(str(lake / "silver" / "nodes")).filter(pl.col("node_type") == "customer")
    assert sorted(ident["node_id"]) == sorted(nodes["node_id"])

    # Against the generator's truth: pairwise precision and recall.
    got = ident.join(truth_labels(small_world / "_truth" / "records.parquet"), on="node_id")
    pairs = lambda *c: got.group_by(*c).len().select(  # noqa: E731
        (pl.col("len") * (pl.col("len") - 1) // 2).sum()).item()
    both = pairs("person_id", "true_id")
    assert both / pairs("person_id") > 0.97 and both / pairs("true_id") > 0.97

    summary = materialize(small_world, lake, instance=instance, select="silver/identity",
                          echo=lambda _: None)
    assert summary.ok and _metadata(instance)["mode"] == "no-op"


def test_explain_from_the_command_line(small_world: Path, tmp_path: Path,
                                       instance: dg.DagsterInstance, capsys):
    from c360_assets.cli import main

    lake = tmp_path / "lake"
    assert materialize(small_world, lake, instance=instance, echo=lambda _: None).ok
    ident = pl.read_delta(str(lake / "silver" / "identity"))
    biggest = ident.group_by("person_id").len().sort("len", "person_id").row(-1)
    members = ident.filter(pl.col("person_id") == biggest[0]).sort("node_id")["node_id"]
    assert main(["explain", biggest[0], "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert f"person {biggest[0]}: {biggest[1]} record(s)" in out
    assert all(m in out for m in members)
    pair = members[0].removeprefix("customer:"), members[1]
    assert main(["explain", *pair, "--lake", str(lake)]) == 0
    assert f"SAME PERSON: {biggest[0]}" in capsys.readouterr().out
    assert main(["explain", "salesforce:nope", members[0], "--lake", str(lake)]) == 2
    assert "no such customer record" in capsys.readouterr().err


def test_the_cluster_size_alarm_fails_the_check(small_world: Path, tmp_path: Path,
                                               instance: dg.DagsterInstance, monkeypatch):
    lake = tmp_path / "lake"
    assert materialize(small_world, lake, instance=instance, echo=lambda _: None).ok
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    repo_config = Path(__file__).resolve().parents[2] / "config"
    for f in repo_config.iterdir():
        if f.is_file():
            (config_dir / f.name).write_bytes(f.read_bytes())
    text = (config_dir / "c360.yaml").read_text().replace("cluster_size_alarm: 25",
                                                         "cluster_size_alarm: 2")
    (config_dir / "c360.yaml").write_text(text)
    monkeypatch.setenv("C360_CONFIG_DIR", str(config_dir))  # read once per folder
    summary = materialize(small_world, lake, instance=instance, select="silver/identity",
                          echo=lambda _: None)
    assert summary.tables["silver/identity"].checks == {CLUSTER_SIZE_CHECK: False}
    # What to act on: how many persons are over, the largest ones by id, how to look.
    key = dg.AssetCheckKey(dg.AssetKey(["silver", "identity"]), CLUSTER_SIZE_CHECK)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    metadata = record.event.dagster_event.event_specific_data.metadata
    identity = pl.read_delta(str(lake / "silver" / "identity"))
    sizes = identity.group_by("person_id").len()
    assert metadata["persons_over_alarm"].value == sizes.filter(pl.col("len") > 2).height > 0
    largest = sizes.sort(["len", "person_id"], descending=[True, False]).row(0)
    assert metadata["largest_persons"].value.startswith(f"* `{largest[0]}`: {largest[1]} records")
    assert "c360 explain" in metadata["reproduce"].value
