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
import json
import logging
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction, create_table_with_add_actions

log = logging.getLogger(__name__)

TABLE_CONFIGURATION = {"delta.enableChangeDataFeed": "true"}
COMMIT_RETRIES = 5


def to_arrow(frame: pl.DataFrame):
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def table_exists(path: str | Path) -> bool:
    try:
        return DeltaTable.is_deltatable(str(path))
    except OSError:  # not a folder (a file in its place): no table there
        return False


def _date_literal(value: dt.date) -> str:
    return f"'{value.isoformat()}'"


def date_range_predicate(column: str, first: dt.date, last: dt.date) -> str:
    if first == last:
        return f"{column} = {_date_literal(first)}"
    return f"{column} >= {_date_literal(first)} AND {column} <= {_date_literal(last)}"


def day_predicate(column: str, days: list[dt.date]) -> str:
    """`column` in `days`: a range when they are contiguous, else a list."""
    days = sorted(set(days))
    if days[-1] - days[0] == dt.timedelta(days=len(days) - 1):
        return date_range_predicate(column, days[0], days[-1])
    return f"{column} IN ({', '.join(_date_literal(d) for d in days)})"


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
    return replace_day_partitions(path, frame, partition_col=partition_col,
                                  days=[first + dt.timedelta(days=i)
                                        for i in range((last - first).days + 1)])


def replace_day_partitions(path: str | Path, frame: pl.DataFrame, *, partition_col: str,
                           days: list[dt.date]) -> int:
    """Replace the rows of the partitions `days` with `frame`, in one commit (see
    `replace_date_partitions`)."""
    if frame.height:
        outside = frame.filter(~pl.col(partition_col).is_in(days)).get_column(partition_col)
        if outside.len():
            raise ValueError(f"rows for {partition_col} {outside.min()}..{outside.max()} "
                             f"outside the days replaced")
    return commit(path, to_arrow(frame), mode="overwrite",
                  predicate=day_predicate(partition_col, days), partition_by=[partition_col])


def read_table(path: str | Path, *, version: int | None = None) -> pl.DataFrame:
    """Read a whole Delta table through its log (never by globbing parquet files).

    Through polars' own Delta reader (the files the log names, partition values added):
    the same frame as `DeltaTable.to_pyarrow_table()`, 2-4x faster here (bench/RESULTS.md,
    issue 16 fourth stop)."""
    try:
        return pl.read_delta(str(path), version=version)
    except (TableNotFoundError, FileNotFoundError):
        raise FileNotFoundError(f"no Delta table at {path}") from None


def table_version(path: str | Path) -> int | None:
    try:
        return DeltaTable(str(path)).version()
    except TableNotFoundError:
        return None


# Commits that rewrite files without changing what the table holds (maintenance).
MAINTENANCE_OPERATIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END",
                                    "SET TBLPROPERTIES"})
# Maintenance commits carry the data version they found (`maintenance_commit`): the log
# entries before them may be cleaned up, and the marker must survive that.
DATA_VERSION_KEY = "c360.data_version"


def data_version(path: str | Path) -> int | None:
    """The newest version whose commit changed the table's data (compaction and vacuum
    commits do not count): a change marker that maintenance leaves alone."""
    try:
        table = DeltaTable(str(path))
    except TableNotFoundError:
        return None
    current = table.version()
    for entry in table.history(limit=50):  # newest first
        if entry.get("operation") not in MAINTENANCE_OPERATIONS:
            return int(entry.get("version", current))
        if DATA_VERSION_KEY in entry:
            return int(entry[DATA_VERSION_KEY])
    return current


def maintenance_commit(path: str | Path) -> CommitProperties:
    """Commit properties for a maintenance operation on `path`: its data version."""
    return CommitProperties(custom_metadata={DATA_VERSION_KEY: str(data_version(path))})


def data_versions_after(path: str | Path, version: int, *,
                        every_version_listed: bool = False) -> list[int] | None:
    """The versions after `version` whose commits changed the table's data, oldest first.

    Maintenance commits in between do not count, nor need their log entries still exist
    (a log cleanup removes them): reading changes from the first of these versions is
    reading every change since `version`. With `every_version_listed`, a reader that
    needs each version's number gets None when the log no longer lists every version
    since `version`."""
    table = DeltaTable(str(path))
    current = table.version()
    if current <= version:
        return []
    entries = table.history(limit=current - version)
    if every_version_listed and len({int(e["version"]) for e in entries
                                     if int(e["version"]) > version}) < current - version:
        return None
    return sorted(int(e["version"]) for e in entries
                  if int(e["version"]) > version
                  and e.get("operation") not in MAINTENANCE_OPERATIONS)


