"""One silver build as a benchmark step: `python -m bench.silver_step LAKE [--full]`."""

from __future__ import annotations

import sys
from pathlib import Path

from c360_assets.bronze import BUILTIN, record_tables
from c360_assets.lib.registry import load_registry
from c360_assets.silver.build import build_silver


def main() -> None:
    lake = Path(sys.argv[1])
    report = build_silver(lake, load_registry(), record_tables(BUILTIN), full="--full" in sys.argv[2:],
                          progress=print)
    print(f"mode={report.mode} records_touched={report.records_touched:,} "
          f"changes={report.changes_emitted:,} edges_opened={report.edges_opened:,} "
          f"edges_closed={report.edges_closed:,} rows_added={report.rows_added} "
          f"rows_removed={report.rows_removed}")


if __name__ == "__main__":
    main()
