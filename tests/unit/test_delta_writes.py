"""`delta.write_rows`, the bulk writer, on an unpartitioned table (the identity working
tables): whole overwrites through polars' Parquet writer, a schema change through
delta-rs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from c360_assets.lib import delta


def frame(n: int, offset: int = 0) -> pl.DataFrame:
    return pl.DataFrame({"node_id": [f"customer:x:{i + offset:05d}" for i in range(n)],
                         "score": [float(i) for i in range(n)],
                         "tags": [[f"t{i % 3}"] for i in range(n)]})


def test_overwrites_an_unpartitioned_table_in_files_of_bounded_size(tmp_path: Path,
                                                                     monkeypatch):
    monkeypatch.setattr(delta, "ROWS_PER_FILE", 40)
    path = tmp_path / "working"
    first = delta.write_rows(path, frame(100), append=False, partition_col=None)
    second = delta.write_rows(path, frame(90, offset=7), append=False, partition_col=None)
    table = DeltaTable(str(path))
    assert (first, second) == (0, 1) and table.metadata().partition_columns == []
    assert len(table.file_uris()) == 3  # 90 rows, at most 40 a file
    assert delta.read_table(path).sort("node_id").equals(frame(90, offset=7))
    assert delta.read_table(path, version=0).sort("node_id").equals(frame(100))
    assert table.history(1)[0]["operation"] == "WRITE"


def test_a_changed_schema_replaces_the_schema(tmp_path: Path):
    path = tmp_path / "working"
    delta.write_rows(path, frame(10), append=False, partition_col=None)
    wider = frame(5).with_columns(pl.lit("x").alias("added"))
    delta.write_rows(path, wider, append=False, partition_col=None)
    assert delta.read_table(path).sort("node_id").equals(wider)
    # And back to the narrower one, then partitioned: each replaces the last.
    delta.write_rows(path, frame(4), append=False, partition_col=None)
    assert delta.read_table(path).sort("node_id").equals(frame(4))
    bucketed = frame(6).with_columns(pl.Series("bucket", [0, 1] * 3, dtype=pl.Int32))
    delta.write_rows(path, bucketed, append=False, partition_col="bucket")
    assert DeltaTable(str(path)).metadata().partition_columns == ["bucket"]
    assert (delta.read_table(path).sort("node_id").select(bucketed.columns)
            .equals(bucketed))


@pytest.mark.parametrize("n", [0, 1])
def test_an_empty_or_one_row_overwrite(tmp_path: Path, n: int):
    path = tmp_path / "working"
    delta.write_rows(path, frame(3), append=False, partition_col=None)
    delta.write_rows(path, frame(n), append=False, partition_col=None)
    assert delta.read_table(path).equals(frame(n))


def test_unsigned_columns_are_stored_as_the_log_declares_them(tmp_path: Path):
    """Delta has no unsigned types: the files hold the signed type the log declares, so
    readers that check file types against the log (polars) read them."""
    path = tmp_path / "working"
    counts = pl.DataFrame({"value": ["a", "b"], "records": pl.Series([2, 3], dtype=pl.UInt32)})
    delta.write_rows(path, counts, append=False, partition_col=None)
    delta.write_rows(path, counts, append=False, partition_col=None)
    got = delta.read_table(path)
    assert got.schema["records"] == pl.Int32 and got["records"].to_list() == [2, 3]
