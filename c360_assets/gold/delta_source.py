"""The dbt-duckdb plugin that reads silver's Delta tables for gold (`plugin: delta`).

dbt-duckdb's own `delta` plugin hands DuckDB `DeltaTable.to_pyarrow_dataset()`: every
scan goes through pyarrow's scanner, which reads each projected column of every row
before DuckDB filters. On the 1M-person lake that made `company_assets` take 13 s for
three filtered scans that DuckDB's own Parquet reader does in well under a second
(bench/RESULTS.md, issue 16 fourth stop).

This plugin reads the same snapshot, the files the Delta log lists (never a glob), with
DuckDB's Parquet reader: filters and projections are pushed into the reader, columns are
read only for the rows that survive, and the work is spread over DuckDB's threads.
Partition values come from the `column=value` folders every c360 writer uses (delta-rs
and `lib/delta.py`), typed as the Delta schema says; files written before a column was
added read it as NULL. Where that reading could differ from the table's (deletion
vectors, column mapping, a partition column that is not an integer, a file outside its
partition's folder, a column no file holds yet, a table on object storage, an empty
table), it falls back to dbt-duckdb's pyarrow dataset, so the result is always the
table's.

Profile (`dbt_project/profiles.yml`): `module: c360_assets.gold.delta_source`,
`alias: delta`; the sources keep `meta: {plugin: delta, delta_table_path: ...}` and may
set `as_of_version`, as with dbt-duckdb's plugin.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from deltalake import DeltaTable

from c360_assets.lib.sql import identifier, literal

# Delta primitive types a partition column may have for the fast path, as DuckDB types.
PARTITION_TYPES = {"byte": "TINYINT", "short": "SMALLINT", "integer": "INTEGER",
                   "long": "BIGINT"}


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._conn = None

    def configure_connection(self, conn: Any) -> None:
        # dbt-duckdb keeps this connection open for the whole invocation (`keep_open`):
        # relations made from it stay valid for every model.
        self._conn = conn

    def load(self, source_config: Any) -> Any:
        if "delta_table_path" not in source_config:
            raise Exception("'delta_table_path' is a required argument for the delta table!")
        options = source_config.get("storage_options", None)
        table = DeltaTable(source_config["delta_table_path"], storage_options=options)
        as_of_version = source_config.get("as_of_version", None)
        if as_of_version is not None:  # version 0 too (dbt-duckdb's plugin skips it)
            table.load_as_version(as_of_version)
        relation = self._parquet_relation(table) if self._conn is not None else None
        return relation if relation is not None else table.to_pyarrow_dataset()

    def default_materialization(self) -> str:
        return "view"

    def _parquet_relation(self, table: DeltaTable) -> Any:
        """The snapshot as a DuckDB relation over its Parquet files, or None where the
        files alone might not read as the table (see the module docstring)."""
        protocol = table.protocol()
        features = set(protocol.reader_features or ()) | set(protocol.writer_features or ())
        metadata = table.metadata()
        if ({"deletionVectors", "columnMapping"} & features
                or metadata.configuration.get("delta.columnMapping.mode", "none") != "none"):
            return None
        uris = table.file_uris()
        if not uris or any("://" in uri for uri in uris):  # local files only
            return None
        fields = {f.name: f.type for f in table.schema().fields}
        hive = {}
        for column in metadata.partition_columns:
            kind = getattr(fields[column], "type", None)
            if kind not in PARTITION_TYPES or any(f"/{column}=" not in u for u in uris):
                return None
            hive[column] = PARTITION_TYPES[kind]
        files = ", ".join(literal(u) for u in uris)
        types = ", ".join(f"{literal(c)}: {literal(t)}" for c, t in hive.items())
        relation = self._conn.sql(
            f"SELECT * FROM read_parquet([{files}], union_by_name = true"
            + (f", hive_partitioning = true, hive_types = {{{types}}})" if hive
               else ", hive_partitioning = false)"))
        if not set(fields) <= set(relation.columns):  # a column no file holds yet
            return None
        return relation.project(", ".join(identifier(name) for name in fields))
