"""Small, PII-masked previews of frames for materialisation metadata."""

from __future__ import annotations

import polars as pl

# Kinds of personal data a column may hold (the values of bronze.contract.Pii).
EMAIL, PHONE, NAME, TEXT = "email", "phone", "name", "text"


def mask_expr(column: str, kind: str) -> pl.Expr:
    c = pl.col(column).cast(pl.String)
    if kind == EMAIL:
        # j***@example.com: the domain helps debugging and is rarely personal.
        return pl.when(c.str.contains("@")).then(
            c.str.slice(0, 1) + pl.lit("***@") + c.str.split("@").list.last()
        ).otherwise(pl.when(c.is_not_null()).then(pl.lit("***")))
    if kind == PHONE:
        digits = c.str.replace_all(r"\D", "")
        return pl.when(c.is_not_null()).then(pl.lit("***") + digits.str.slice(-2))
    if kind == NAME:
        return pl.when(c.is_not_null()).then(c.str.slice(0, 1) + pl.lit("***"))
    return pl.when(c.is_not_null()).then(pl.lit("***"))


def masked_preview(frame: pl.DataFrame, pii: dict[str, str], rows: int,
                   columns: list[str] | None = None) -> str:
    """Markdown table of the first `rows` rows with PII columns masked."""
    cols = columns or frame.columns
    sample = frame.head(rows).select(
        [mask_expr(c, pii[c]).alias(c) if c in pii else pl.col(c) for c in cols])
    if sample.is_empty():
        return "_no rows_"
    header = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "\n".join(
        "| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |"
        for row in sample.iter_rows())
    return header + body
