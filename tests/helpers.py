"""Helpers to write hand-made landing files and read lakes back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from c360_assets.bronze.contract import INGESTED_AT_COL

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def land(root: Path, source: str, table: str, day: str, name: str, content: str | bytes) -> Path:
    path = root / source / table / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def land_parquet(root: Path, source: str, table: str, day: str, name: str,
                 frame: pl.DataFrame) -> Path:
    path = root / source / table / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


def comparable(frame: pl.DataFrame, drop: tuple[str, ...] = ()) -> pl.DataFrame:
    """A frame without run-dependent columns, in a canonical row order."""
    cols = [c for c in frame.columns if c not in (INGESTED_AT_COL, *drop)]
    return frame.select(cols).sort(cols, nulls_last=True)


def assert_same_tables(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    from polars.testing import assert_frame_equal

    assert sorted(left) == sorted(right)
    for name in left:
        assert_frame_equal(left[name], right[name], check_row_order=True)
