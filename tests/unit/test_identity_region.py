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


def _blocks_changed_by_counting_both(old: pl.DataFrame, new: pl.DataFrame,
                                     nodes: pl.Series) -> set[str]:
    """The reference: every block's size counted over all of `old` and all of `new`."""
    out: set[str] = set()
    for rule in idn.BLOCKING_RULES:
        left, right, _ = idn._rule_sides(rule)
        frames = [idn.blocking_frame(f) for f in (old, new)]
        keys = (pl.concat([f.filter(pl.col("node_id").is_in(nodes.implode())).select(left)
                           for f in frames]).drop_nulls().unique())
        before, after = (f.join(keys, on=left, how="semi").group_by(left).len()
                         for f in frames)
        flipped = (keys.join(before.rename({"len": "b"}), on=left, how="left")
                   .join(after.rename({"len": "a"}), on=left, how="left")
                   .filter((pl.col("b").fill_null(0) <= idn.BLOCK_SIZE_LIMIT)
                           != (pl.col("a").fill_null(0) <= idn.BLOCK_SIZE_LIMIT))
                   .select(left))
        for f in frames:
            out |= set(f.join(flipped, on=left, how="semi")["node_id"])
            out |= set(f.join(flipped.rename(dict(zip(left, right, strict=True))),
                              on=right, how="semi")["node_id"])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_blocks_changed_counts_only_the_changed_records_and_matches_a_full_count(seed):
    """Blocks near the limit; records changed, new and gone: counting a block's size
    before from its size now and the changed records alone gives what counting every
    record before and after gives."""
    rng = random.Random(seed)

    def row(i: int) -> dict[str, str | None]:
        return {"node_id": f"customer:x:{i:03d}", "first_name": rng.choice("abc"),
                "last_name": rng.choice(["a", "b", "c", None]),
                "postal_code": rng.choice(["P1", "P2", "P3", None]),
                "birth_date": rng.choice(["1980-01-01", "1990-02-02"])}
    old_rows = [row(i) for i in range(120)]
    new_rows, changed = [], set()
    for r in old_rows:
        roll = rng.random()
        if roll < 0.08:
            changed.add(r["node_id"])  # gone
        elif roll < 0.25:
            changed.add(r["node_id"])
            new_rows.append({**row(int(r["node_id"][-3:])), "node_id": r["node_id"]})
        else:
            new_rows.append(r)
    for i in range(120, 130):
        changed.add(f"customer:x:{i:03d}")
        new_rows.append(row(i))

    def frame(rows: list[dict]) -> pl.DataFrame:
        f = pl.DataFrame(rows, schema={c: pl.String for c in rows[0]})
        return f.with_columns(*[pl.lit(None, pl.String).alias(c) for c in idn.COMPARED
                                if c not in f.columns])
    old, new = frame(old_rows), frame(new_rows)
    nodes = pl.Series("node_id", sorted(changed))
    got = idn.blocks_over_the_limit_changed(old, new, nodes)
    expected = _blocks_changed_by_counting_both(old, new, nodes)
    assert expected and set(got.to_list()) == expected
    assert set(idn.blocks_over_the_limit_changed(
        old, new, nodes, blocking=idn.Blocking.of(new)).to_list()) == expected


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
