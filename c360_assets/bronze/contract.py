"""The landing contract as data: which tables each source lands, with column types.

`docs/landing-contract.md` is the public interface; its per-table section is generated
from these specs (`markdown`, checked by a test). Each source module (`salesforce.py`,
`sap.py`, ...) declares its tables with these specs, and `landing.py` reads and types
files against them.
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

    @property
    def key(self) -> str:
        return f"{self.source}_{self.name}"

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
