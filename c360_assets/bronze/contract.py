"""A source as data: the tables it lands, their columns and types, and what their rows
mean as source records.

Each source module (`salesforce.py`, `sap.py`, ...; a sixth source is one more module
named in `c360.yaml` `sources:`) declares one `TableSpec` per table: bronze reads and
types landed files against its columns (`landing.py`); its `records` say how silver
reads the rows as records (id, record time, deletes, fields with their own time, value
rules, how a secondary table attaches to its main table). Generic code reads the specs
and `config/attribute_name_registry.csv`, never a table's name.
`docs/landing-contract.md` is the public interface; its per-table section is generated
from these specs (`markdown`, checked by a test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl


class ColType(StrEnum):
    """How a landed value is typed in bronze."""

    STR = "str"  # trimmed; empty -> null
    INT64 = "int64"  # exact 64-bit integer: never parsed through float
    BOOL = "bool"
    FLOAT = "float"
    TIMESTAMP = "timestamp"  # ISO-8601; offset honoured, none = UTC -> UTC datetime
    DATE = "date"  # ISO date (YYYY-MM-DD)
    SAP_DATE = "sap_date"  # YYYYMMDD, 00000000 / blank = null


POLARS_TYPE: dict[ColType, pl.DataType] = {
    ColType.STR: pl.String(),
    ColType.INT64: pl.Int64(),
    ColType.BOOL: pl.Boolean(),
    ColType.FLOAT: pl.Float64(),
    ColType.TIMESTAMP: pl.Datetime("us", "UTC"),
    ColType.DATE: pl.Date(),
    ColType.SAP_DATE: pl.Date(),
}


class Pii(StrEnum):
    """How a column is masked in previews."""

    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"
    TEXT = "text"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: ColType = ColType.STR
    required: bool = False
    pii: Pii | None = None
    aliases: tuple[str, ...] = ()  # other spellings that land (e.g. REST vs GraphQL)
    # TIMESTAMP and SAP_DATE columns hold record, change and sync times: a value outside
    # the plausible window (bronze.earliest_time .. landing day + future_tolerance_hours)
    # quarantines its row. A device clock that is known to drift opts out.
    plausible_time: bool = True

    @property
    def time_checked(self) -> bool:
        return self.plausible_time and self.type in (ColType.TIMESTAMP, ColType.SAP_DATE)


# Bronze bookkeeping columns added to every table, after the contract columns.
EXTRA_COL = "_extra"  # JSON object of landed columns the contract does not name
LANDING_DATE_COL = "_landing_date"
SOURCE_FILE_COL = "_source_file"
SOURCE_LINE_COL = "_source_line"
INGESTED_AT_COL = "_ingested_at"

BOOKKEEPING_SCHEMA: dict[str, pl.DataType] = {
    EXTRA_COL: pl.String(),
    LANDING_DATE_COL: pl.Date(),
    SOURCE_FILE_COL: pl.String(),
    SOURCE_LINE_COL: pl.Int64(),
    INGESTED_AT_COL: pl.Datetime("us", "UTC"),
}

# Frame transform applied to a file's raw columns before typing (source quirks).
Prepare = Callable[[pl.DataFrame], pl.DataFrame]
Expr = Callable[[], pl.Expr]
UTC = pl.Datetime("us", "UTC")


def _no() -> pl.Expr:
    return pl.lit(False)


def _timestamp() -> pl.Expr:
    return pl.lit("timestamp")


@dataclass(frozen=True)
class Attachment:
    """How a secondary table's rows describe records of its source's main table (SAP ADR6
    e-mails of a KNA1 customer, Shopify default addresses of a customer). The hooks get
    and return polars frames; record ids are the main table's, without the node prefix.
    """

    main: str  # the main table's name, in the same source
    # (this table's rows, the main table's rows) -> the rows as snapshots of their main
    # record: `_record_id` and whatever the records' expressions read (`_record_time`).
    attach: Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]
    # (changed rows: this table's key columns only, read(main columns)) -> record ids.
    record_ids: Callable[[pl.DataFrame, Callable[[list[str]], pl.DataFrame]], pl.Series]
    # (the main table's rows of some records, those record ids) -> a filter on this
    # table's rows selecting every row of those records.
    rows_of: Callable[[pl.DataFrame, pl.Series], pl.Expr]


@dataclass(frozen=True)
class Records:
    """What a table's rows mean as source records (silver): one snapshot of a record per
    row (Tier 2), or one event (Tier 1)."""

    entity_type: str  # customer | company | asset
    # The record's id (unique within the source and entity type); node id
    # `<entity_type>:<source>:<record id>`. Secondary tables: `_record_id` from `attach`.
    record_id: Expr
    # When the row's values were true at the source; None: the table's `record_time`.
    record_time: Expr | None = None
    deleted: Expr = _no
    tier: int = 2
    # Field -> its own change time (Tier 1 fields inside Tier 2 rows).
    field_times: dict[str, Expr] = field(default_factory=dict)
    # Field -> how its landed value reads as the attribute's value.
    value_rules: dict[str, Callable[[pl.Expr], pl.Expr]] = field(default_factory=dict)
    # Fields whose value survives a delete (a merge's master is set on the deleted row).
    keep_when_deleted: tuple[str, ...] = ()
    time_precision: Expr = _timestamp
    region: Expr | None = None  # ISO country hint for phones (raw; normalised later)
    event_id: Expr | None = None  # Tier 1 message id
    # Entity node display properties (main tables).
    display: dict[str, Expr] = field(default_factory=dict)
    created: Expr | None = None
    # Bronze columns that identify a row's record (read from the change feed).
    key_columns: tuple[str, ...] = ("id",)
    attachment: Attachment | None = None  # secondary tables only
    # A JSON-object column whose keys the registry names as `<column>.<key>` (Segment's
    # traits): only the keys sent are present.
    json_fields: str | None = None


@dataclass(frozen=True)
class TableSpec:
    source: str
    name: str
    columns: tuple[ColumnSpec, ...]
    description: str
    # Expression over the typed frame giving each row's record (event) time; its max is
    # reported as the table's newest source event time.
    record_time: Callable[[], pl.Expr]
    prepare: Prepare | None = None
    # Columns that are neither contract columns nor extras (e.g. Segment's traits JSON).
    derived: dict[str, pl.DataType] = field(default_factory=dict)
    # Row rules beyond single columns: (expression true for a bad row, reason).
    row_checks: tuple[tuple[Callable[[], pl.Expr], str], ...] = ()
    # What the rows mean as source records (None: landed and kept, not read by silver).
    records: Records | None = None

    @property
    def key(self) -> str:
        """The bronze table's name (`<source>_<table>`)."""
        return f"{self.source}_{self.name}"

    @property
    def ref(self) -> str:
        """`<source>/<table>`: how the registry and silver name the table."""
        return f"{self.source}/{self.name}"

    @property
    def main_ref(self) -> str | None:
        """The main table a secondary table attaches to (`<source>/<table>`)."""
        attachment = self.records.attachment if self.records else None
        return f"{self.source}/{attachment.main}" if attachment else None

    def node_prefix(self) -> str:
        assert self.records is not None, f"{self.ref} holds no records"
        return f"{self.records.entity_type}:{self.source}:"

    def silver_record_time(self) -> pl.Expr:
        assert self.records is not None, f"{self.ref} holds no records"
        return (self.records.record_time or self.record_time)()

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def schema(self) -> pl.Schema:
        """The bronze Delta table schema: contract columns, derived, bookkeeping."""
        cols: dict[str, pl.DataType] = {c.name: POLARS_TYPE[c.type] for c in self.columns}
        cols.update(self.derived)
        cols.update(BOOKKEEPING_SCHEMA)
        return pl.Schema(cols)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    title: str
    description: str
    tables: tuple[TableSpec, ...]
    # The key of this source's record ids in customer_profile.extensions (gold), and a
    # record id prefix that is not a source id (Segment's `anon:` records).
    profile_key: str | None = None
    profile_key_skips: str | None = None
    # A looser key of a record id for lookups by id (`c360 serve`): the same expression
    # maps stored ids and what a user types, so forms a user may hold (Salesforce's
    # 15-character id, an SAP number without its client or zeros) find the record.
    lookup_key: Callable[[pl.Expr], pl.Expr] | None = None


