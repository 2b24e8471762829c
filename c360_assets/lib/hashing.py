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


def bucket_of(ids: pl.Expr, buckets: int = BUCKETS) -> pl.Expr:
    """The partition bucket of an id (polars' hash, modulo `buckets`).

    Fast, but only stable within a polars version: writers never rely on recomputing an
    old row's bucket - they find a key's old rows by key and read the bucket they hold.
    """
    return (ids.hash(seed=42) % buckets).cast(pl.Int32).alias("bucket")
