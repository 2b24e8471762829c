"""Property: any instant, in any spelling the contract allows, types to that instant."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from c360_assets.bronze.landing import parse_timestamp, parse_timestamp_column

UTC = dt.UTC
instants = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2040, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC))
offsets = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: dt.timedelta(minutes=15 * q))


@st.composite
def spelled(draw) -> tuple[str, dt.datetime]:
    """(text, the instant it denotes, truncated to what the text can carry)."""
    instant = draw(instants)
    digits = draw(st.sampled_from([0, 1, 3, 6]))
    instant = instant.replace(microsecond=instant.microsecond // 10 ** (6 - digits) * 10 ** (6 - digits)
                              if digits else 0)
    offset = draw(offsets)
    style = draw(st.sampled_from(["Z", "+0000", "+00:00", "naive", "offset", "offset_compact"]))
    sep = draw(st.sampled_from(["T", " "]))
    local = instant + (offset if style.startswith("offset") else dt.timedelta())
    text = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    if style in ("Z", "+0000", "+00:00"):
        text += style
    elif style.startswith("offset"):
        sign = "-" if offset < dt.timedelta() else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        text += f"{sign}{minutes // 60:02d}{'' if style == 'offset_compact' else ':'}{minutes % 60:02d}"
    pad = draw(st.sampled_from(["", " ", "  "]))
    return pad + text + pad, instant


@settings(max_examples=300, deadline=None)
@given(st.lists(spelled(), min_size=1, max_size=8))
def test_column_and_value_parsing_give_the_denoted_instant(cases) -> None:
    texts = pl.Series("t", [t for t, _ in cases], dtype=pl.String)
    expected = [i for _, i in cases]
    assert parse_timestamp_column(texts).to_list() == expected
    assert pl.select(parse_timestamp(pl.lit(texts))).to_series().to_list() == expected
