"""Publish gold tables from the embedded DuckDB file as Delta under `<lake>/gold/`.

Consumers read `<lake>/gold/<table>` with any Delta reader and never contend with a
running dbt (the DuckDB file has one writer). Each publish is one overwrite commit per
table, streamed from DuckDB in Arrow batches; strings go out as `large_string`, times
as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from c360_assets.lib import delta

GOLD_DB = "gold.duckdb"
BATCH_ROWS = 500_000


def gold_db(lake: Path) -> Path:
    return lake / GOLD_DB


def gold_table(lake: Path, name: str) -> Path:
    return lake / "gold" / name


@dataclass(frozen=True)
class Published:
    table: str
    path: Path
    rows: int
    version: int


def publish_tables(lake: Path, tables: list[str]) -> list[Published]:
    """Copy `tables` (relations of the DuckDB file's `main` schema) to `<lake>/gold/`."""
    if not tables:
        return []
    done: list[Published] = []
    with duckdb.connect(str(gold_db(lake)), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET arrow_large_buffer_size = true")  # large_string, as every lake table
        for name in tables:
            rows = con.execute(f'SELECT count(*) FROM main."{name}"').fetchall()[0][0]
            reader = con.sql(f'SELECT * FROM main."{name}"').to_arrow_reader(BATCH_ROWS)
            path = gold_table(lake, name)
            version = delta._commit(path, reader, mode="overwrite", schema_mode="overwrite")
            done.append(Published(name, path, int(rows), version))
    return done
