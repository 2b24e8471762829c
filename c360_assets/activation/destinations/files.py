"""Files: each batch one file of operations (`op`, `key_field`, `key`, `person_id`,
`merged_into` and the fields; a field not sent in an update is null) in Parquet, CSV or
NDJSON, under `<folder>/<sync>/`, named `<UTC time>-<n>.<ext>` so they sort in the order
they were written. Written to a temporary name and renamed: a file is there whole or
not at all."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import Field

from c360_assets.activation.destinations.base import OK, Destination, DestinationConfig, Outcome

EXTENSIONS = {"parquet": "parquet", "csv": "csv", "ndjson": "ndjson"}


class Config(DestinationConfig):
    type: Literal["file"]
    format: Literal["parquet", "csv", "ndjson"] = "parquet"
    # A folder: absolute, or relative to the lake root; `path_env` overrides it.
    path: str = "exports"
    path_env: str | None = None
    batch_rows: int = Field(100_000, ge=1)


class FileDestination(Destination):
    def __init__(self, spec, lake: Path):  # noqa: ANN001
        super().__init__(spec)
        d = spec.destination
        folder = Path(os.environ.get(d.path_env, d.path) if d.path_env else d.path)
        self.folder = (folder if folder.is_absolute() else Path(lake) / folder) / spec.name
        self.batch_rows = d.batch_rows
        self.format = d.format
        self.n = 0

    def write(self, op: str, rows: pl.DataFrame, fields: list[str], *,
              update_only: bool = False) -> list[Outcome]:
        self.folder.mkdir(parents=True, exist_ok=True)
        frame = rows.select(
            pl.lit(op).alias("op"), pl.col("_key_field").alias("key_field"),
            pl.col("_key").alias("key"), pl.col("_person").alias("person_id"),
            pl.col("_merged_into").alias("merged_into"),
            *[pl.when(pl.col(f"s:{f}")).then(pl.col(f)).alias(f) for f in fields])
        self.n += 1
        name = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}-{self.n:06d}.{EXTENSIONS[self.format]}"
        tmp = self.folder / f".{name}.tmp"
        if self.format == "parquet":
            frame.write_parquet(tmp)
        elif self.format == "csv":
            frame.with_columns(pl.col(c).cast(pl.String) for c, t in frame.schema.items()
                               if t.is_nested()).write_csv(tmp)
        else:
            frame.write_ndjson(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.folder / name)
        return [Outcome(OK, k) for k in rows["_key"].to_list()]

    def describe(self) -> str:
        return f"{self.format} files in {self.folder}"


def connect(spec, lake: Path) -> FileDestination:  # noqa: ANN001
    """The destination of `spec` (the engine's entry point to this module)."""
    return FileDestination(spec, lake)