def changed_since(path: str | Path, version: int | None) -> bool:
    """Whether the table's data changed after `version` (None: the table did not exist
    then): a commit other than maintenance, or the table gone or rewound."""
    if version is None:
        return table_exists(path)
    now = data_version(path)
    return now is None or now != version


def file_sizes(path: str | Path) -> dict[str, int]:
    """The current version's data files (paths as the log names them) and their sizes."""
    actions = DeltaTable(str(path)).get_add_actions(flatten=True)
    return dict(zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(),
                    strict=True))


def row_count(path: str | Path) -> int:
    """Rows in the current version, from the log's per-file statistics (no data read)."""
    actions = pl.DataFrame(DeltaTable(str(path)).get_add_actions(flatten=True))
    return int(actions.get_column("num_records").sum()) if actions.height else 0


def commit(path: str | Path, data, **kwargs) -> int:
    """Write `data` (Arrow) to the Delta table at `path` the way every c360 table is
    written: `write_deltalake` with the Change Data Feed on (`TABLE_CONFIGURATION`) and
    retries when another writer wins the commit race. `kwargs` go to `write_deltalake`
    (mode, partition_by, predicate, schema_mode, commit_properties). Returns the new
    version."""
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


def file_action(rel: str, size: int, rows: int,
                partition_values: dict[str, str | None] | None = None) -> AddAction:
    """The add action of a Parquet file c360 wrote itself into a table (`rel`: its path
    in the table), its row count as its statistics."""
    return AddAction(path=rel, size=size, partition_values=partition_values or {},
                     modification_time=int(time.time() * 1000), data_change=True,
                     stats=json.dumps({"numRecords": rows}))


def takes_files_of(table: DeltaTable, schema, partition_by: list[str] | None  # noqa: ANN001
                   ) -> bool:
    """Whether files written with the Arrow `schema`, partitioned by `partition_by`, can
    be added to `table` as they are (else the schema or the layout must change: delta-rs'
    writer replaces them)."""
    return (table.schema() == DeltaSchema.from_arrow(schema)
            and table.metadata().partition_columns == (partition_by or []))


def _write_file(table: Path, column: str | None, value: object, frame: pl.DataFrame,
                stamp: str) -> AddAction:
    """Write `frame` as one Parquet file of partition `column=value` (`column` None: an
    unpartitioned table, `value` numbers the file); its add action."""
    rel = (f"{column}={value}/part-{stamp}.snappy.parquet" if column is not None
           else f"part-{stamp}-{value}.snappy.parquet")
    target = table / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(target, compression="snappy", statistics=False)
    return file_action(rel, target.stat().st_size, frame.height,
                       {column: str(value)} if column is not None else None)


UNSIGNED_AS_SIGNED = {pl.UInt8: pl.Int8, pl.UInt16: pl.Int16, pl.UInt32: pl.Int32,
                      pl.UInt64: pl.Int64}
# An unpartitioned table is written as files of at most this many rows, two at a time.
ROWS_PER_FILE = 1_000_000


