"""Identity resolution: the silver graph's customer records -> people.

Pure functions over polars frames (the pair work runs in DuckDB over the same frames),
in the order a run applies them (architecture, "Silver: identity"):

1. `graph_inputs` / `record_features`: per customer record, its identifying values over
   all time (every valid e-mail, phone and Segment anonymous id it ever held) and its
   latest known descriptive values (names, birth date, address) for comparisons.
2. `shared_values`: the over-merge guards. An identifying value held by more than
   `shared_value_limit` distinct records of one source system, or matching a blocklist
   pattern (role mailboxes, junk test addresses, all-zero phones), never links alone.
3. `deterministic_pairs`: records sharing an unguarded identifying value, plus links a
   source asserts itself (Salesforce merges, a Segment identify carrying both an
   anonymous id and a user id): asserted links always hold. A shared e-mail or phone
   whose holders look like different people (`contested_sql`: first names clearly
   different, birth dates apart, last names different on a phone - a family mailbox,
   a recycled number) does not link by itself: its pairs are *held* and decided by the
   probabilistic model, where a differing name or date is evidence weighed by what the
   data says it is worth, not a veto.
4. `candidate_pairs`: blocking for the probabilistic model (Splink, `identity_model`),
   only between records the deterministic links did not already join.
5. `cluster`: deterministic links make components; probabilistic links at or above the
   threshold join components strongest first. Refused: pairs resting on nothing but one
   guarded e-mail or phone (`unsupported`), held pairs that look like a household
   (`household`: a shared mailbox and personal values that disagree), pairs whose
   first names differ with no birth date to compare where the data's pairs that can
   tell are two people (`household_by_evidence`: partners share last name and
   address), and links that would chain two clusters whose other records disagree on
   names or birth dates (one weak link cannot join them). Hard contradiction rules
   (vetoes) remain available as explicit config (`identity.hard_rules`), off by default.
6. `person_ids` / `identity_rows`: a person's id is derived from its oldest record
   (earliest record time, then smallest node id), so it is the same whatever the
   landing order, stays when newer records join, and on a merge the person with the
   older oldest record keeps its id. `identity_events` logs merges and splits.

Names, city and country never link on their own: they are only comparison inputs.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl
from jellyfish import damerau_levenshtein_distance, jaro_winkler_similarity
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from c360_assets.lib.config import ConfigError
from c360_assets.lib.hashing import sha256
from c360_assets.lib.registry import Registry
from c360_assets.silver.sources import ENTITY_TARGETS

CUSTOMER = "customer"
MERGED_INTO = "MERGED_INTO"
UTC = pl.Datetime("us", "UTC")

# The comparison columns a canonical attribute can feed (its `identity_column` in
# config/canonical_attributes.csv): a full name fills first and last name where those are
# missing, a mobile phone the phone.
INPUT_COLUMNS = ("first_name", "last_name", "full_name", "birth_date", "street",
                 "postal_code", "city", "country", "email", "phone", "mobile_phone")


@dataclass(frozen=True)
class Inputs:
    """Which canonical attributes identity reads, from the registry: `features`
    (attribute -> comparison column; a new source field mapped to one of them feeds
    identity with no code change) and `link_kinds` (identifying attributes -> the kind
    of link a shared value makes: `Registry.link_kinds`)."""

    features: dict[str, str]
    link_kinds: dict[str, str]

    @classmethod
    def of(cls, registry: Registry) -> Inputs:
        features = registry.identity_columns()
        for attribute, column in features.items():
            if column not in INPUT_COLUMNS:
                line = next(c.line for c in registry.canonical if c.name == attribute)
                raise ConfigError(f"config/canonical_attributes.csv:{line}: identity_column "
                                  f"{column!r} is not one identity compares (known: "
                                  f"{', '.join(INPUT_COLUMNS)})")
        return cls(features, registry.link_kinds(not_values=set(ENTITY_TARGETS)))

    @property
    def attributes(self) -> set[str]:
        return set(self.features) | set(self.link_kinds)
FEATURES_SCHEMA = pl.Schema({
    "node_id": pl.String(), "source_system": pl.String(), "record_time": UTC,
    "first_name": pl.String(), "last_name": pl.String(), "birth_date": pl.String(),
    "street": pl.String(), "postal_code": pl.String(), "city": pl.String(),
    "country": pl.String(), "email": pl.String(), "phone": pl.String(),
    # Every first name the record ever held (folded), for records that held more than
    # one (null: just `first_name`): a record whose first name changed from Lea to
    # Anaïs says that a Lea and an Anaïs sharing its e-mail are one person.
    "first_names": pl.List(pl.String()),
})
COMPARED = ("first_name", "last_name", "birth_date", "street", "postal_code", "city",
            "country", "email", "phone")
PAIRS_SCHEMA = pl.Schema({"node_l": pl.String(), "node_r": pl.String(), "rule": pl.String(),
                          "evidence": pl.String()})
DETERMINISTIC_RULES = ("salesforce_merge", "email", "phone", "anonymous_id")
# Links a source states itself: a Salesforce merge, a Segment identify that carries both
# an anonymous id and a user id. No contradiction or cluster guard splits them.
ASSERTED_RULES = ("salesforce_merge", "anonymous_id")


# Contradictions: signs that two records are different people (see contradiction_sql).
# They mark a shared e-mail or phone as contested (its pairs go to the model instead of
# linking outright). As vetoes on a link they are off by default: the model weighs a
# differing name or date by what the user's data says it is worth (corrupted test sets
# such as FEBRL3 replace first names and birth dates in true duplicates; CRM data
# changes first names). `identity.hard_rules` switches any of them on as a veto.
CONTRADICTIONS = ("first_names_differ", "birth_dates_differ", "last_names_differ_on_phone")


@dataclass(frozen=True)
class Guards:
    """Over-merge guards (config `identity:`) and the hard rules (vetoes) switched on."""

    shared_value_limit: int = 5
    blocklist: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> regexes
    first_name_min_similarity: float = 0.8  # Jaro-Winkler below this contradicts
    contradictions: frozenset[str] = frozenset()  # hard rules: vetoes (default none)
    two_identifiers_link: bool = True  # see config identity.two_identifiers_link

    @classmethod
    def from_config(cls, identity, hard_rules: tuple[str, ...] | None = None  # noqa: ANN001
                    ) -> Guards:
        """From `config.IdentityConfig`; `hard_rules` overrides its `hard_rules`."""
        return cls(identity.shared_value_limit,
                   {k: tuple(v) for k, v in identity.blocklist.items()},
                   identity.first_name_min_similarity,
                   frozenset(identity.hard_rules if hard_rules is None else hard_rules),
                   identity.two_identifiers_link)

    def structural(self) -> Guards:
        """These guards with every contradiction on: what marks a shared value contested."""
        return Guards(self.shared_value_limit, self.blocklist, self.first_name_min_similarity,
                      frozenset(CONTRADICTIONS), self.two_identifiers_link)

    def blocked(self, frame: pl.DataFrame) -> pl.Series:
        """The first blocklist pattern each row (`kind`, `value`) matches, else null. One
        combined regex pass per kind finds the few blocked rows; only they are told
        which pattern matched."""
        out = pl.Series("pattern", [None] * frame.height, dtype=pl.String)
        for kind, patterns in self.blocklist.items():
            if not patterns:
                continue
            any_match = "|".join(f"(?:{p})" for p in patterns)
            hit = frame.select((pl.col("kind") == kind)
                               & pl.col("value").str.contains(any_match)).to_series()
            rows = frame.filter(hit)
            which = pl.lit(None, pl.String)
            for pattern in reversed(patterns):
                which = pl.when(pl.col("value").str.contains(pattern)).then(
                    pl.lit(pattern)).otherwise(which)
            out = out.scatter(hit.arg_true(), rows.select(which).to_series())
        return out


# ---------------------------------------------------------------------------- inputs


def graph_inputs(nodes: pl.LazyFrame, relationships: pl.LazyFrame,
                 attributes: set[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(records, edges, merges) from the silver graph.

    records: node_id, source_system, record_time (the entity node's created_at).
    edges: node_id, attribute, value, valid, is_current, valid_from - every edge, current
      or closed, from a customer record to a value node of `attributes`.
    merges: node_id, master - current Salesforce MERGED_INTO edges.
    (`relationships` filtered to some records gives those records' edges and merges.)
    """
    return (customer_records(nodes), *record_edges(nodes, relationships, attributes))


