"""Which records each silver commit changed: the keyed change feed gold is scoped by.

    <lake>/silver/record_changes    Delta, append-only: (table_name, version, record_node_id)

After a keyed write of `field_changes`, `relationships` or `identity` commits, its writer
appends the record node ids whose rows it added or removed, tagged with the table and the
version(s) the write committed. A reader that last read those tables at some data
versions asks `records_changed_since` which records changed after them.

Why not Delta's own change feed: silver rewrites a bucket file to change one row in it
(delta-rs writes no deletion vectors), so the table's change feed names every row of
every rewritten bucket - most of the table on a busy day. The writer knows exactly which
records it changed.

A data version of a logged table with no entry (a full rebuild, which is not logged; a
crash between a commit and its entry) means the log cannot say what changed:
`records_changed_since` answers None and the reader rebuilds in full. Entries are never
needed for versions a reader has passed, so a crash can only cost a full rebuild, never a
missed change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from c360_assets.lib import delta, layout

TABLE = "record_changes"
# The silver tables whose changes are logged, keyed by record node id.
LOGGED = ("field_changes", "relationships", "identity")
SCHEMA = {"table_name": pl.String, "version": pl.Int64, "record_node_id": pl.String}


def path(lake: Path) -> Path:
    return layout.silver_table(lake, TABLE)


def append(lake: Path, table: str, versions: Iterable[int], records: pl.Series) -> None:
    """Log that `versions` of silver `table` changed the rows of `records` (one commit).
    Nothing is written when no version was committed."""
    if table not in LOGGED:
        raise ValueError(f"{table!r} is not a logged table ({', '.join(LOGGED)})")
    committed = sorted(set(versions))
    if not committed:
        return
    ids = pl.DataFrame({"record_node_id": records.cast(pl.String).unique().sort()})
    if ids.height == 0:  # versions that named no record are still known versions
        ids = pl.DataFrame({"record_node_id": [None]}, schema={"record_node_id": pl.String})
    rows = pl.DataFrame({"table_name": [table] * len(committed), "version": committed},
                        schema={"table_name": pl.String, "version": pl.Int64}
                        ).join(ids, how="cross")
    delta.commit(path(lake), delta.to_arrow(rows.select(list(SCHEMA))), mode="append")


def data_versions(lake: Path) -> dict[str, int | None]:
    """The logged tables' data versions now (None: the table does not exist)."""
    return {name: delta.data_version(layout.silver_table(lake, name)) for name in LOGGED}


def records_changed_since(lake: Path, since: Mapping[str, int | None],
                          tables: Iterable[str] = LOGGED) -> pl.Series | None:
    """The record node ids whose rows in a logged table (of `tables`) changed after data
    version `since[table]`, or None when the log cannot tell (a table unknown then, gone
    or re-created since, a data version since then with no log entry)."""
    log_path = path(lake)
    if not delta.table_exists(log_path):
        return None
    wanted: dict[str, list[int]] = {}
    for name in tables:
        then = since.get(name)
        table = layout.silver_table(lake, name)
        now = delta.data_version(table) if delta.table_exists(table) else None
        if then is None or now is None or now < then:  # unknown then, gone or re-created
            return None
        if now == then:
            continue
        # None: a log cleanup removed entries since then; which changed data is unknown.
        versions = delta.data_versions_after(table, then, every_version_listed=True)
        if versions is None:
            return None
        wanted[name] = versions
    if not wanted:
        return pl.Series("record_node_id", [], dtype=pl.String)
    condition = pl.lit(False)
    for name, versions in wanted.items():
        condition = condition | ((pl.col("table_name") == name)
                                 & pl.col("version").is_in(versions))
    entries = pl.scan_delta(str(log_path)).filter(condition).collect()
    for name, versions in wanted.items():
        logged = set(entries.filter(pl.col("table_name") == name)
                     .get_column("version").to_list())
        if not set(versions) <= logged:
            return None
    return entries.get_column("record_node_id").drop_nulls().unique().sort()


def prune(lake: Path, read_up_to: Mapping[str, int | None],
          *others: Mapping[str, int | None]) -> None:
    """Drop the entries of versions up to `read_up_to[table]` (what gold has built from)
    and up to what every other reader (`others`: identity's position) has read: the log
    holds only what is still to be read."""
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError

    log_path = path(lake)
    up_to = dict(read_up_to)
    for reader in others:
        for name, version in reader.items():
            if name in up_to:
                up_to[name] = (None if version is None or up_to[name] is None
                               else min(up_to[name], version))  # type: ignore[type-var]
    parts = [f"(table_name = '{name}' AND version <= {int(version)})"
             for name, version in up_to.items()
             if name in LOGGED and version is not None]
    if not parts or not delta.table_exists(log_path):
        return
    # A writer that appended meanwhile wins: pruned on the next build.
    with contextlib.suppress(CommitFailedError):
        DeltaTable(str(log_path)).delete(" OR ".join(parts))