def col(name: str, type_: ColType = ColType.STR, *, required: bool = False,
        pii: Pii | None = None, aliases: tuple[str, ...] = (),
        plausible_time: bool = True) -> ColumnSpec:
    return ColumnSpec(name, type_, required, pii, aliases, plausible_time)


TYPE_WORDS = {ColType.STR: "", ColType.INT64: "64-bit integer", ColType.BOOL: "boolean",
              ColType.FLOAT: "number", ColType.TIMESTAMP: "ISO-8601 timestamp",
              ColType.DATE: "date", ColType.SAP_DATE: "SAP date YYYYMMDD"}


def markdown(sources: tuple[SourceSpec, ...]) -> str:
    """The landing contract's tables as Markdown: per source and table, what it is and
    its columns (required ones in bold, typed ones with their type)."""
    lines: list[str] = []
    for source in sources:
        lines += [f"### {source.name} ({source.title})", "", source.description, ""]
        for table in source.tables:
            cols = []
            for c in table.columns:
                name = f"**{c.name}**" if c.required else c.name
                notes = [TYPE_WORDS[c.type]] if TYPE_WORDS[c.type] else []
                notes += [f"also spelt `{a}`" for a in c.aliases]
                if c.type == ColType.TIMESTAMP and not c.plausible_time:
                    notes.append("a device clock: not checked for plausibility")
                cols.append(f"{name} ({'; '.join(notes)})" if notes else name)
            lines.append(f"* `{source.name}/{table.name}`: {table.description} Columns: "
                         + ", ".join(cols) + ".")
            lines += [f"  Rejected: {reason}." for _, reason in table.row_checks]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