def customer_records(nodes: pl.LazyFrame) -> pl.DataFrame:
    """node_id, source_system, record_time of every customer record node."""
    return (nodes.filter(pl.col("node_type") == CUSTOMER)
            .select("node_id", pl.col("node_id").str.split(":").list.get(1)
                    .alias("source_system"), pl.col("created_at").alias("record_time"))
            .collect())


def record_edges(nodes: pl.LazyFrame, relationships: pl.LazyFrame, attributes: set[str]
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(edges, merges) of `graph_inputs`."""
    values = (nodes.filter(pl.col("node_type").is_in(list(attributes)))
              .select(pl.col("node_id").alias("target_node_id"),
                      pl.col("node_type").alias("attribute"), "value"))
    rel = relationships.filter(pl.col("source_node_id").str.starts_with(CUSTOMER + ":"))
    edges = (rel.filter(pl.col("rel_type") != MERGED_INTO)
             .select(pl.col("source_node_id").alias("node_id"), "target_node_id",
                     (pl.col("confidence") >= 1.0).alias("valid"), "is_current", "valid_from")
             .join(values, on="target_node_id", how="inner")
             .drop("target_node_id").collect())
    merges = (rel.filter((pl.col("rel_type") == MERGED_INTO) & pl.col("is_current"))
              .select(pl.col("source_node_id").alias("node_id"),
                      pl.col("target_node_id").alias("master")).collect())
    return edges, merges


def fold(series: pl.Series) -> pl.Series:
    """Lower case, accents removed, spaces collapsed: the form names are compared in."""
    mapping = {}
    for v in series.unique().drop_nulls().to_list():
        text = unicodedata.normalize("NFKD", v)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        mapping[v] = " ".join(text.lower().split()) or None
    return series.replace_strict(mapping, default=None, return_dtype=pl.String)


def record_features(records: pl.DataFrame, edges: pl.DataFrame, features: dict[str, str]
                    ) -> pl.DataFrame:
    """One row per customer record: its latest known value of each compared attribute
    (the current edge; a deleted record's last value), names and addresses folded.
    `features`: attribute -> comparison column (`Inputs.features`)."""
    rows = edges.filter(pl.col("attribute").is_in(list(features)))
    # One current edge per record and attribute (the SCD-2 key); a deleted record's
    # closed edges are few, so only those are sorted.
    current = rows.filter(pl.col("is_current")).select("node_id", "attribute", "value")
    closed = rows.filter(~pl.col("is_current"))
    key = ["node_id", "attribute"]
    # Which closed keys also have a current edge: probe the many current rows against
    # the few closed keys (not the other way round).
    covered = current.select(key).join(closed.select(key).unique(), on=key, how="semi")
    last_closed = (closed.join(covered, on=key, how="anti")
                   .sort("valid_from", "value")  # ties broken by value: deterministic
                   .group_by("node_id", "attribute").agg(pl.col("value").last()))
    latest = pl.concat([current, last_closed])
    wide = latest.pivot(on="attribute", index="node_id", values="value",
                        aggregate_function="first")
    # Several attributes may feed one column: the first (in `features` order) that holds
    # a value.
    for column in INPUT_COLUMNS:
        sources = [pl.col(a) for a, c in features.items() if c == column and a in wide.columns]
        wide = wide.with_columns((pl.coalesce(sources) if sources
                                  else pl.lit(None, pl.String)).alias(f"__{column}"))
    wide = wide.select("node_id", *[pl.col(f"__{c}").alias(c) for c in INPUT_COLUMNS])
    full = fold(wide["full_name"]).str.split(" ")
    wide = wide.with_columns(
        pl.coalesce(fold(wide["first_name"]), full.list.first()).alias("first_name"),
        pl.coalesce(fold(wide["last_name"]),
                    pl.when(full.list.len() > 1).then(full.list.last())).alias("last_name"),
        fold(wide["street"]).alias("street"), fold(wide["city"]).alias("city"),
        pl.col("postal_code").str.to_uppercase().str.replace_all(" ", ""),
        pl.coalesce("phone", "mobile_phone").alias("phone"),
    )
    wide = wide.join(first_name_history(rows), on="node_id", how="left")
    return (records.join(wide, on="node_id", how="left")
            .select(list(FEATURES_SCHEMA)).cast(dict(FEATURES_SCHEMA)).sort("node_id"))


def first_name_history(rows: pl.DataFrame) -> pl.DataFrame:
    """node_id, first_names: the folded first names of every firstName edge, current or
    closed (and the first word of every fullName), for records that ever held more than
    one value of them - the rest need no history."""
    names = rows.filter(pl.col("attribute").is_in(["firstName", "fullName"]))
    if names.height == 0:
        return pl.DataFrame(schema={"node_id": pl.String, "first_names": pl.List(pl.String)})
    many = names.group_by("node_id", "attribute").agg(pl.col("value").n_unique().alias("n")) \
        .filter(pl.col("n") > 1).select("node_id").unique()
    names = names.join(many, on="node_id", how="semi")
    first = pl.when(pl.col("attribute") == "fullName").then(
        fold(names["value"]).str.split(" ").list.first()).otherwise(fold(names["value"]))
    return (names.select("node_id", first.alias("name")).drop_nulls()
            .group_by("node_id").agg(pl.col("name").unique().sort().alias("first_names")))


def names_alike_sql(t: float, left: str = "l", right: str = "r") -> str:
    """SQL: some first name `left` ever held resembles (Jaro-Winkler >= t) some first name
    `right` ever held (`first_names` lists)."""
    def names(side: str) -> str:
        return f"coalesce({side}.first_names, [{side}.first_name])"
    return (f"(coalesce(len(list_filter({names(left)}, lambda x: len(list_filter("
            f"{names(right)}, lambda y: jaro_winkler_similarity(x, y) >= {t})) > 0)), 0)"
            f" > 0)")


def identifier_keys(edges: pl.DataFrame, records: pl.DataFrame, link_kinds: dict[str, str]
                    ) -> pl.DataFrame:
    """node_id, source_system, kind, value: every valid identifying value each record
    ever held (an e-mail replaced since still says who the record was). `link_kinds`:
    identifying attribute -> link kind (`Inputs.link_kinds`)."""
    del records  # every edge here comes from a customer record; its id names the source
    return (edges.filter(pl.col("valid") & pl.col("attribute").is_in(list(link_kinds)))
            .select("node_id", pl.col("attribute").replace_strict(link_kinds).alias("kind"),
                    "value")
            .unique()
            .select("node_id",
                    pl.col("node_id").str.split(":").list.get(1).alias("source_system"),
                    "kind", "value"))


# ---------------------------------------------------------------------------- guards


def shared_values(keys: pl.DataFrame, guards: Guards) -> pl.DataFrame:
    """Identifying values held by more than one record: kind, value, records (distinct),
    busiest source and its count, and `guard` (why it does not link alone, or null)."""
    per_source = (keys.group_by("kind", "value", "source_system").agg(pl.len().alias("n"))
                  .sort("n", "source_system", descending=[True, False]))
    shared = (per_source.group_by("kind", "value", maintain_order=True)
              .agg(pl.col("n").sum().alias("records"), pl.col("source_system").first()
                   .alias("busiest_source"), pl.col("n").first().alias("busiest_count"))
              .filter(pl.col("records") > 1))
    pattern = pl.col("_pattern")
    over = pl.col("busiest_count") > guards.shared_value_limit
    return shared.with_columns(guards.blocked(shared).alias("_pattern")).with_columns(
        pl.when(pattern.is_not_null())
        .then(pl.format("blocklist: {} matches '{}'", "kind", pattern))
        .when(over)
        .then(pl.format("shared by {} {} records (limit {})", "busiest_count", "busiest_source",
                        pl.lit(guards.shared_value_limit)))
        .alias("guard")).drop("_pattern")


# ---------------------------------------------------------------------------- links


def swapped_sql(t: float) -> str:
    """SQL: records `l` and `r` hold each other's first and last names (Jaro-Winkler >= t
    both ways): names entered in the wrong fields, not different people."""
    return (f"(l.last_name IS NOT NULL AND r.last_name IS NOT NULL"
            f" AND jaro_winkler_similarity(l.first_name, r.last_name) >= {t}"
            f" AND jaro_winkler_similarity(l.last_name, r.first_name) >= {t})")


def contested_sql(guards: Guards, kind: str = "p.kind") -> str:
    """`contradiction_sql` with every contradiction on: whether a shared value's holders
    look like different people (the value is then contested, whatever the hard rules)."""
    return contradiction_sql(guards.structural(), kind)


def contradiction_sql(guards: Guards, kind: str = "p.kind") -> str:
    """SQL: why records `l` and `r` cannot be one person (null: no contradiction), for
    the contradictions `guards` trusts:

    * `first_names_differ`: Jaro-Winkler below the configured similarity, unless the
      names are swapped between the first and last name fields or a first name one
      record held before resembles one the other held (a first-name change the record's
      own history shows);
    * `birth_dates_differ`: more than one keying error apart (a typo or two swapped
      digits is not a different person; a family member's or a namesake's date is);
    * `last_names_differ_on_phone`: when the shared value is a phone, which carriers
      recycle, last names different.
    """
    t = guards.first_name_min_similarity
    swapped = swapped_sql(t)
    cases = {
        "first_names_differ": f"""
            WHEN l.first_name IS NOT NULL AND r.first_name IS NOT NULL
                 AND jaro_winkler_similarity(l.first_name, r.first_name) < {t}
                 AND NOT {swapped} AND NOT {names_alike_sql(t)}
              THEN 'first names differ (' || l.first_name || ' / ' || r.first_name || ')'""",
        "birth_dates_differ": """
            WHEN l.birth_date IS NOT NULL AND r.birth_date IS NOT NULL
                 AND damerau_levenshtein(l.birth_date, r.birth_date) > 1
              THEN 'birth dates differ (' || l.birth_date || ' / ' || r.birth_date || ')'""",
        "last_names_differ_on_phone": f"""
            WHEN {kind} = 'phone' AND l.last_name IS NOT NULL AND r.last_name IS NOT NULL
                 AND jaro_winkler_similarity(l.last_name, r.last_name) < {t}
                 AND NOT {swapped}
              THEN 'last names differ on a phone (' || l.last_name || ' / '
                   || r.last_name || ')'""",
    }
    whens = "".join(sql for name, sql in cases.items() if name in guards.contradictions)
    return f"CASE{whens} END" if whens else "CAST(NULL AS VARCHAR)"


IDENTIFIER_COMPARISONS = ("email", "phone")
# Comparisons that, agreeing alone, never link: names never link on their own, and a
# shared country says nothing about who someone is.
NAME_COMPARISONS = ("first_name", "last_name", "country")


def unsupported() -> pl.Expr:
    """Why a scored pair (with `matched_on` and `held_kinds`: how many identifier kinds it
    shares through contested values) may not link: nothing but one e-mail or phone
    agrees. Scored pairs never share an unguarded, uncontested identifier (those link
    deterministically), so such a pair rests on a value the guards stopped: it links
    only together with agreeing evidence - a name, a birth date, an address, or a second
    independent identifier held by both (an e-mail *and* a phone, both contested: the
    same person with a changed first name, not a shared mailbox). And names never link
    on their own: a pair on which nothing but names (and the country) agree is refused,
    however common or rare the name."""
    agreed = pl.col("matched_on").fill_null("").str.split(",").list.set_difference(
        pl.lit([""]))
    others = agreed.list.set_difference(pl.lit(list(IDENTIFIER_COMPARISONS))).list.len()
    identifier = agreed.list.len() > others  # an e-mail or phone agreed
    beyond_names = agreed.list.set_difference(pl.lit(list(NAME_COMPARISONS))).list.len()
    return (pl.when(identifier & (others == 0) & (pl.col("held_kinds").fill_null(0) < 2))
            .then(pl.lit("nothing but a guarded e-mail or phone agrees"))
            .when((agreed.list.len() > 0) & (beyond_names == 0))
            .then(pl.lit("nothing but names agree (namesakes abound)"))
            .otherwise(pl.lit(None, pl.String)))


UNKNOWN_HOLDER = ("a contested contact value and no first name or birth date to compare: "
                  "which of its holders this record belongs to is unknown")


def household(pairs: pl.DataFrame, features: pl.DataFrame, guards: Guards,
              con: duckdb.DuckDBPyConnection) -> pl.Series:
    """Why a held pair (`node_l`, `node_r`, `held_kinds` > 0: it shares only contested
    e-mails/phones) looks like two people of one household, else null, in order.

    Personal values are the first name and the birth date. Two people: both disagree;
    or one disagrees, nothing personal agrees and only one identifier is shared (a
    family mailbox, nothing else) or only a family's values (`family`: one source holds
    two people on them). One person whose first name really changed shares an e-mail
    *and* a phone (unless `two_identifiers_link` is off: households sharing a mailbox
    and a landline), or keeps the birth date. A record with nothing personal to
    compare (an unnamed Segment visitor on a family mailbox) could be any holder's:
    `UNKNOWN_HOLDER`; `cluster` links it only if all its candidate holders end up one
    person."""
    t = guards.first_name_min_similarity
    swapped = swapped_sql(t)
    both_first = "(l.first_name IS NOT NULL AND r.first_name IS NOT NULL)"
    both_birth = "(l.birth_date IS NOT NULL AND r.birth_date IS NOT NULL)"
    out = _sql(con, f"""
        WITH x AS (
          SELECT p.i, p.held_kinds, coalesce(p.family, false) AS family,
            CASE WHEN {both_first} AND jaro_winkler_similarity(l.first_name, r.first_name)
                      < {t} AND NOT {swapped} AND NOT {names_alike_sql(t)}
                 THEN 1 ELSE 0 END AS first_differs,
            CASE WHEN {both_first} AND (jaro_winkler_similarity(l.first_name, r.first_name)
                      >= {t} OR {swapped} OR {names_alike_sql(t)})
                 THEN 1 ELSE 0 END AS first_agrees,
            CASE WHEN {both_birth} AND damerau_levenshtein(l.birth_date, r.birth_date) > 1
                 THEN 1 ELSE 0 END AS birth_differs,
            CASE WHEN {both_birth} AND damerau_levenshtein(l.birth_date, r.birth_date) <= 1
                 THEN 1 ELSE 0 END AS birth_agrees,
            l.first_name AS fl, r.first_name AS fr, l.birth_date AS bl, r.birth_date AS br
          FROM p JOIN f l ON l.node_id = p.node_l JOIN f r ON r.node_id = p.node_r
          WHERE coalesce(p.held_kinds, 0) > 0)
        SELECT i, CASE
          WHEN first_differs + birth_differs + first_agrees + birth_agrees = 0
            THEN '{UNKNOWN_HOLDER}'
          WHEN first_differs + birth_differs >= 2
            THEN 'a shared contact value, but first names (' || fl || ' / ' || fr
                 || ') and birth dates (' || bl || ' / ' || br || ') differ: a household'
          WHEN first_differs + birth_differs = 1 AND first_agrees + birth_agrees = 0
               AND (held_kinds < {2 if guards.two_identifiers_link else 99} OR family)
            THEN CASE WHEN held_kinds < 2 THEN 'one shared contact value and '
                      ELSE 'only a family''s contact values shared (one source holds two '
                           || 'people on them) and ' END || CASE WHEN first_differs = 1
                 THEN 'first names differ (' || fl || ' / ' || fr || ')'
                 ELSE 'birth dates differ (' || bl || ' / ' || br || ')' END
                 || ' with nothing personal agreeing: a household'
          END AS c
        FROM x
    """, p=pairs.select("node_l", "node_r", "held_kinds",
                        pl.col("family") if "family" in pairs.columns
                        else pl.lit(False).alias("family")).with_row_index("i"),
        f=features.select("node_id", "first_name", "last_name", "birth_date", "first_names"))
    reasons = dict(zip(out["i"].to_list(), out["c"].to_list(), strict=True))
    return pl.Series("household", [reasons.get(i) for i in range(pairs.height)],
                     dtype=pl.String)


HOUSEHOLD_CONFIDENCE = 0.95


def household_by_evidence(pairs: pl.DataFrame, features: pl.DataFrame, guards: Guards,
                          threshold: float, con: duckdb.DuckDBPyConnection
                          ) -> tuple[pl.Series, pl.DataFrame]:
    """Why a scored pair (`match_weight`, `weights`: the per-comparison weights as JSON,
    optionally `held_kinds`) is a household's, else null, in order; and the evidence,
    one row per stratum.

    The model adds its comparisons' weights as if they were independent, and for the
    people of one household they are not: partners share a last name, an address,
    often a mailbox and a landline, and that evidence outweighs a differing first name.
    Whether a pair whose first names clearly differ and that has no birth date to
    compare is one person or two, the data's own pairs tell: those that would link on
    their other evidence alone (the match weight without first name and birth date at
    or above `threshold`), whose first names differ and whose birth dates can be
    compared. Counted apart for pairs that share an e-mail or phone and pairs that do
    not. When those pairs are two people (the birth dates differ too) with confidence
    `HOUSEHOLD_CONFIDENCE` (Beta(1, 1) prior on the share that is one person; that
    share below one half), the undecided pairs of the stratum are a household's. Where
    they are mostly one person (FEBRL's duplicates keep the birth date under a replaced
    first name), or too few to tell, the model's weight stands. This assumes a pair
    missing a birth date is like the pairs that have one. (The same test on birth
    dates, undecided for want of a first name, was tried: it split true FEBRL4
    duplicates, whose first name is missing *because* they are corrupted.)"""
    x = household_evidence(pairs, features, guards, threshold, con)
    strata = household_verdicts(household_counts(x))
    return household_reasons(x, strata, pairs.height), strata


STRATA_SCHEMA = pl.Schema({"contact": pl.Boolean(), "pairs_that_tell": pl.Int64(),
                           "one_person": pl.Int64(), "undecided": pl.Int64()})


def household_evidence(pairs: pl.DataFrame, features: pl.DataFrame, guards: Guards,
                       threshold: float, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The pairs of `pairs` that tell or await `household_by_evidence`'s verdict: i (row
    in `pairs`), contact (the stratum), first_l, first_r, birth_agrees (null: no birth
    date to tell)."""
    t = guards.first_name_min_similarity
    used = ("first_name", "birth_date", "email", "phone")
    decoded = pl.col("weights").str.json_decode(pl.Struct({c: pl.Float64 for c in used}))
    weight = {c: decoded.struct.field(c).fill_null(0.0) for c in used}
    contact = (weight["email"] > 0) | (weight["phone"] > 0)
    if "held_kinds" in pairs.columns:
        contact = contact | (pl.col("held_kinds").fill_null(0) > 0)
    # Only pairs that would link on their other evidence matter: few of the scored ones.
    p = pairs.select(
        "node_l", "node_r", contact.alias("contact"),
        (pl.col("match_weight") - weight["first_name"] - weight["birth_date"]).alias("rest"),
    ).with_row_index("i").filter(pl.col("rest") >= threshold)
    ends = pl.concat([p["node_l"], p["node_r"]]).unique().implode()
    return _sql(con, f"""
        SELECT p.i, p.contact, l.first_name AS first_l, r.first_name AS first_r,
               CASE WHEN l.birth_date IS NULL OR r.birth_date IS NULL THEN NULL
                    ELSE damerau_levenshtein(l.birth_date, r.birth_date) <= 1
               END AS birth_agrees
        FROM p JOIN f l ON l.node_id = p.node_l JOIN f r ON r.node_id = p.node_r
        WHERE jaro_winkler_similarity(l.first_name, r.first_name) < {t}
          AND NOT {swapped_sql(t)} AND NOT {names_alike_sql(t)}
    """, p=p, f=features.filter(pl.col("node_id").is_in(ends)).select(
        "node_id", "first_name", "last_name", "birth_date", "first_names"))


