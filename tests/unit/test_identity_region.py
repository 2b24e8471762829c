"""The parts of a scoped identity run's region that no scenario reaches easily."""

from __future__ import annotations

import random

import duckdb
import polars as pl
import pytest

from c360_assets.silver import identity as idn


def features(rows: list[tuple[str, str | None, str | None]]) -> pl.DataFrame:
    """node_id, first_name, postal_code; every other compared column empty."""
    frame = pl.DataFrame(rows, schema={"node_id": pl.String, "first_name": pl.String,
                                       "postal_code": pl.String}, orient="row")
    return frame.with_columns(*[pl.lit(None, pl.String).alias(c) for c in idn.COMPARED
                                if c not in frame.columns])


def test_a_record_pushing_a_block_over_the_limit_brings_in_the_whole_block():
    limit = idn.BLOCK_SIZE_LIMIT
    members = [(f"customer:x:{i:02d}", "ann", "AB1") for i in range(limit)]
    old = features([*members, ("customer:x:new", "bob", "ZZ9")])
    new = features([*members, ("customer:x:new", "ann", "AB1")])  # the 11th in the block
    got = idn.blocks_over_the_limit_changed(old, new, pl.Series(["customer:x:new"]))
    assert set(got.to_list()) == {m[0] for m in members} | {"customer:x:new"}
    # And back under the limit: the same block.
    back = idn.blocks_over_the_limit_changed(new, old, pl.Series(["customer:x:new"]))
    assert set(back.to_list()) == set(got.to_list())


def test_a_block_staying_under_the_limit_brings_in_nothing():
    members = [(f"customer:x:{i:02d}", "ann", "AB1") for i in range(3)]
    old = features([*members, ("customer:x:new", "bob", "ZZ9")])
    new = features([*members, ("customer:x:new", "ann", "AB1")])
    got = idn.blocks_over_the_limit_changed(old, new, pl.Series(["customer:x:new"]))
    assert got.len() == 0


@pytest.mark.parametrize("seed,n,names,postcodes", [(1, 160, 5, 6), (2, 160, 5, 6),
                                                    (3, 600, 40, 25), (4, 600, 40, 25)])
def test_focused_blocking_gives_exactly_the_pairs_touching_the_focus(seed, n, names,
                                                                      postcodes):
    """Names from a few values (or from more: sparse blocks), swapped between fields at
    times, some blocks over the limit: the focused pairs are the unfocused ones with an
    end in the focus."""
    rng = random.Random(seed)
    first_names = [f"n{i:02d}" for i in range(names)]
    codes = [f"P{i:02d}" for i in range(postcodes)]
    rows = []
    for i in range(n):
        first, last = rng.choice(first_names), rng.choice(first_names)
        rows.append({"node_id": f"customer:x:{i:03d}", "first_name": first,
                     "last_name": last if rng.random() < 0.8 else None,
                     "postal_code": rng.choice(codes),
                     "birth_date": rng.choice(["1980-01-01", "1990-02-02", None])})
    f = pl.DataFrame(rows).with_columns(*[pl.lit(None, pl.String).alias(c)
                                          for c in idn.COMPARED if c not in rows[0]])
    component = pl.Series("component", [i // 3 for i in range(len(rows))], dtype=pl.Int64)
    extra = pl.DataFrame({"node_l": ["customer:x:000", "customer:x:010"],
                          "node_r": ["customer:x:100", "customer:x:150"]})
    con = duckdb.connect()
    every = idn.candidate_pairs(f, component, extra, con)
    focus = pl.Series(rng.sample(f["node_id"].to_list(), 12))
    some = idn.candidate_pairs(f, component, extra, con, focus=focus)
    expected = every.filter(pl.col("node_l").is_in(focus.implode())
                            | pl.col("node_r").is_in(focus.implode()))
    assert expected.height > 12 and some.equals(expected)
