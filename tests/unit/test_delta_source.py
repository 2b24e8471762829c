"""Gold's reader of silver Delta tables (`gold/delta_source.py`): DuckDB's Parquet reader
over the files the log lists reads exactly what the table holds (partition values,
columns added later, deletes, older versions), and anything it might misread goes
through the pyarrow dataset instead."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, Field, write_deltalake
from deltalake.schema import PrimitiveType

from c360_assets.gold.delta_source import Plugin
from c360_assets.lib import delta


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    with duckdb.connect() as c:
        c.execute("SET TimeZone = 'UTC'")
        yield c


def _plugin(con: duckdb.DuckDBPyConnection) -> Plugin:
    plugin = Plugin(name="delta", plugin_config={})
    plugin.configure_connection(con)
    return plugin


def _rows(con: duckdb.DuckDBPyConnection, data: object) -> tuple[list, list]:
    """(column name and type pairs, sorted rows) of what DuckDB reads from `data`."""
    con.register("source_under_test", data)
    try:
        described = [(r[0], r[1]) for r in con.execute("DESCRIBE source_under_test").fetchall()]
        rows = sorted(con.execute("SELECT * FROM source_under_test").fetchall(), key=repr)
    finally:
        con.unregister("source_under_test")
    return described, rows


def _same_as_the_table(con: duckdb.DuckDBPyConnection, path: Path, **config: object
                       ) -> object:
    loaded = _plugin(con).load({"delta_table_path": str(path), **config})
    table = DeltaTable(str(path))
    if config.get("as_of_version") is not None:
        table.load_as_version(config["as_of_version"])
    assert _rows(con, loaded) == _rows(con, table.to_pyarrow_dataset())
    return loaded


def _frame(ids: list[int], bucket: list[int], extra: dict | None = None) -> pl.DataFrame:
    return pl.DataFrame({
        "node_id": [f"n{i}" for i in ids],
        "value": [f"v{i}" if i % 3 else None for i in ids],
        "at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in ids],
        "bucket": pl.Series(bucket, dtype=pl.Int32),
        **(extra or {})})


def test_a_bucketed_table_reads_through_duckdb_with_its_partition_values(
        con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "edges"
    delta.write_rows(path, _frame(list(range(40)), [i % 4 for i in range(40)]), append=False)
    delta.write_rows(path, _frame(list(range(40, 50)), [i % 4 for i in range(40, 50)]),
                     append=True)
    loaded = _same_as_the_table(con, path)
    assert isinstance(loaded, duckdb.DuckDBPyRelation)
    # The columns in the table's own order, the partition column typed as the log says.
    assert loaded.columns == ["node_id", "value", "at", "bucket"]
    assert dict(zip(loaded.columns, map(str, loaded.types), strict=True))["bucket"] == "INTEGER"


def test_deletes_older_versions_and_columns_added_later_read_as_the_table(
        con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "nodes"
    delta.commit(path, delta.to_arrow(_frame(list(range(20)), [i % 2 for i in range(20)])),
                 mode="append", partition_by=["bucket"])
    later = _frame([20, 21], [0, 1], {"kind": ["a", None]})
    delta.commit(path, delta.to_arrow(later), mode="append", schema_mode="merge")
    DeltaTable(str(path)).delete("node_id = 'n4'")
    loaded = _same_as_the_table(con, path)
    assert isinstance(loaded, duckdb.DuckDBPyRelation)
    _, rows = _rows(con, loaded)
    assert len(rows) == 21 and not any(r[0] == "n4" for r in rows)
    assert sum(r[-1] == "a" for r in rows) == 1  # older files: NULL
    old = _same_as_the_table(con, path, as_of_version=0)
    assert len(_rows(con, old)[1]) == 20


def test_what_the_files_alone_might_misread_goes_through_the_dataset(
        con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    # A string partition column (values could be escaped in folder names).
    by_text = tmp_path / "by_text"
    write_deltalake(str(by_text), pa.table({"id": [1, 2], "part": ["a b", "c/d"]}),
                    partition_by=["part"])
    assert not isinstance(_same_as_the_table(con, by_text), duckdb.DuckDBPyRelation)
    # An empty table.
    empty = tmp_path / "empty"
    delta.commit(empty, delta.to_arrow(_frame([], [])), mode="append", partition_by=["bucket"])
    assert not isinstance(_same_as_the_table(con, empty), duckdb.DuckDBPyRelation)
    # A column the log has and no file holds yet.
    added = tmp_path / "added"
    delta.commit(added, delta.to_arrow(_frame([1, 2], [0, 1])), mode="append",
                 partition_by=["bucket"])
    DeltaTable(str(added)).alter.add_columns(Field("kind", PrimitiveType("string")))
    assert not isinstance(_same_as_the_table(con, added), duckdb.DuckDBPyRelation)
    # Without a connection (never configured), the dataset as before.
    plugin = Plugin(name="delta", plugin_config={})
    assert not isinstance(plugin.load({"delta_table_path": str(by_text)}),
                          duckdb.DuckDBPyRelation)
