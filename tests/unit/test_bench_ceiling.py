"""The identity benchmark's ceiling: what no linker can recover."""

from __future__ import annotations

import polars as pl

from bench.accuracy import ceiling


def test_only_name_only_records_of_shared_names_bound_recall():
    features = pl.DataFrame({
        "node_id": ["a1", "a2", "a3", "b1", "c1", "c2", "d1", "d2"],
        "first_name": ["emma", "emma", "emma", "emma", "lia", "lia", "noa", "noa"],
        "last_name": ["roux", "roux", "roux", "roux", "berg", "berg", "kurz", "kurz"],
        "birth_date": ["1990-01-01", None, None, "1970-05-05", None, None, None, None],
        "street": [None] * 8, "postal_code": [None] * 8, "city": [None] * 8,
    })
    truth = pl.DataFrame({"node_id": features["node_id"],
                          "true_id": ["A", "A", "A", "B", "C", "C", "D", "D"]})
    identified = pl.Series(["a1", "b1", "c1", "d1", "d2"])
    got = ceiling(features, identified, truth)
    # a2 and a3: a bare "emma roux" held by two persons (A and B) - unplaceable; they
    # touch all three of A's pairs. c2 is a bare "lia berg" only C holds: placeable by
    # name. D's records both hold identifiers.
    assert (got.unplaceable_records, got.true_pairs, got.lost_pairs) == (2, 5, 3)
    assert abs(got.recall - 0.4) < 1e-12
