"""Property: any landing/backfill order of a world gives the same silver tables.

A generated world's (source, day) partitions are landed in a random order, with
incremental silver and identity runs at random points in between (backfills of old
partitions after newer ones included). The result must equal in-order landing with one
full build - the same graph and the same person ids - and one more run must be a no-op.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from c360_assets.bronze import BUILTIN
from tests.conftest import WORLD_START
from tests.helpers import NOW, identity, ingest, read_silver, silver

DAYS = [WORLD_START + dt.timedelta(days=i) for i in range(6)]
PARTITIONS = [(s.name, d) for s in BUILTIN for d in DAYS]
TABLES = ("field_changes", "nodes", "relationships")
# The only wall-clock column: when bronze ingested the row.
RUN_DEPENDENT = {"field_changes": ("ingested_at",)}


def snapshot(lake: Path) -> dict[str, pl.DataFrame]:
    out = {}
    for name in TABLES:
        frame = read_silver(lake, name).drop(RUN_DEPENDENT.get(name, ()))
        out[name] = frame.sort(frame.columns, nulls_last=True)
    return out


def identity_snapshot(lake: Path) -> pl.DataFrame:
    """Who is who and why; `resolved_at` (when a row last changed) depends on the runs."""
    return read_silver(lake, "identity").drop("resolved_at").sort("node_id")


def versions(lake: Path) -> dict[str, int]:
    return {n: DeltaTable(str(lake / "silver" / n)).version() for n in TABLES}


@pytest.fixture(scope="session")
def reference(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    lake = tmp_path_factory.mktemp("in_order") / "lake"
    for source, day in PARTITIONS:
        ingest(small_world, lake, source, day)
    report = silver(lake)
    assert report.mode == "full" and report.changes_emitted > 1000
    assert identity(lake).mode == "full"
    return {**snapshot(lake), "identity": identity_snapshot(lake)}


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(order=st.permutations(range(len(PARTITIONS))),
       runs=st.sets(st.integers(0, len(PARTITIONS) - 1), max_size=6))
@example(order=list(reversed(range(len(PARTITIONS)))), runs={5, 11, 17, 23})
def test_any_landing_order_gives_the_same_silver_tables_and_a_rerun_is_a_noop(
        small_world, reference, tmp_path_factory, order, runs):
    lake = tmp_path_factory.mktemp("permuted") / "lake"
    try:
        for step, index in enumerate(order):
            source, day = PARTITIONS[index]
            # A different ingestion clock per landing: nothing may depend on it.
            ingest(small_world, lake, source, day, ingested_at=NOW + dt.timedelta(minutes=step))
            if step in runs:
                silver(lake)
                identity(lake)
        last = silver(lake)
        assert last.mode in ("incremental", "full", "no-op")
        got = snapshot(lake)
        for name in TABLES:
            assert got[name].equals(reference[name]), f"{name} differs for order {order}"
        identity(lake)
        assert identity_snapshot(lake).equals(reference["identity"]), f"identity, order {order}"
        before = versions(lake)
        again = silver(lake)
        assert again.mode == "no-op" and versions(lake) == before
        assert identity(lake).mode == "no-op"
    finally:
        shutil.rmtree(lake.parent, ignore_errors=True)


def test_backfilling_an_old_partition_rewrites_only_touched_records(small_world, tmp_path):
    lake = tmp_path / "lake"
    for source, day in PARTITIONS:
        if day != DAYS[1]:
            ingest(small_world, lake, source, day)
    silver(lake)
    total = read_silver(lake, "field_changes").select("record_node_id").n_unique()
    ingest(small_world, lake, "shopify", DAYS[1])  # the late backfill
    report = silver(lake)
    assert report.mode == "incremental"
    assert 0 < report.records_touched < total


def test_field_changes_come_grouped_by_record_and_attribute_in_time_order(small_world, tmp_path):
    """The graph builds SCD-2 edges from neighbouring rows: this is the order it needs."""
    from c360_assets.bronze import record_tables
    from c360_assets.lib.registry import load_registry
    from c360_assets.silver.build import read_bronze
    from c360_assets.silver.field_changes import field_changes

    lake = tmp_path / "lake"
    for source, day in PARTITIONS:
        ingest(small_world, lake, source, day)
    tables = record_tables(BUILTIN)
    changes = field_changes(read_bronze(lake, None, tables), load_registry(), tables)
    keyed = changes.with_row_index("i").with_columns(
        pl.struct("record_node_id", "attribute").alias("k"))
    runs = keyed.select((pl.col("k") != pl.col("k").shift(1)).fill_null(True).sum()).item()
    assert runs == keyed.select(pl.col("k").n_unique()).item()  # each group is contiguous
    backwards = keyed.filter((pl.col("k") == pl.col("k").shift(1))
                             & (pl.col("field_time") < pl.col("field_time").shift(1)))
    assert backwards.height == 0