def household_counts(x: pl.DataFrame) -> pl.DataFrame:
    """Per stratum (contact true, then false): pairs that tell, how many of them agree on
    the birth date (one person), pairs undecided (`STRATA_SCHEMA`)."""
    rows = []
    for shares in (True, False):
        stratum = x.filter(pl.col("contact") == shares)
        told = stratum.filter(pl.col("birth_agrees").is_not_null())
        rows.append({"contact": shares, "pairs_that_tell": told.height,
                     "one_person": int(told["birth_agrees"].sum()),
                     "undecided": stratum.height - told.height})
    return pl.DataFrame(rows, schema=STRATA_SCHEMA)


def household_verdicts(counts: pl.DataFrame) -> pl.DataFrame:
    """`counts` with `households`: the stratum's pairs are two people with confidence
    `HOUSEHOLD_CONFIDENCE` (P(share of one-person pairs < 1/2) under Beta(1 + one
    person, 1 + two people), the regularised incomplete beta at 1/2)."""
    from scipy.special import betainc

    return counts.with_columns(pl.Series("households", [
        bool(betainc(1 + one, 1 + told - one, 0.5) >= HOUSEHOLD_CONFIDENCE)
        for one, told in counts.select("one_person", "pairs_that_tell").iter_rows()],
        dtype=pl.Boolean))


