"""The floor for bronze ingestion: read every landed file with polars, nothing else.

No typing, validation, dedup or Delta write: what any ingestion of these files must pay.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def main(root: Path) -> None:
    rows = 0
    for path in sorted(root.rglob("*")):
        if path.suffix == ".csv":
            rows += pl.read_csv(path, infer_schema=False).height
        elif path.suffix == ".jsonl":
            rows += pl.read_ndjson(path, infer_schema_length=None).height
        elif path.suffix == ".parquet" and "_truth" not in path.parts:
            rows += pl.read_parquet(path).height
    print(f"read {rows:,} landed rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
