"""How silver reads source tables: the generic part of each table's `records` spec.

What a table's rows mean (record id, record time, deletes, fields with their own time,
value rules, how a secondary table attaches) is declared next to the table, in its
source module (`bronze/<source>.py`, `contract.Records`); which field feeds which
attribute is data, in `config/attribute_name_registry.csv`. Entity node ids are
`<entity type>:<source>:<record id>`.
"""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import TableSpec
from c360_assets.lib.config import ConfigError
from c360_assets.lib.registry import Registry

# Canonical attributes whose edges point at entity nodes rather than value nodes.
ENTITY_TARGETS = {"company": "company", "owner": "company", "mergedInto": "customer"}


def json_field(table: TableSpec, source_field: str) -> tuple[str, str] | None:
    """(JSON column, key) when a registry field names a key of the table's JSON-object
    column (`traits.email`), else None."""
    column = table.records.json_fields if table.records else None
    if column and source_field.startswith(f"{column}."):
        return column, source_field[len(column) + 1:]
    return None


def decode_json_fields(table: TableSpec, frame: pl.DataFrame, fields: list[str]
                       ) -> pl.DataFrame:
    """One string column per registry field naming a JSON key (`traits.<key>`)."""
    found = [(f, jf) for f in fields if (jf := json_field(table, f)) is not None]
    if not found:
        return frame
    column = found[0][1][0]
    keys = sorted({key for _, (_, key) in found})
    struct = pl.Struct({k: pl.String() for k in keys})
    decoded = frame.get_column(column).str.json_decode(struct).struct.unnest()
    return frame.with_columns(decoded.get_column(k).alias(f"{column}.{k}") for k in keys)


def check_registry(registry: Registry, tables: tuple[TableSpec, ...], schemas: dict[str, pl.Schema],
                   source: str | None = None) -> None:
    """Every active registry row (of `source`, or all) names a table that holds records and
    one of its fields, and an attribute of one source comes from one table. `schemas`:
    bronze table (`TableSpec.key`) -> its schema as stored."""
    by_ref = {t.ref: t for t in tables if t.records is not None}
    table_of: dict[tuple[str, str], str] = {}
    for m in registry.mappings:
        if source is not None and m.source_system != source:
            continue
        where = f"config/attribute_name_registry.csv:{m.line}"
        table = by_ref.get(m.table_key)
        if table is None:
            raise ConfigError(f"{where}: unknown source table {m.table_key} (known: "
                              f"{', '.join(sorted(by_ref))})")
        schema = schemas[table.key]
        in_json = json_field(table, m.source_field)
        if in_json is not None:
            if in_json[0] not in schema:
                raise ConfigError(f"{where}: {m.table_key} has no {in_json[0]}")
        elif m.source_field not in schema:
            raise ConfigError(f"{where}: {m.table_key} has no field {m.source_field!r}")
        assert table.records is not None
        if m.canonical_name == "owner" and table.records.entity_type != "asset":
            raise ConfigError(f"{where}: OWNS edges come from asset tables only")
        other = table_of.setdefault((m.source_system, m.canonical_name), m.table_key)
        if other != m.table_key:
            raise ConfigError(f"{where}: {m.source_system} already maps {m.canonical_name} "
                              f"from {other}: one table per attribute and source (an edge's "
                              "history is one field's history)")
