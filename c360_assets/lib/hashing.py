"""Stable hashes: SHA-256 node ids and partition buckets (DuckDB, vectorised)."""

from __future__ import annotations

import duckdb
import polars as pl

BUCKETS = 16  # partitions of every silver table (by a hash of the record / node id)


def _query(values: pl.Series, expr: str) -> pl.Series:
    frame = pl.DataFrame({"v": values.cast(pl.String)})  # noqa: F841 (read by DuckDB)
    con = duckdb.connect()
    try:
        return con.sql(f"SELECT {expr} AS h FROM frame").pl().get_column("h")
    finally:
        con.close()


def sha256(values: pl.Series) -> pl.Series:
    """Hex SHA-256 of each string (nulls stay null)."""
    return _query(values, "sha256(v)").alias(values.name)


def bucket_of(ids: pl.Series, buckets: int = BUCKETS) -> pl.Series:
    """Stable bucket of each id: the first 32 bits of its SHA-256, modulo `buckets`."""
    return _query(ids, f"(('0x' || left(sha256(v), 8))::UBIGINT % {buckets})::INTEGER"
                  ).alias("bucket")