def household_reasons(x: pl.DataFrame, strata: pl.DataFrame, n: int) -> pl.Series:
    """The household reason of each of `n` pairs (`x`: `household_evidence` over them),
    null where none: an undecided pair of a stratum whose verdict is households."""
    reasons: dict[int, str] = {}
    for shares, one, told, households in strata.select(
            "contact", "one_person", "pairs_that_tell", "households").iter_rows():
        if not households:
            continue
        undecided = x.filter((pl.col("contact") == shares) & pl.col("birth_agrees").is_null())
        for i, a, b in undecided.select("i", "first_l", "first_r").iter_rows():
            reasons[i] = (f"first names differ ({a} / {b}) with no birth date to tell; "
                          + _household_evidence(shares, one, told))
    return pl.Series("household", [reasons.get(i) for i in range(n)], dtype=pl.String)


def _household_evidence(shares: bool, one: int, told: int) -> str:
    return (_stratum_counts(shares, one, told) + "would link without first name and birth "
            "date and differ on first names agree on the birth date: such pairs are two "
            "people, a household")


_STRATUM_WHAT = {True: "share an e-mail or phone", False: "share no e-mail or phone"}


def _stratum_counts(shares: bool, one: int | str, told: int | str) -> str:
    """The part of a household reason that quotes its stratum's counts."""
    return f"in this data, {one} of the {told} pairs that {_STRATUM_WHAT[shares]}, "


def recount_household_evidence(reason: pl.Expr, strata: pl.DataFrame) -> pl.Expr:
    """`reason` (a link's contradiction or reason) with the counts a
    `household_by_evidence` reason quotes brought up to `strata`: a pair's household
    reason stands while its stratum says households, but the counts are the whole
    data's."""
    out = reason
    for shares, one, told in strata.select("contact", "one_person", "pairs_that_tell").iter_rows():
        stale = "with no birth date to tell; " + _stratum_counts(shares, r"\d+", r"\d+")
        fresh = "with no birth date to tell; " + _stratum_counts(shares, one, told)
        out = out.str.replace(stale, fresh.replace("$", "$$"))
    return out


def contradictions(pairs: pl.DataFrame, features: pl.DataFrame, guards: Guards,
                   con: duckdb.DuckDBPyConnection) -> pl.Series:
    """`contradiction_sql` for each (node_l, node_r) of `pairs`, in order."""
    if not guards.contradictions:  # no hard rule switched on (the default)
        return pl.Series("contradiction", [None] * pairs.height, dtype=pl.String)
    out = _sql(con, f"""
        SELECT p.i, {contradiction_sql(guards, "''")} AS c
        FROM p JOIN f l ON l.node_id = p.node_l JOIN f r ON r.node_id = p.node_r
    """, p=pairs.select("node_l", "node_r").with_row_index("i"),
        f=features.select("node_id", "first_name", "last_name", "birth_date", "first_names"))
    return out.sort("i")["c"].alias("contradiction")


def _sql(con: duckdb.DuckDBPyConnection, query: str, **frames: pl.DataFrame) -> pl.DataFrame:
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        return con.sql(query).pl()
    finally:
        for name in frames:
            con.unregister(name)