def _write_parts(path: Path, rows: pl.DataFrame, partition_col: str | None
                 ) -> list[AddAction]:
    """One Parquet file per partition value of `rows`, or (no partition column) per
    `ROWS_PER_FILE` rows (polars, two threads)."""
    stamp = uuid.uuid4().hex
    if partition_col is None:
        n = max(1, -(-rows.height // ROWS_PER_FILE))
        size = -(-rows.height // n) if rows.height else 0
        parts = {(i,): rows.slice(i * size, size) for i in range(n)}
    else:
        parts = rows.partition_by(partition_col, as_dict=True, include_key=False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda item: _write_file(path, partition_col, item[0][0], item[1],
                                                      stamp), parts.items()))


def write_rows(path: str | Path, rows: pl.DataFrame, *, append: bool,
               partition_col: str | None = "bucket") -> int:
    """Write `rows` partitioned by `partition_col` (None: not partitioned) in one commit:
    overwrite the whole table (append=False) or append.

    Bulk path: polars writes one Parquet file per partition (~2x faster than delta-rs'
    writer here) and the files are committed as Delta add actions carrying their row
    counts. Returns the new version. Overwriting a table whose schema or partitioning
    differs goes through delta-rs (it replaces the schema too).
    """
    path = Path(path)
    # Delta has no unsigned integers: the signed type of the same width, as delta-rs'
    # own writer stores them (the files must hold the types the log declares).
    rows = rows.cast({c: UNSIGNED_AS_SIGNED[t] for c, t in rows.schema.items()
                      if t in UNSIGNED_AS_SIGNED})  # type: ignore[arg-type]
    schema = to_arrow(rows.head(0)).schema
    partition_by = [partition_col] if partition_col is not None else None
    if (table_exists(path) and not append
            and not takes_files_of(DeltaTable(str(path)), schema, partition_by)):
        return commit(path, to_arrow(rows), mode="overwrite", schema_mode="overwrite",
                      partition_by=partition_by)
    actions = _write_parts(path, rows, partition_col)
    if not table_exists(path):
        create_table_with_add_actions(str(path), DeltaSchema.from_arrow(schema), actions,
                                      mode="overwrite", partition_by=partition_by,
                                      configuration=TABLE_CONFIGURATION)
    else:
        DeltaTable(str(path)).create_write_transaction(
            actions, mode="append" if append else "overwrite", schema=schema,
            partition_by=partition_by)
    return DeltaTable(str(path)).version()


@dataclass
class KeyedWrite:
    """What `replace_keyed_rows` did: the new version (None: no commit), the rows it
    added and removed (a changed row counts as one of each), and every version it
    committed (a bucket rewrite plus an append are two)."""

    version: int | None
    added: pl.DataFrame
    removed: pl.DataFrame
    versions: tuple[int, ...] = ()


def replace_keyed_rows(
    path: str | Path,
    rows: pl.DataFrame,
    *,
    key: str,
    keys: pl.Series,
    bucket_col: str = "bucket",
) -> KeyedWrite:
    """Make the rows of `keys` (values of column `key`) exactly `rows`, in a table
    partitioned by `bucket_col`. Nothing differing means no commit: re-running with
    nothing new leaves the table as it was.

    The keys' old rows are found by key (so their buckets are the ones they hold) and
    compared with `rows` as sets. Rows only added (the common case: history grew) are
    appended; where old rows must go (history rewritten by a backfill, an edge closed),
    the buckets holding them are rewritten without the keys' old rows and with their new
    rows. Rewrites are bucket-wide: without deletion vectors (delta-rs cannot write them)
    a row is removed by rewriting its file.
    """
    path = Path(path)
    if not table_exists(path):
        version = write_rows(path, rows, append=False, partition_col=bucket_col)
        return KeyedWrite(version, rows, rows.head(0), (version,))
    cols = rows.columns
    old = (pl.scan_delta(str(path)).filter(pl.col(key).is_in(keys.implode()))
           .collect().select(cols).cast(dict(rows.schema)))  # type: ignore[arg-type]
    gone = old.join(rows, on=cols, how="anti", nulls_equal=True)
    added = rows.join(old, on=cols, how="anti", nulls_equal=True)
    if gone.height == 0 and added.height == 0:
        return KeyedWrite(None, added, gone)
    if gone.height == 0:
        version = write_rows(path, added, append=True, partition_col=bucket_col)
        return KeyedWrite(version, added, gone, (version,))
    rewrite = sorted(set(gone.get_column(bucket_col).to_list()))
    version = rewrite_partitions(
        path, bucket_col, rewrite, rows.schema,
        lambda b, frame: pl.concat([frame.filter(~pl.col(key).is_in(keys.implode())),
                                    rows.filter(pl.col(bucket_col) == b).drop(bucket_col)]))
    versions = [version]
    rest = added.filter(~pl.col(bucket_col).is_in(rewrite))
    if rest.height:
        version = write_rows(path, rest, append=True, partition_col=bucket_col)
        versions.append(version)
    return KeyedWrite(version, added, gone, tuple(versions))


def rewrite_partitions(path: Path, column: str, values: list[int], schema: pl.Schema,
                       transform) -> int:  # noqa: ANN001 - (value, frame) -> frame
    """Replace partitions `values` of `column` by `transform(value, old rows)`, one
    partition at a time (peak memory: one partition), in one commit."""
    table = DeltaTable(str(path))
    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    part = f"partition.{column}"
    files = {int(v): [f"{table.table_uri.rstrip('/')}/{p}" for p in g.get_column("path")]
             for (v,), g in actions.group_by(part)} if actions.height else {}
    body = {c: t for c, t in schema.items() if c != column}
    stamp = uuid.uuid4().hex

    def one(value: int) -> AddAction:
        old = (pl.read_parquet(files[value]) if files.get(value)
               else pl.DataFrame(schema=body))
        frame = transform(value, old.select(list(body)).cast(body)).select(list(body))  # type: ignore[arg-type]
        return _write_file(path, column, value, frame, stamp)

    with ThreadPoolExecutor(max_workers=2) as pool:
        new_actions = list(pool.map(one, values))
    table.create_write_transaction(
        new_actions, mode="overwrite", schema=to_arrow(pl.DataFrame(schema=schema)).schema,
        partition_by=[column], partition_filters=[(column, "in", [str(v) for v in values])])
    return DeltaTable(str(path)).version()
