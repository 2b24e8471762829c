"""Build JSON objects from polars columns, vectorised."""

from __future__ import annotations

import polars as pl


def json_object(fields: dict[str, pl.Expr]) -> pl.Expr:
    """A JSON object per row holding only the non-null fields (null when none is set).

    Each `"key":value` fragment is cut from polars' own JSON encoding of a one-field
    struct, so escaping is polars' (correct for quotes, backslashes, control characters).
    """
    if not fields:
        return pl.lit(None, pl.String)
    fragments = [
        pl.when(expr.is_not_null()).then(
            pl.struct(expr.alias(key)).struct.json_encode()
            .str.strip_prefix("{").str.strip_suffix("}"))
        for key, expr in fields.items()
    ]
    body = pl.concat_str(fragments, separator=",", ignore_nulls=True)
    return pl.when(pl.any_horizontal([e.is_not_null() for e in fields.values()])).then(
        pl.concat_str([pl.lit("{"), body, pl.lit("}")]))
