"""The floor for silver: scan every bronze table and sort it by record and time.

What any per-record history computation over these rows must at least pay: reading the
bronze Delta tables (through the log) and ordering each record's rows in time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from c360_assets.bronze import BUILTIN, record_tables


def main(lake: Path) -> None:
    rows = 0
    for table in record_tables(BUILTIN):
        assert table.records is not None
        frame = (pl.scan_delta(str(lake / "bronze" / table.key))
                 .sort([*table.records.key_columns, "_fivetran_synced" if table.records.tier == 2
                        else "timestamp"])
                 .collect())
        rows += frame.height
    print(f"scanned and sorted {rows:,} bronze rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