def deterministic_pairs(keys: pl.DataFrame, shared: pl.DataFrame, merges: pl.DataFrame,
                        features: pl.DataFrame, guards: Guards,
                        con: duckdb.DuckDBPyConnection
                        ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(links, held, shared): record pairs that link deterministically, one row per pair
    (`rule`: the strongest kind they share; `evidence`: every kind); pairs held back,
    with the contradiction; and `shared` with `guard` filled in for contested values.

    An e-mail or phone is contested when two of its holders contradict each other
    (`contested_sql`: first names clearly different, birth dates more than a keying
    error apart, last names different on a phone, which carriers recycle). A contested
    value links none of its holders by itself (a family mailbox, a recycled number, or
    one person whose first name changed: the data must tell which); its pairs are held
    and left to the probabilistic model and the household guard.
    A contested value is a *family's* (`held`'s `family`) when one source holds two of
    its holders under clearly different first names, neither held by the other before
    and neither record merged away: a source rarely holds one person twice under two
    names (its duplicates carry typos), so the value is shared by two people. Pairs that
    share only such values do not link on sharing an e-mail *and* a phone (`household`).
    Asserted links always hold: Salesforce merges, and a Segment anonymous id shared
    with the user it was identified as (never contested).
    """
    open_values = shared.filter(pl.col("guard").is_null()).select("kind", "value")
    bit = {k: 1 << i for i, k in enumerate(DETERMINISTIC_RULES)}
    bits = "CASE kind " + " ".join(f"WHEN '{k}' THEN {b}" for k, b in bit.items()) + " END"
    # Pairs per shared value with their contradictions (a DuckDB temp table), the
    # contested values, and one row per pair with the kinds it shares through open and
    # through contested values.
    frames = {"keys": keys, "open_values": open_values,
              "f": features.select("node_id", "first_name", "last_name", "birth_date",
                                   "first_names"),
              "merged": merges.select("node_id")}
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE c360_value_pairs AS
            WITH k AS (SELECT keys.* FROM keys JOIN open_values USING (kind, value)),
            p AS (SELECT a.kind, a.value, a.node_id AS node_l, b.node_id AS node_r,
                         a.source_system = b.source_system AS same_source
                  FROM k a JOIN k b ON a.kind = b.kind AND a.value = b.value
                                    AND a.node_id < b.node_id)
            SELECT p.kind, p.value, p.node_l, p.node_r, {contested_sql(guards)} AS contradiction,
                   p.same_source AND p.node_l NOT IN (SELECT node_id FROM merged)
                   AND p.node_r NOT IN (SELECT node_id FROM merged) AS same_source
            FROM p JOIN f l ON l.node_id = p.node_l JOIN f r ON r.node_id = p.node_r""")
        asserted = ", ".join(f"'{k}'" for k in ASSERTED_RULES)
        contested = con.sql(f"""
            SELECT kind, value,
                   'its holders contradict each other: ' || why
                   || CASE WHEN family THEN '; a family''s: one source holds two of its '
                                            || 'holders under different first names'
                      ELSE '' END AS _why,
                   family
            FROM (SELECT kind, value, min(contradiction) AS why,
                         bool_or(same_source AND starts_with(contradiction,
                                                             'first names differ')) AS family
                  FROM c360_value_pairs
                  WHERE contradiction IS NOT NULL AND kind NOT IN ({asserted})
                  GROUP BY kind, value)
        """).pl()
        con.register("contested", contested.to_arrow())
        per_pair = con.sql(f"""
            SELECT node_l, node_r,
                   coalesce(bit_or({bits}) FILTER (WHERE v._why IS NULL), 0) AS open_bits,
                   coalesce(bit_or({bits}) FILTER (WHERE v._why IS NOT NULL), 0) AS held_bits,
                   min(v._why) AS contradiction,
                   coalesce(bool_or(v.family), false) AS family
            FROM c360_value_pairs LEFT JOIN contested v USING (kind, value)
            GROUP BY node_l, node_r
        """).pl()
    finally:
        con.execute("DROP TABLE IF EXISTS c360_value_pairs")
        for name in (*frames, "contested"):
            con.unregister(name)
    # Kinds as bits -> the strongest kind (rule) and all kinds (evidence), by lookup.
    kinds = {m: [k for k, b in bit.items() if m & b] for m in range(1, 1 << len(bit))}
    rule = {m: ks[0] for m, ks in kinds.items()}
    evidence = {m: ",".join(sorted(ks)) for m, ks in kinds.items()}

    def named(col: str) -> list[pl.Expr]:
        return [pl.col(col).replace_strict(rule, return_dtype=pl.String).alias("rule"),
                pl.col(col).replace_strict(evidence, return_dtype=pl.String).alias("evidence")]

    links = per_pair.filter(pl.col("open_bits") > 0).select(
        "node_l", "node_r", *named("open_bits"))
    held = per_pair.filter(pl.col("open_bits") == 0).select(
        "node_l", "node_r", *named("held_bits"), "contradiction", "family")
    merge_links = (merges.join(features.select("node_id"), on="node_id", how="semi")
                   .join(features.select("node_id"), left_on="master", right_on="node_id",
                         how="semi")
                   .select(pl.min_horizontal("node_id", "master").alias("node_l"),
                           pl.max_horizontal("node_id", "master").alias("node_r"),
                           pl.lit("salesforce_merge").alias("rule"),
                           pl.lit("salesforce_merge").alias("evidence")))
    links = (pl.concat([merge_links, links.select(list(PAIRS_SCHEMA))])
             .unique(["node_l", "node_r"], keep="first", maintain_order=True)
             .sort("node_l", "node_r"))
    # A pair linked through another value (or a merge) is not held.
    held = held.join(links, on=["node_l", "node_r"], how="anti")
    shared = shared.join(contested, on=["kind", "value"], how="left").with_columns(
        pl.coalesce("guard", pl.format("contested, {}", "_why")).alias("guard")).drop(
        "_why", "family")
    return links, held, shared


def components(node_ids: pl.Series, links: pl.DataFrame) -> pl.Series:
    """Connected-component label (int) of each node of `node_ids` (sorted, unique) under
    `links` (node_l, node_r)."""
    n = node_ids.len()
    if links.height == 0:
        return pl.Series("component", np.arange(n), dtype=pl.Int64)
    index = pl.DataFrame({"node_id": node_ids, "i": np.arange(n)})
    ends = (links.select("node_l", "node_r")
            .join(index.rename({"node_id": "node_l", "i": "a"}), on="node_l")
            .join(index.rename({"node_id": "node_r", "i": "b"}), on="node_r"))
    a, b = ends["a"].to_numpy(), ends["b"].to_numpy()
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return pl.Series("component", labels, dtype=pl.Int64)


# ---------------------------------------------------------------------------- blocking

# Blocking for the probabilistic model: pairs agreeing on one of these rules are scored.
# A rule is a tuple of `column` (equal on both sides) or `left=right` (the left record's
# column equals the right record's: names swapped between fields). Each is selective
# enough at 1M records; a key held by more than BLOCK_SIZE_LIMIT records (a default
# postal code, a placeholder date) is skipped.
BLOCKING_RULES: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name", "birth_date"),
    ("first_name", "postal_code"),
    ("last_name", "postal_code"),
    ("street", "postal_code"),
    ("last_name", "birth_date"),
    ("first_name", "birth_date"),
    ("birth_date", "postal_code"),
    ("birth_date", "city"),
    ("first_name", "last_name"),
    ("first_name", "city"),
    ("last_name", "city"),
    ("street",),
    ("first_name=last_name", "last_name=first_name"),
    # One name in the other field (the other name corrupted), at one postcode.
    ("first_name=last_name", "postal_code"),
    ("email",),
    ("phone",),
    # Typos in both names: the first three letters of one name and the postcode.
    ("first3", "postal_code"),
    ("last3", "postal_code"),
    ("first3", "last3", "birth_date"),
)
BLOCK_SIZE_LIMIT = 10
# Blocking-only columns derived from the features.
BLOCKING_COLUMNS = {"first3": pl.col("first_name").str.slice(0, 3),
                    "last3": pl.col("last_name").str.slice(0, 3)}


