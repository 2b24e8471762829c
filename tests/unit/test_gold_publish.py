"""Publishing gold tables from the DuckDB file to Delta: a table that exists with the same
schema is rewritten from DuckDB's own Parquet writer; a new table or a changed schema
goes through delta-rs. Either way a Delta reader gets the DuckDB table back."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from deltalake import DeltaTable

from c360_assets.gold import publish
from c360_assets.lib import layout

TYPES = """customer_id VARCHAR, n BIGINT, k INTEGER, score DOUBLE, ok BOOLEAN,
           birth DATE, at TIMESTAMP WITH TIME ZONE, extensions MAP(VARCHAR, VARCHAR)"""


def build(lake: Path, rows: int, offset: int = 0, extra: str = "") -> None:
    """gold.duckdb with main.profile: `rows` rows of every type gold tables use."""
    lake.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(layout.gold_db(lake))) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"""CREATE OR REPLACE TABLE main.profile AS
            SELECT 'p' || lpad((i + {offset})::VARCHAR, 6, '0') AS customer_id,
                   i * 1000000007 AS n, (i % 7)::INTEGER AS k, i / 3 AS score,
                   i % 2 = 0 AS ok, DATE '2026-01-01' + (i % 400)::INTEGER AS birth,
                   TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) AS at,
                   CASE WHEN i % 5 = 0 THEN NULL
                        ELSE MAP {{'shopify': 's' || i::VARCHAR}} END AS extensions
                   {extra}
            FROM range({rows}) t(i)""")


def expected(lake: Path) -> pl.DataFrame:
    with duckdb.connect(str(layout.gold_db(lake)), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql("SELECT * EXCLUDE (extensions), extensions::VARCHAR AS extensions "
                       "FROM main.profile ORDER BY customer_id").pl()


def published(lake: Path) -> pl.DataFrame:
    """The Delta table as DuckDB reads it back (maps as text, for comparison)."""
    arrow = DeltaTable(str(layout.gold_table(lake, "profile"))).to_pyarrow_table()
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("t", arrow)
        return con.sql("SELECT * EXCLUDE (extensions), extensions::VARCHAR AS extensions "
                       "FROM t ORDER BY customer_id").pl()


def test_a_republished_table_reads_back_as_the_duckdb_table(tmp_path: Path):
    lake = tmp_path / "lake"
    build(lake, 5000)
    first = publish.publish_tables(lake, ["profile"])
    build(lake, 4000, offset=17)  # new content, same schema: DuckDB's writer
    second = publish.publish_tables(lake, ["profile"])
    assert [p.version for p in first + second] == [0, 1]
    assert published(lake).equals(expected(lake))
    folder = layout.gold_table(lake, "profile")
    table = DeltaTable(str(folder))
    assert all("/part-" in uri and uri.endswith(".parquet") for uri in table.file_uris())
    assert sum(1 for _ in folder.glob("part-*/*.parquet")) == len(table.file_uris())
    assert pl.read_delta(str(folder)).height == 4000
    assert DeltaTable(str(folder), version=0).to_pyarrow_table().num_rows == 5000


def test_a_changed_schema_is_published_through_delta_rs(tmp_path: Path):
    lake = tmp_path / "lake"
    build(lake, 300)
    publish.publish_tables(lake, ["profile"])
    build(lake, 200, extra=", 'x' AS added")
    publish.publish_tables(lake, ["profile"])
    assert published(lake).equals(expected(lake))
    assert "added" in DeltaTable(str(layout.gold_table(lake, "profile"))).schema().to_arrow().names
