"""The identity benchmark's ceiling: what no linker can recover without guessing."""

from __future__ import annotations

import polars as pl

from bench.accuracy import ceiling

NO_ADDRESS = {"street": [None] * 8, "postal_code": [None] * 8, "city": [None] * 8}


def test_only_name_only_records_of_shared_names_bound_recall():
    features = pl.DataFrame({
        "node_id": ["a1", "a2", "a3", "b1", "c1", "c2", "d1", "d2"],
        "first_name": ["emma", "emma", "emma", "emma", "lia", "lia", "noa", "noa"],
        "last_name": ["roux", "roux", "roux", "roux", "berg", "berg", "kurz", "kurz"],
        "birth_date": ["1990-01-01", None, None, "1970-05-05", None, None, None, None],
        **NO_ADDRESS,
    })
    truth = pl.DataFrame({"node_id": features["node_id"],
                          "true_id": ["A", "A", "A", "B", "C", "C", "D", "D"]})
    keys = pl.DataFrame({"node_id": ["a1", "b1", "c1", "d1", "d2"],
                         "kind": ["email"] * 5,
                         "value": ["a@x", "b@x", "c@x", "d@x", "d@x"]})
    got = ceiling(features, keys, truth)
    # a2 and a3: a bare "emma roux" held by two persons (A and B) - unplaceable; they
    # touch all three of A's pairs. c2 is a bare "lia berg" only C holds: placeable by
    # name. D's records share an e-mail.
    assert (got.unplaceable_records, got.true_pairs, got.lost_pairs) == (2, 5, 3)
    assert abs(got.recall - 0.4) < 1e-12


def test_records_whose_evidence_is_never_comparable_with_the_rest_of_their_person():
    """Evidence links two records only if both carry it: an e-mail no other record
    holds, an address against a record without one, or a birth date against a record
    without one is nothing to compare. Chains count: e1-e2 share a phone, e2-e3 both
    carry an address."""
    features = pl.DataFrame({
        "node_id": ["e1", "e2", "e3", "e4", "f1", "f2", "g1", "g2"],
        "first_name": ["mary"] * 6 + ["tom", "tom"],
        "last_name": ["jones"] * 6 + ["ray", "ray"],
        "birth_date": ["1980-01-01", None, None, None, None, None, "1990-01-01", None],
        "street": [None, "1 oak ave", "1 oak ave", None, None, None, None, None],
        "postal_code": [None] * 8, "city": [None] * 8,
    })
    truth = pl.DataFrame({"node_id": features["node_id"],
                          "true_id": ["E", "E", "E", "E", "F", "F", "G", "G"]})
    keys = pl.DataFrame({"node_id": ["e1", "e2", "e4", "f1", "g1", "g2"],
                         "kind": ["phone", "phone", "email", "email", "email", "email"],
                         "value": ["+1", "+1", "only-e4@x", "f@x", "g1@x", "g2@x"]})
    got = ceiling(features, keys, truth)
    # E: e1-e2-e3 one chain; e4 holds an e-mail nobody else holds and a name two
    # persons (E, F) share: its 3 pairs are lost. F: f1/f2 share nothing but "mary
    # jones": 1 lost. G: "tom ray" is G's alone: placeable by name.
    assert (got.true_pairs, got.lost_pairs, got.unplaceable_records) == (8, 4, 2)