def _rule_sides(rule: tuple[str, ...]) -> tuple[list[str], list[str], list[list[str]]]:
    """A blocking rule's left columns, right columns and (left, right) pairs."""
    sides = [term.split("=") if "=" in term else [term, term] for term in rule]
    return [a for a, _ in sides], [b for _, b in sides], sides


def blocking_frame(features: pl.DataFrame) -> pl.DataFrame:
    """node_id, the compared columns and the blocking-only ones (`BLOCKING_COLUMNS`)."""
    return features.select("node_id", *COMPARED).with_columns(
        *[expr.alias(name) for name, expr in BLOCKING_COLUMNS.items()])


# Two independent hashes of each blocking value (seeds; 64 and 32 bits kept): a key's
# rows are found by the first and counted by both (`Blocking`).
_HASH_SEEDS = ((360, 64), (0x5EED, 32))  # (seed, bits kept): 96 bits for a key's count
_HASH_MIX = 0x9E3779B97F4A7C15  # odd: a key's column hashes combine in order


def _value_hashes(frame: pl.DataFrame, seed: int, bits: int = 64) -> pl.DataFrame:
    """A hash of every value column of `frame` (not node_id), its low `bits` (64 or 32);
    null for null."""
    def one(c: str) -> pl.Expr:
        h = pl.col(c).hash(seed)
        if bits == 32:
            h = (h & 0xFFFFFFFF).cast(pl.UInt32)
        return pl.when(pl.col(c).is_not_null()).then(h).alias(c)
    return frame.select(one(c) for c in frame.columns if c != "node_id")


def _key_hash(columns: list[str]) -> pl.Expr:
    """One unsigned integer per row for the values of `columns`, from their hashes
    (columns of the same names); null where a value is."""
    combined = pl.col(columns[0])
    for c in columns[1:]:
        combined = combined * _HASH_MIX ^ pl.col(c)
    return combined.alias("_key")


@dataclass
class Blocking:
    """The records' blocking frame (`blocking_frame`) and, row by row, two independent
    hashes of each of its value columns (64 and 32 bits). The rows and the block sizes of
    a few keys then come from a pass over integer columns instead of the strings:
    `rows_keyed` narrows the rows down by the first hash and lets the values decide;
    `sizes` counts by both (two different keys agreeing on both, odds about 2^-96 a pair,
    would be counted as one block)."""
    frame: pl.DataFrame
    hashes: tuple[pl.DataFrame, pl.DataFrame]

    @classmethod
    def of(cls, features: pl.DataFrame) -> Blocking:
        frame = blocking_frame(features)
        first, second = (_value_hashes(frame, seed, bits) for seed, bits in _HASH_SEEDS)
        return cls(frame, (first, second))

    def _keyed(self, keys: pl.DataFrame, on: list[str]) -> tuple[pl.DataFrame, pl.Series]:
        """`keys` with their two key hashes (`_key`, `_key2`), and the mask of the rows
        whose first key hash is one of theirs."""
        first, second = (_value_hashes(keys.select(on), seed, bits).select(_key_hash(on))
                         .to_series() for seed, bits in _HASH_SEEDS)
        keys = keys.with_columns(first.alias("_key"), second.alias("_key2"))
        mask = self.hashes[0].select(
            _key_hash(on).is_in(first.implode()).fill_null(False)).to_series()
        return keys, mask

    def rows_keyed(self, keys: pl.DataFrame, on: list[str],
                   frame: pl.DataFrame | None = None) -> pl.DataFrame:
        """The rows of `frame` (the blocking frame, or one row-aligned with it) whose
        columns `on` equal a row of `keys` (columns `on`, no nulls)."""
        frame = self.frame if frame is None else frame
        _, mask = self._keyed(keys, on)
        return frame.filter(mask).join(keys.select(on), on=on, how="semi")

    def sizes(self, keys: pl.DataFrame, on: list[str]) -> pl.DataFrame:
        """`keys` (columns `on`, no nulls, unique) with `len`: how many records hold each
        (0 for none)."""
        keys, mask = self._keyed(keys, on)
        hashed = pl.concat([h.select(on).filter(mask).select(_key_hash(on).alias(name))
                            for h, name in zip(self.hashes, ("_key", "_key2"), strict=True)],
                           how="horizontal")
        counted = hashed.group_by("_key", "_key2").len()
        return (keys.join(counted, on=["_key", "_key2"], how="left")
                .with_columns(pl.col("len").fill_null(0).cast(pl.UInt32))
                .drop("_key", "_key2"))


def candidate_pairs(features: pl.DataFrame, component: pl.Series, extra: pl.DataFrame,
                    con: duckdb.DuckDBPyConnection, focus: pl.Series | None = None,
                    blocking: Blocking | None = None) -> pl.DataFrame:
    """node_l < node_r pairs to score: agreeing on a blocking rule, or listed in `extra`
    (held pairs), and not already in one deterministic component; `match_key` names the
    first rule that produced the pair. With `focus` (node ids), only the pairs with an
    end among them (block sizes still count every record). `blocking`:
    `Blocking.of(features)`, if at hand."""
    in_focus = (pl.col("node_id").is_in(focus.implode()) if focus is not None
                else pl.lit(True))
    if focus is not None and blocking is None:
        blocking = Blocking.of(features)
    f = (blocking_frame(features) if blocking is None else blocking.frame).with_columns(
        component, in_focus.alias("in_focus"))
    focused = f.filter("in_focus") if focus is not None else None
    # The records the rules read: every one (`f`), or focused, the `s<i>`, `r<i>` below.
    frames = {"f": f} if focused is None else {}
    parts = []
    for i, rule in enumerate(BLOCKING_RULES):
        left, right, sides = _rule_sides(rule)
        src = rows = "f"
        if focused is not None:
            # Focused, only the blocks a focus record is in are counted (the left side of
            # a swapped-columns rule: those keyed by a focus record's left or right
            # columns). The rules read only the records of those blocks that can make a
            # pair within the size limit (each block whole: `s<i>`) and, for a swapped
            # rule, the records whose right columns meet one of them (`r<i>`), not every
            # record.
            assert blocking is not None
            keys = focused.select(left)
            if right != left:
                keys = pl.concat([keys, focused.select(
                    [pl.col(b).alias(a) for a, b in sides])])
            least = 2 if left == right else 1  # a pair within the block, or across
            keys = (blocking.sizes(keys.drop_nulls().unique(), left)
                    .filter(pl.col("len").is_between(least, BLOCK_SIZE_LIMIT)).drop("len"))
            narrow = f.select("node_id", "component", "in_focus", *dict.fromkeys(left + right))
            src = rows = f"s{i}"
            frames[src] = blocking.rows_keyed(keys, left, narrow)
            if right != left:
                rows = f"r{i}"
                frames[rows] = blocking.rows_keyed(
                    keys.rename(dict(zip(left, right, strict=True))), right, narrow)
        if left == right:
            # Blocks of 2..limit records spanning more than one component: records meet
            # only within their block (the block id is a hash of the key; a collision
            # would only add pairs to score).
            key = ", ".join(left)
            parts.append(f"""
            SELECT * FROM (
              WITH x AS (
                SELECT hash({key}) AS block, node_id, component, in_focus FROM {rows}
                SEMI JOIN (SELECT {key} FROM {src}
                           WHERE {" AND ".join(f"{c} IS NOT NULL" for c in left)}
                           GROUP BY {key}
                           HAVING count(*) BETWEEN 2 AND {BLOCK_SIZE_LIMIT}
                              AND count(DISTINCT component) > 1
                              AND bool_or(in_focus)) USING ({key}))
              SELECT a.node_id AS node_l, b.node_id AS node_r, {i} AS match_key
              FROM x a JOIN x b ON a.block = b.block AND a.node_id < b.node_id
                                AND a.component <> b.component
                                AND (a.in_focus OR b.in_focus))""")
            continue
        on = " AND ".join(f"a.{x} = b.{y}" for x, y in sides)
        parts.append(f"""
            SELECT least(a.node_id, b.node_id) AS node_l,
                   greatest(a.node_id, b.node_id) AS node_r, {i} AS match_key
            FROM (SELECT * FROM {src}
                  WHERE {" AND ".join(f"{c} IS NOT NULL" for c in left)}
                  QUALIFY count(*) OVER (PARTITION BY {", ".join(left)})
                          <= {BLOCK_SIZE_LIMIT}) a
            JOIN (SELECT * FROM {rows}
                  WHERE {" AND ".join(f"{c} IS NOT NULL" for c in right)}) b
              ON {on} AND a.node_id <> b.node_id AND a.component <> b.component
                 AND (a.in_focus OR b.in_focus)""")
    ends = pl.concat([extra["node_l"], extra["node_r"]]).implode()
    frames["e"] = f.filter(pl.col("node_id").is_in(ends))  # the held pairs' records
    parts.append(f"""
        SELECT x.node_l, x.node_r, {len(BLOCKING_RULES)} AS match_key FROM extra x
        JOIN e a ON a.node_id = x.node_l JOIN e b ON b.node_id = x.node_r
        WHERE a.component <> b.component AND (a.in_focus OR b.in_focus)""")
    query = (" UNION ALL ".join(parts))
    return _sql(con, f"""
        SELECT node_l, node_r, min(match_key) AS match_key FROM ({query})
        GROUP BY node_l, node_r ORDER BY node_l, node_r
    """, **frames, extra=extra.select("node_l", "node_r"))


