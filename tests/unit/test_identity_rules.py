"""Identity building blocks: guards, contradictions, person ids, merge/split events."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import polars as pl

from c360_assets.lib.config import load_config
from c360_assets.silver import identity as idn

GUARDS = idn.Guards.from_config(load_config().identity)


def test_shipped_blocklist_stops_role_mailboxes_and_junk_but_not_people():
    keys = pl.DataFrame({
        "kind": ["email", "email", "email", "email", "email", "phone", "phone"],
        "value": ["info@acme.com", "noreply@shop.de", "test@test.com", "none@none.com",
                  "anna.berg@gmail.com", "+490000000000", "+4915112345678"],
    })
    blocked = GUARDS.blocked(keys).is_not_null().to_list()
    assert blocked == [True, True, True, True, False, True, False]


def test_shared_value_limit_counts_records_per_source():
    keys = pl.DataFrame({
        "node_id": [f"customer:zendesk:{i}" for i in range(6)] + ["customer:sap:1"],
        "source_system": ["zendesk"] * 6 + ["sap"],
        "kind": "email", "value": "desk@hotel.com"})
    shared = idn.shared_values(keys, GUARDS)
    assert shared["guard"].to_list() == ["shared by 6 zendesk records (limit 5)"]
    assert idn.shared_values(keys.head(5), GUARDS)["guard"].to_list() == [None]


def test_contradictions_name_the_evidence():
    features = pl.DataFrame({
        "node_id": ["a", "b", "c", "d"],
        "first_name": ["anna", "peter", "jnoathan", "anna"],
        "last_name": ["berg", "berg", "miller", "novak"],
        "birth_date": ["1980-01-01", None, None, "1990-02-02"],
    }).with_columns(pl.concat_list("first_name").alias("first_names"))
    pairs = pl.DataFrame({"node_l": ["a", "a", "c"], "node_r": ["b", "d", "c"]})
    got = idn.contradictions(pairs, features, GUARDS.structural(), duckdb.connect()).to_list()
    assert got == ["first names differ (anna / peter)",
                   "birth dates differ (1980-01-01 / 1990-02-02)", None]
    # As vetoes they are off by default (the model weighs them); hard rules switch one on.
    assert idn.contradictions(pairs, features, GUARDS, duckdb.connect()).to_list() == [
        None, None, None]
    one = idn.Guards.from_config(load_config().identity, ("birth_dates_differ",))
    assert idn.contradictions(pairs, features, one, duckdb.connect()).to_list() == [
        None, "birth dates differ (1980-01-01 / 1990-02-02)", None]


def test_household_guard_tells_a_family_mailbox_from_a_first_name_change():
    features = pl.DataFrame({
        "node_id": ["anna", "peter", "jordan", "mia", "ben", "anon"],
        "first_name": ["anna", "peter", "jordan", "mia", "ben", None],
        "last_name": ["berg", "berg", "lee", "lee", "voss", None],
        "birth_date": ["1980-01-01", "1975-05-05", "1990-03-03", "1990-03-03", None, None],
    }).with_columns(pl.when(pl.col("first_name").is_not_null())
                    .then(pl.concat_list("first_name")).alias("first_names"))
    pairs = pl.DataFrame({
        "node_l": ["anna", "jordan", "anna", "anna", "anna"],
        "node_r": ["peter", "mia", "ben", "ben", "anon"],
        "held_kinds": [2, 1, 1, 2, 1],
    })
    got = idn.household(pairs, features, GUARDS, duckdb.connect()).to_list()
    assert "first names (anna / peter) and birth dates" in got[0]  # both differ: two people
    assert got[1] is None  # first name changed, birth date kept: one person
    assert "nothing personal agreeing" in got[2]  # one mailbox and a different name
    assert got[3] is None  # an e-mail and a phone: the model decides
    assert "which of its holders" in got[4]  # nothing to compare
    # Where households share a mailbox and a landline, two identifiers are not enough.
    strict = dataclasses.replace(GUARDS, two_identifiers_link=False)
    assert "nothing personal agreeing" in idn.household(
        pairs, features, strict, duckdb.connect()).to_list()[3]


def test_a_first_name_the_record_held_before_is_no_contradiction():
    """Lea became Anaïs in Shopify (the record's own history holds both); Salesforce still
    says Lea. A shared e-mail between them is not contested."""
    features = pl.DataFrame({
        "node_id": ["sf", "shop", "other"],
        "first_name": ["lea", "anais", "ben"],
        "last_name": ["roux", "roux", "roux"],
        "birth_date": [None, None, None],
        "first_names": [None, ["anais", "lea"], None],
    })
    pairs = pl.DataFrame({"node_l": ["sf", "other"], "node_r": ["shop", "shop"]})
    got = idn.contradictions(pairs, features, GUARDS.structural(), duckdb.connect()).to_list()
    assert got[0] is None
    assert got[1] == "first names differ (ben / anais)"


def test_first_name_history_lists_every_name_a_record_held():
    rows = pl.DataFrame({
        "node_id": ["r1", "r1", "r2", "r3"],
        "attribute": ["firstName", "firstName", "firstName", "fullName"],
        "value": ["Léa", "Anaïs", "Ben", "Ben Roux"],
    })
    history = idn.first_name_history(rows).sort("node_id")
    assert history.rows() == [("r1", ["anais", "lea"])]  # only records that changed


def test_person_id_comes_from_the_oldest_record_whatever_the_row_order():
    t = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    features = pl.DataFrame({"node_id": ["n2", "n1", "n3"],
                             "record_time": [t, t + dt.timedelta(days=1), t]})
    ids = idn.person_ids(features, pl.Series([0, 0, 0]))
    assert ids.n_unique() == 1
    again = idn.person_ids(features.reverse(), pl.Series([0, 0, 0]))
    assert again[0] == ids[0]  # n2 (earliest time, then smallest id) names the person
    only_n2 = idn.person_ids(features.head(1), pl.Series([0]))
    assert only_n2[0] == ids[0]


def test_events_log_absorbed_persons_and_splits():
    before = pl.DataFrame({"node_id": ["a", "b", "c", "d"], "person_id": ["P1", "P1", "P2", "P3"]})
    after = pl.DataFrame({"node_id": ["a", "b", "c", "d", "e"],
                          "person_id": ["P1", "P4", "P1", "P3", "P3"]})
    events = idn.identity_events(before, after)
    assert events.select("event_type", "from_person_id", "to_person_id").rows() == [
        ("MERGED_INTO", "P2", "P1"), ("SPLIT", "P1", "P4")]


def test_unsupported_pairs_rest_on_identifiers_alone():
    frame = pl.DataFrame({"matched_on": ["email", "email,phone", "email,phone",
                                         "email,last_name", None],
                          "held_kinds": [0, 0, 2, 0, 0]})
    assert frame.select(idn.unsupported().is_not_null().alias("u"))["u"].to_list() == [
        True, True, False, False, False]


def _levels(features: pl.DataFrame, pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The comparison level each pair lands in, per comparison: every level is given its
    own weight (level i: 2^i times likelier among matches), so the weight names it."""
    from c360_assets.silver import identity_model as im

    saved = im.settings().get_settings("duckdb").as_dict()
    labels = {}
    for comparison in saved["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for i, level in enumerate(levels, start=1):
            level["m_probability"], level["u_probability"] = 2.0 ** i / 2 ** 12, 1 / 2 ** 12
        labels[comparison["output_column_name"]] = {
            float(i): lv["label_for_charts"] for i, lv in enumerate(levels, start=1)}
    model = im.Model(saved, 0.0, {})
    frame = pl.DataFrame(pairs, schema=["node_l", "node_r"], orient="row")
    scored = im.score(features, frame, model).sort("node_l", "node_r")
    return [{name: labels[name].get(round(row[f"mw_{name}"], 6), "null")
             for name in labels} for row in scored.iter_rows(named=True)]


def _features(rows: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(rows)
    for column, dtype in idn.FEATURES_SCHEMA.items():
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype).alias(column))
    return frame.select(list(idn.FEATURES_SCHEMA)).cast(dict(idn.FEATURES_SCHEMA))


def test_corrupted_duplicates_land_in_the_levels_that_tolerate_them():
    """Keyed-in duplicates (the public linkage benchmarks' corruptions): names swapped
    between the fields *and* mistyped, one name in the other's field, a street and a
    postcode each mistyped. Each lands in a level of its own, whose weight the data
    decides, instead of in "all other comparisons"."""
    features = _features([
        {"node_id": "a1", "first_name": "rolliqns", "last_name": "ashleigh"},
        {"node_id": "a2", "first_name": "ashleigh", "last_name": "rollins"},
        {"node_id": "b1", "first_name": "capurso", "last_name": "ruby"},
        {"node_id": "b2", "first_name": "harrison", "last_name": "capurso"},
        {"node_id": "c1", "street": "26 maribyrno ng avenue", "postal_code": "4578",
         "city": "leicjhardt"},
        {"node_id": "c2", "street": "26 maribyrnong avenue", "postal_code": "4570",
         "city": "leichhardt"},
        {"node_id": "d1", "street": "46 cedar ln", "postal_code": "10001", "city": "new york"},
        {"node_id": "d2", "street": "46 cedar ln", "postal_code": "94105",
         "city": "san francisco"},
    ])
    got = _levels(features, [("a1", "a2"), ("b1", "b2"), ("c1", "c2"), ("d1", "d2")])
    assert got[0]["first_name"] == "names swapped between the fields, a typo apart"
    assert got[1]["first_name"] == "one record's first name is the other's last name"
    assert got[2]["address"] == "street, and postcode or city, each a typo apart"
    assert got[3]["address"] == "same or nearly the same street, postcode and city apart"


def test_one_name_in_the_other_field_at_one_postcode_is_a_candidate_pair():
    features = _features([
        {"node_id": "a", "first_name": "sporn", "last_name": "abyb", "postal_code": "2340"},
        {"node_id": "b", "first_name": "abby", "last_name": "sporn", "postal_code": "2340"},
        {"node_id": "c", "first_name": "lily", "last_name": "sporn", "postal_code": "9999"},
    ])
    component = pl.Series("component", [0, 1, 2], dtype=pl.Int64)
    extra = pl.DataFrame(schema={"node_l": pl.String, "node_r": pl.String})
    pairs = idn.candidate_pairs(features, component, extra, duckdb.connect())
    assert pairs.select("node_l", "node_r").rows() == [("a", "b")]
