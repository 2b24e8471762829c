"""Quoting for SQL c360 composes (DuckDB's dialect, which is standard SQL's here)."""

from __future__ import annotations


def literal(text: str) -> str:
    """`text` as a string literal."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """`name` as a quoted identifier."""
    return '"' + name.replace('"', '""') + '"'