def blocks_over_the_limit_changed(old: pl.DataFrame, new: pl.DataFrame,
                                  nodes: pl.Series, blocking: Blocking | None = None
                                  ) -> pl.Series:
    """The records whose candidate pairs may change without them changing: the members of
    a block that `nodes` pushed over `BLOCK_SIZE_LIMIT` or brought back under it, between
    the features `old` and `new` (a block over the limit makes no pairs at all). For a
    rule with swapped columns, the records on the other side of such a block too.

    `nodes` must hold every record whose features differ between `old` and `new` (new and
    gone ones too): the other records are the same in both, so a block's size before is
    its size now, less its members among `nodes` now, plus those before, and only the
    `nodes` rows of `old` are read. `blocking`: `Blocking.of(new)`, if at hand."""
    ids = nodes.implode()
    blocking = Blocking.of(new) if blocking is None else blocking
    new_f = blocking.frame
    old_t = blocking_frame(old.filter(pl.col("node_id").is_in(ids)))
    new_t = new_f.filter(pl.col("node_id").is_in(ids))
    out = [pl.Series("node_id", [], dtype=pl.String)]
    for rule in BLOCKING_RULES:
        left, right, _ = _rule_sides(rule)
        keys = pl.concat([t.select(left) for t in (old_t, new_t)]).drop_nulls().unique()
        if keys.height == 0:
            continue
        gone, came = (f.join(keys, on=left, how="semi").group_by(left).len()
                      for f in (new_t, old_t))
        flipped = (blocking.sizes(keys, left).rename({"len": "after"})
                   .join(gone.rename({"len": "gone"}), on=left, how="left")
                   .join(came.rename({"len": "came"}), on=left, how="left")
                   .with_columns(pl.col("after", "gone", "came").fill_null(0).cast(pl.Int64))
                   .filter((pl.col("after") - pl.col("gone") + pl.col("came")
                            <= BLOCK_SIZE_LIMIT) != (pl.col("after") <= BLOCK_SIZE_LIMIT))
                   .select(left))
        if flipped.height == 0:
            continue
        # Members before: those now that were not in `nodes`, and `nodes` as they were.
        on_right = flipped.rename(dict(zip(left, right, strict=True)))
        out.append(blocking.rows_keyed(flipped, left)["node_id"])
        out.append(old_t.join(flipped, on=left, how="semi")["node_id"])
        if right != left:
            out.append(blocking.rows_keyed(on_right, right)["node_id"])
            out.append(old_t.join(on_right, on=right, how="semi")["node_id"])
    return pl.concat(out).unique().sort()


# ---------------------------------------------------------------------------- clusters


@dataclass
class Clustering:
    cluster: pl.Series  # cluster label per node (aligned with the features' node order)
    accepted: pl.DataFrame  # probabilistic links that joined two clusters
    refused: pl.DataFrame  # at or above the threshold but refused (+ reason)


def _names_agree(a: set[tuple], b: set[tuple], min_similarity: float) -> bool:
    """Some (first, last) name of `a` resembles one of `b`: first names alike, or first
    and last names swapped."""
    def like(x: str | None, y: str | None) -> bool:
        return x is not None and y is not None and (
            x == y or jaro_winkler_similarity(x, y) >= min_similarity)
    return any(like(fa, fb) or (like(fa, lb) and like(la, fb))
               for fa, la in a for fb, lb in b)


def _dates_agree(a: set[str], b: set[str]) -> bool:
    """Some birth date of `a` is one of `b`, or one keying error away from it."""
    return any(x == y or damerau_levenshtein_distance(x, y) <= 1 for x in a for y in b)


def cluster(features: pl.DataFrame, component: pl.Series, scored: pl.DataFrame,
            threshold: float, guards: Guards, disagreement: dict[str, float] | None = None
            ) -> Clustering:
    """Join deterministic components with probabilistic links (`scored`: node_l, node_r,
    match_weight, contradiction) at or above `threshold`, strongest first.

    Refused: a pair with a `contradiction` (a hard rule, the household guard, an
    unsupported pair), and a link that would chain two clusters against the evidence of
    their other records: the pair's own first names (birth dates) agree or one is
    missing, yet no first name (birth date) of one side resembles one of the other's,
    and the link's weight plus what the model says such a disagreement is worth
    (`disagreement`: comparison -> the weight of its "all other" level) falls below
    the threshold. A pair whose own values differ was weighed by the model already. With
    a hard rule on, any cluster-level disagreement on it refuses.
    """
    comp = component.to_numpy()
    strong = (scored.filter(pl.col("match_weight") >= threshold)
              .sort(["match_weight", "node_l", "node_r"], descending=[True, False, False]))
    parent = np.arange(comp.max() + 1 if comp.size else 0)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    births: dict[int, set] = {}
    names: dict[int, set] = {}
    rows = features.select("node_id").with_row_index("i")
    strong = (strong.join(rows.rename({"node_id": "node_l", "i": "il"}), on="node_l",
                          maintain_order="left")
              .join(rows.rename({"node_id": "node_r", "i": "ir"}), on="node_r",
                    maintain_order="left"))
    # Each strong pair's own names and birth dates (fl, ll, bl / fr, lr, br).
    own = features.select(pl.col("first_name").alias("f"), pl.col("last_name").alias("l"),
                          pl.col("birth_date").alias("b"))
    strong = strong.with_columns(
        *[own[c].gather(strong["il"]).alias(f"{c}l") for c in own.columns],
        *[own[c].gather(strong["ir"]).alias(f"{c}r") for c in own.columns])
    if strong.height:
        # Evidence of the components the links touch (all others never meet a link).
        involved = pl.Series(np.unique(comp[np.concatenate([strong["il"].to_numpy(),
                                                            strong["ir"].to_numpy()])]))
        frame = (pl.DataFrame({"c": comp}).with_columns(
            features["birth_date"].alias("d"), features["first_name"].alias("f"),
            features["last_name"].alias("l")).filter(pl.col("c").is_in(involved.implode())))
        for c, d in frame.select("c", "d").drop_nulls().unique().iter_rows():
            births.setdefault(c, set()).add(d)
        for c, f, la in frame.filter(pl.col("f").is_not_null()).select("c", "f", "l").unique() \
                .iter_rows():
            names.setdefault(c, set()).add((f, la))
        held_before = (pl.DataFrame({"c": comp}).with_columns(
            features["first_names"].alias("fs"), features["last_name"].alias("l"))
            .filter(pl.col("c").is_in(involved.implode()) & (pl.col("fs").list.len() > 1))
            .explode("fs"))
        for c, f, la in held_before.select("c", "fs", "l").unique().iter_rows():
            names.setdefault(c, set()).add((f, la))
    hard = guards.contradictions
    t = guards.first_name_min_similarity
    penalty, inf = disagreement or {}, float("inf")
    accepted, refused = [], []
    for node_l, node_r, weight, why, il, ir, fl, ll, bl, fr, lr, br in strong.select(
            "node_l", "node_r", "match_weight", "contradiction", "il", "ir",
            "fl", "ll", "bl", "fr", "lr", "br").iter_rows():
        a, b = find(comp[il]), find(comp[ir])
        if a == b:
            continue
        if why is None:
            ba, bb = births.get(a), births.get(b)
            na, nb = names.get(a), names.get(b)
            pair_births = ({bl}, {br}) if bl and br else None
            pair_names = ({(fl, ll)}, {(fr, lr)}) if fl and fr else None
            if (ba and bb and not _dates_agree(ba, bb)
                    and ("birth_dates_differ" in hard
                         or ((pair_births is None or _dates_agree(*pair_births))
                             and weight + penalty.get("birth_date", -inf) < threshold))):
                why = ("cluster birth dates differ (" + ", ".join(sorted(ba)) + " / "
                       + ", ".join(sorted(bb)) + ")")
            elif (na and nb and not _names_agree(na, nb, t)
                  and ("first_names_differ" in hard
                       or ((pair_names is None or _names_agree(*pair_names, t))
                           and weight + penalty.get("first_name", -inf) < threshold))):
                why = ("cluster first names differ ("
                       + ", ".join(sorted({f for f, _ in na})) + " / "
                       + ", ".join(sorted({f for f, _ in nb})) + ")")
        if why is not None:
            refused.append((node_l, node_r, weight, why))
            continue
        keep, gone = min(a, b), max(a, b)
        parent[gone] = keep
        for sets in (births, names):
            merged = sets.pop(gone, set()) | sets.get(keep, set())
            if merged:
                sets[keep] = merged
        accepted.append((node_l, node_r, weight))
    # An unnamed record on a contested value: linked only when every holder it could
    # belong to ended up one person (a name changer's records), never between two.
    unknown = strong.filter(pl.col("contradiction") == UNKNOWN_HOLDER)
    if unknown.height:
        unnamed = (features["first_name"].is_null() & features["birth_date"].is_null()).to_numpy()
        options: dict[int, list[tuple]] = {}
        for node_l, node_r, weight, il, ir in unknown.select(
                "node_l", "node_r", "match_weight", "il", "ir").iter_rows():
            for mine, other in ((il, ir), (ir, il)):
                if unnamed[mine] and not unnamed[other]:
                    options.setdefault(mine, []).append((other, node_l, node_r, weight))
        late: set[tuple[str, str]] = set()
        for mine, choices in sorted(options.items()):
            holders = {find(comp[other]) for other, *_ in choices}
            own = find(comp[mine])
            if names.get(own) or births.get(own):
                continue  # its person has names of its own: not an unnamed record
            if len(holders) == 1 and own not in holders:
                (target,) = holders
                keep, gone = min(own, target), max(own, target)
                parent[gone] = keep
                _, node_l, node_r, weight = max(choices, key=lambda c: c[3])
                accepted.append((node_l, node_r, weight))
                late.add((node_l, node_r))
        refused = [r for r in refused if (r[0], r[1]) not in late]
    roots = np.fromiter((find(c) for c in comp), dtype=np.int64, count=comp.size)
    return Clustering(
        pl.Series("cluster", roots),
        pl.DataFrame(accepted, schema={"node_l": pl.String, "node_r": pl.String,
                                       "match_weight": pl.Float64}, orient="row"),
        pl.DataFrame(refused, schema={"node_l": pl.String, "node_r": pl.String,
                                      "match_weight": pl.Float64, "reason": pl.String},
                     orient="row"))


