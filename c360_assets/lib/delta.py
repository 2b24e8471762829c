"""Delta Lake read/write helpers (delta-rs via `deltalake`, frames via polars).

Rules baked in here so no caller can forget them:
* strings are written in Arrow's classic `large_string` form
  (`CompatLevel.oldest()`), or DuckDB cannot filter them through
  `to_pyarrow_dataset()`;
* every table has Change Data Feed on (silver reads bronze changes through it);
* a partition write replaces exactly the partitions it owns (predicate
  overwrite), so re-running is idempotent and other partitions are untouched;
* a commit that loses a race with another writer is retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from pathlib import Path

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

log = logging.getLogger(__name__)

TABLE_CONFIGURATION = {"delta.enableChangeDataFeed": "true"}
COMMIT_RETRIES = 5


def to_arrow(frame: pl.DataFrame):
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def table_exists(path: str | Path) -> bool:
    return DeltaTable.is_deltatable(str(path))


def _date_literal(value: dt.date) -> str:
    return f"'{value.isoformat()}'"


def date_range_predicate(column: str, first: dt.date, last: dt.date) -> str:
    if first == last:
        return f"{column} = {_date_literal(first)}"
    return f"{column} >= {_date_literal(first)} AND {column} <= {_date_literal(last)}"


def replace_date_partitions(
    path: str | Path,
    frame: pl.DataFrame,
    *,
    partition_col: str,
    first: dt.date,
    last: dt.date,
) -> int:
    """Replace the rows of partitions `first..last` (inclusive) with `frame`.

    `frame` may be empty: the partitions are then emptied. Rows of `frame` outside
    the range are a programming error. Returns the new table version.
    """
    if frame.height:
        lo, hi = frame.get_column(partition_col).min(), frame.get_column(partition_col).max()
        if lo < first or hi > last:  # type: ignore[operator]
            raise ValueError(f"rows for {partition_col} {lo}..{hi} outside {first}..{last}")
    predicate = date_range_predicate(partition_col, first, last)
    data = to_arrow(frame)
    for attempt in range(1, COMMIT_RETRIES + 1):
        try:
            write_deltalake(
                str(path),
                data,
                mode="overwrite",
                predicate=predicate,
                partition_by=[partition_col],
                configuration=TABLE_CONFIGURATION,
            )
            return DeltaTable(str(path)).version()
        except CommitFailedError:
            if attempt == COMMIT_RETRIES:
                raise
            pause = 0.2 * attempt + random.random() * 0.2
            log.warning("commit conflict on %s (attempt %d), retrying in %.1fs", path, attempt, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def read_table(path: str | Path, *, version: int | None = None) -> pl.DataFrame:
    """Read a whole Delta table through its log (never by globbing parquet files)."""
    try:
        dt_ = DeltaTable(str(path), version=version)
    except TableNotFoundError:
        raise FileNotFoundError(f"no Delta table at {path}") from None
    return pl.from_arrow(dt_.to_pyarrow_table())  # type: ignore[return-value]


def table_version(path: str | Path) -> int | None:
    try:
        return DeltaTable(str(path)).version()
    except TableNotFoundError:
        return None


def row_count(path: str | Path) -> int:
    """Rows in the current version, from the log's per-file statistics (no data read)."""
    actions = pl.DataFrame(DeltaTable(str(path)).get_add_actions(flatten=True))
    return int(actions.get_column("num_records").sum()) if actions.height else 0


def _commit(path: str | Path, data, **kwargs) -> int:
    """write_deltalake with CDF on and retries on a lost commit race; returns the version."""
    for attempt in range(1, COMMIT_RETRIES + 1):
        try:
            write_deltalake(str(path), data, configuration=TABLE_CONFIGURATION, **kwargs)
            return DeltaTable(str(path)).version()
        except CommitFailedError:
            if attempt == COMMIT_RETRIES:
                raise
            pause = 0.2 * attempt + random.random() * 0.2
            log.warning("commit conflict on %s (attempt %d), retrying in %.1fs", path, attempt, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def read_partitions(path: str | Path, column: str, values: list[int]) -> pl.DataFrame:
    """Rows of the given integer partitions, read through the log."""
    table = DeltaTable(str(path))
    data = table.to_pyarrow_table(filters=[(column, "in", list(values))])
    return pl.from_arrow(data)  # type: ignore[return-value]


def replace_keyed_rows(
    path: str | Path,
    rows: pl.DataFrame,
    *,
    key: str,
    keys: pl.DataFrame | None,
    sort_by: list[str],
    bucket_col: str = "bucket",
) -> int | None:
    """Make the rows of `keys` exactly `rows`, in a table partitioned by `bucket_col`.

    `keys` holds the keys (column `key`) with their buckets (`bucket_col`); `keys=None`
    replaces the whole table. Otherwise only the buckets holding a key are
    read, the keys' old rows dropped, `rows` added, and only buckets whose content
    changed are rewritten (one predicate overwrite, one commit). Rows are sorted by
    `sort_by` inside a bucket, so content never depends on processing order. Returns
    the new version, or None when nothing changed (no commit).
    """
    rows = rows.sort(bucket_col, *sort_by)
    if keys is None or not table_exists(path):
        return _commit(path, to_arrow(rows), mode="overwrite", partition_by=[bucket_col],
                       schema_mode="overwrite")
    # A key may have old rows in a bucket `rows` no longer covers (all its rows gone).
    buckets = sorted(set(rows.get_column(bucket_col).to_list())
                     | set(keys.get_column(bucket_col).to_list()))
    if not buckets:
        return None
    old = read_partitions(path, bucket_col, buckets).select(rows.columns).cast(
        dict(rows.schema))  # type: ignore[arg-type]
    new = pl.concat([old.join(keys.select(key), on=key, how="anti"), rows]).sort(
        bucket_col, *sort_by)
    old = old.sort(bucket_col, *sort_by)
    changed = [b for b in buckets
               if not old.filter(pl.col(bucket_col) == b).equals(
                   new.filter(pl.col(bucket_col) == b))]
    if not changed:
        return None
    part = new.filter(pl.col(bucket_col).is_in(changed))
    predicate = f"{bucket_col} IN ({', '.join(str(b) for b in changed)})"
    return _commit(path, to_arrow(part), mode="overwrite", predicate=predicate,
                   partition_by=[bucket_col])