def person_ids(features: pl.DataFrame, clusters: pl.Series) -> pl.Series:
    """`p_` + 16 hex of sha256(oldest record's node id), per node: the oldest record is
    the earliest record time, then the smallest node id."""
    order = pl.col("i")
    if not features["node_id"].is_sorted():  # the row order stands for the node-id order
        order = pl.col("node_id")
    frame = (features.select("node_id", "record_time").with_row_index("i")
             .with_columns(clusters.alias("cluster")))
    oldest = (frame.select("i", "record_time", "cluster")
              .sort(pl.col("record_time"), order, nulls_last=True)
              if order.meta.output_name() == "i" else
              frame.sort("record_time", "node_id", nulls_last=True))
    oldest = oldest.group_by("cluster", maintain_order=True).agg(pl.col("i").first())
    ids = features["node_id"].gather(oldest["i"])
    oldest = oldest.with_columns(("p_" + sha256(ids).str.slice(0, 16)).alias("person_id"))
    return (frame.select("cluster").join(oldest.select("cluster", "person_id"), on="cluster",
                                         how="left", maintain_order="left")["person_id"])


def identity_rows(features: pl.DataFrame, persons: pl.Series, links: pl.DataFrame,
                  accepted: pl.DataFrame, probability: pl.DataFrame) -> pl.DataFrame:
    """node_id, person_id, rule, confidence, matched_on per record: how the record holds
    to its person - its strongest deterministic link (rule = the strongest kind shared,
    matched_on = every kind its links share, confidence 1), else its best accepted
    probabilistic link (rule `probabilistic`, confidence = match probability, matched_on
    = the comparisons that counted for the match), else `singleton`.
    `probability`: node_l, node_r, match_probability, matched_on."""
    bit = {r: 1 << i for i, r in enumerate(DETERMINISTIC_RULES)}
    # Evidence kinds as bits: per record an OR over its links, no string work per link.
    mask = pl.lit(0, pl.Int32)
    for rule, b in bit.items():
        mask = mask + pl.col("evidence").str.contains(rule, literal=True).cast(pl.Int32) * b
    coded = links.select("node_l", "node_r", mask.alias("bits"))
    det = (pl.concat([coded.select(pl.col("node_l").alias("node_id"), "bits"),
                      coded.select(pl.col("node_r").alias("node_id"), "bits")])
           .group_by("node_id").agg(pl.col("bits").bitwise_or()))
    names = {m: [r for r, b in bit.items() if m & b] for m in range(1, 1 << len(bit))}
    det = det.with_columns(
        pl.col("bits").replace_strict({m: n[0] for m, n in names.items()},
                                      return_dtype=pl.String).alias("rule"),
        pl.col("bits").replace_strict({m: ",".join(sorted(n)) for m, n in names.items()},
                                      return_dtype=pl.String).alias("matched_on"),
        pl.lit(1.0).alias("confidence"))

    def both(f: pl.DataFrame) -> pl.DataFrame:
        rest = [c for c in f.columns if c not in ("node_l", "node_r")]
        return pl.concat([f.select(pl.col("node_l").alias("node_id"), *rest),
                          f.select(pl.col("node_r").alias("node_id"), *rest)])

    prob = (both(accepted.join(probability, on=["node_l", "node_r"], how="left"))
            .group_by("node_id").agg(
                pl.col("match_probability").max().alias("confidence"),
                pl.col("matched_on").sort_by("match_probability").last())
            .with_columns(pl.lit("probabilistic").alias("rule")))
    how = pl.concat([det.select("node_id", "rule", "confidence", "matched_on"),
                     prob.join(det, on="node_id", how="anti")
                     .select("node_id", "rule", "confidence", "matched_on")])
    return (features.select("node_id").with_columns(persons.alias("person_id"))
            .join(how, on="node_id", how="left", maintain_order="left")
            .with_columns(pl.col("rule").fill_null("singleton"),
                          pl.col("confidence").fill_null(1.0)))


def identity_events(previous: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """Person merges and splits between two identity tables (node_id, person_id).

    For each (old person, new person) pair, old != new, that records moved between:
    `MERGED_INTO` when the old id no longer exists (absorbed), `SPLIT` when it still
    does (part of it left). Records that are new have no old person and log nothing.
    """
    moved = (previous.select("node_id", pl.col("person_id").alias("from_person_id"))
             .join(current.select("node_id", pl.col("person_id").alias("to_person_id")),
                   on="node_id", how="inner")
             .filter(pl.col("from_person_id") != pl.col("to_person_id"))
             .group_by("from_person_id", "to_person_id").agg(pl.len().alias("records_moved")))
    alive = current.select(pl.col("person_id").unique().alias("from_person_id"))
    return (moved.join(alive.with_columns(pl.lit(True).alias("_alive")), on="from_person_id",
                       how="left")
            .select(pl.when(pl.col("_alive")).then(pl.lit("SPLIT")).otherwise(
                pl.lit("MERGED_INTO")).alias("event_type"),
                "from_person_id", "to_person_id",
                pl.col("records_moved").cast(pl.Int64))
            .sort("event_type", "from_person_id", "to_person_id"))
