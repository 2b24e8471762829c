"""Build `silver/identity` from the silver graph, incrementally.

A run after a complete one is scoped (`resolve_scoped`): the record change log says
which records' edges changed since (`lib/change_log.py`); only those edges are read, and
each changed record's features, merges and identifying values are compared with the
stored ones (`identity_features`, `identity_keys`: a fingerprint per record). The
touched records, and what they can reach (their groups, the holders of their values,
blocks they pushed over the limit, merge partners), are resolved again; the rest is
kept. The result equals a full resolution, by construction and by
tests/scenarios/test_scoped_identity.py.

Otherwise (the first run, a new model or config, a log that cannot tell, a changed
household verdict, a region over half the records) every record is resolved
(`resolve`); stored scores of pairs whose records did not change are reused (a score
depends on the two records and the model only). A changed model, guard config or
nickname table rescores everything. Either way only identity rows that changed are
rewritten (their `resolved_at` is this run), and person merges and splits against the
previous run are appended to `identity_events`.

Tables under `<lake>/silver/`:
* `identity` (node_id, person_id, rule, confidence, matched_on, resolved_at, bucket);
* `identity_events` (append-only: event_type MERGED_INTO | SPLIT, from/to person,
  records moved, resolved_at);
* working tables `identity_links` (every link, held pair and scored candidate with its
  status and reason: what `c360 explain` reads), `identity_features` and
  `identity_keys` (what identity reads of each record) and `identity_shared_values`
  (identifying values held by more than one record, with the guard that stops them
  linking, if any).

A state file (`_identity_state.json`) holds the silver versions, model and config
fingerprints, the previous largest cluster, the household strata (counts and verdicts)
and the data version each identity table had when the run finished: nothing changed
means nothing to do. It is written last, so a run that died part-way (`kill -9`) leaves
it describing the last complete run, while a table has changed since: the next run sees
that and trusts nothing of the half-written state. It resolves every record and
rescores every pair (no reuse of stored scores), and computes merges and splits against
the identity of the last complete run (read at its recorded version), skipping events
the dead run already appended. Its result equals a clean run's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from c360_assets.lib import change_log, delta, failpoints, layout
from c360_assets.lib.config import IdentityConfig
from c360_assets.lib.hashing import bucket_of
from c360_assets.silver import identity as idn
from c360_assets.silver.build import NODES, RELATIONSHIPS
from c360_assets.silver.identity_model import Model, disagreement_weights, nicknames, score

IDENTITY = "identity"
EVENTS = "identity_events"
LINKS = "identity_links"
FEATURES = "identity_features"
SHARED = "identity_shared_values"
KEYS = "identity_keys"
STATE_FORMAT = 1

IDENTITY_SCHEMA = pl.Schema({
    "node_id": pl.String(), "person_id": pl.String(), "rule": pl.String(),
    "confidence": pl.Float64(), "matched_on": pl.String(),
    "resolved_at": pl.Datetime("us", "UTC"), "bucket": pl.Int32(),
})
EVENTS_SCHEMA = pl.Schema({
    "event_type": pl.String(), "from_person_id": pl.String(), "to_person_id": pl.String(),
    "records_moved": pl.Int64(), "resolved_at": pl.Datetime("us", "UTC"),
})
KEYS_SCHEMA = pl.Schema({"node_id": pl.String(), "source_system": pl.String(),
                         "kind": pl.String(), "value": pl.String()})
LINKS_SCHEMA = pl.Schema({
    "node_l": pl.String(), "node_r": pl.String(), "rule": pl.String(),
    "evidence": pl.String(), "status": pl.String(), "reason": pl.String(),
    "contradiction": pl.String(), "match_weight": pl.Float64(), "match_probability": pl.Float64(),
    "weights": pl.String(),
})
# identity_features: each record's features, merges, fingerprint and group.
FEATURES_TABLE_SCHEMA = pl.Schema({**idn.FEATURES_SCHEMA, "merged_into": pl.List(pl.String()),
                                   "fingerprint": pl.Int64(), "group_id": pl.String()})


@dataclass
class IdentityReport:
    mode: str  # full | incremental (everything, stored scores reused) | scoped | no-op
    records: int = 0
    persons: int = 0
    records_touched: int = 0
    records_reassigned: int = 0  # identity rows rewritten (person, rule or evidence changed)
    records_reresolved: int = 0  # records whose identity was derived again (scoped: the region)
    merges: int = 0
    splits: int = 0
    largest_cluster: int = 0
    previous_largest_cluster: int | None = None
    links_by_rule: dict[str, int] = field(default_factory=dict)
    guarded_values: dict[str, int] = field(default_factory=dict)  # guard kind -> values
    pairs_scored: int = 0
    pairs_reused: int = 0
    held_pairs: int = 0
    refused_links: int = 0
    threshold: float = 0.0
    cluster_sizes: dict[str, int] = field(default_factory=dict)  # "1", "2", ..., "10+"
    versions: dict[str, int | None] = field(default_factory=dict)
    seconds: float = 0.0


class Laps:
    """Progress with the time each stage took: `lap("what")` reports since the last lap."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress, self.t = progress, time.perf_counter()

    def __call__(self, what: str) -> None:
        now = time.perf_counter()
        self.progress(f"identity: {what} ({now - self.t:.1f}s)")
        self.t = now



def _fingerprint(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_state(lake: Path) -> dict:
    p = layout.identity_state(lake)
    try:
        data = json.loads(p.read_text())
        return data if data.get("format") == STATE_FORMAT else {}
    except (OSError, ValueError):
        return {}


def _save_state(lake: Path, state: dict) -> None:
    layout.write_json_atomic(layout.identity_state(lake), {"format": STATE_FORMAT, **state})


def _read_previous(p: Path, schema: pl.Schema, version: int | None = None) -> pl.DataFrame:
    if not delta.table_exists(p):
        return pl.DataFrame(schema=schema)
    return (delta.read_table(p, version=version)  # type: ignore[arg-type]
            .select(list(schema)).cast(dict(schema)))


WRITTEN = (IDENTITY, EVENTS, LINKS, FEATURES, SHARED, KEYS)


def log_position(lake: Path) -> dict[str, int | None]:
    """How far identity has read the record change log: the relationships version of its
    last complete run (`change_log.prune` keeps what is after it)."""
    inputs = _load_state(lake).get("inputs") or {}
    return {RELATIONSHIPS: inputs.get(RELATIONSHIPS)} if RELATIONSHIPS in inputs else {}


def acknowledge(lake: Path, versions: dict[str, int | None]) -> None:
    """Record that identity tables changed outside a run (an erasure deleted rows of
    `versions`' tables, now at those versions) so the next run does not take them for
    an interrupted one. Only tables the last complete run recorded are updated."""
    state = _load_state(lake)
    written = state.get("written")
    if not isinstance(written, dict):
        return
    changed = {n: v for n, v in versions.items() if n in written and v is not None}
    if changed:
        written.update(changed)
        _save_state(lake, state)


def interrupted_run(lake: Path, state: dict) -> list[str]:
    """The identity tables whose data changed after the last complete run recorded them
    (a run died part-way); [] when the state and the tables agree."""
    written = state.get("written")
    if not isinstance(written, dict):
        return []
    return [n for n in WRITTEN
            if delta.changed_since(layout.silver_table(lake, n), written.get(n))]


def _overwrite(p: Path, frame: pl.DataFrame) -> int:
    return delta.write_rows(p, frame, append=False, partition_col=None)


def _with_fingerprint(features: pl.DataFrame, keys: pl.DataFrame, merges: pl.DataFrame
                      ) -> pl.DataFrame:
    """Add `merged_into` (the records a Salesforce merge made this one part of) and
    `fingerprint`: a hash of the record's features, merges and every identifying value
    it held (combined order-free). Equal fingerprints mean nothing to rescore. Hashes are
    polars' (stable within a polars version; an upgrade at worst re-resolves everything
    once)."""
    ids = keys.group_by("node_id").agg(
        pl.struct("kind", "value").hash(seed=11).sum().alias("_ids"))
    masters = merges.group_by("node_id").agg(pl.col("master").unique().sort()
                                             .alias("merged_into"))
    cols = [c for c in features.columns if c != "node_id"]
    return (features.join(masters, on="node_id", how="left", maintain_order="left")
            .join(ids, on="node_id", how="left", maintain_order="left")
            .with_columns(pl.struct(*cols, "merged_into", "_ids").hash(seed=7)
                          .reinterpret(signed=True).alias("fingerprint"))
            .drop("_ids"))


def features_and_keys(records: pl.DataFrame, edges: pl.DataFrame, inputs: idn.Inputs,
                      merges: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Record features (with their merges and a fingerprint of features, merges and
    identifying values) and keys."""
    keys = idn.identifier_keys(edges, records, inputs.link_kinds)
    features = idn.record_features(records, edges, inputs.features)
    return _with_fingerprint(features, keys, merges), keys


def merges_of(features: pl.DataFrame) -> pl.DataFrame:
    """node_id, master from the features' `merged_into`."""
    return (features.select("node_id", pl.col("merged_into").alias("master"))
            .explode("master").drop_nulls("master"))


def _score(features: pl.DataFrame, candidates: pl.DataFrame, model: Model,
           previous_links: pl.DataFrame | None, touched: pl.Series | None,
           known: pl.DataFrame | None = None) -> tuple[pl.DataFrame, int, int]:
    """(scored, pairs scored by Splink, stored scores reused): each candidate pair with
    match_weight, match_probability, matched_on and weights (JSON). A stored score is
    reused when neither record of the pair is `touched` (a score depends on the two
    records and the model only); `known`: pairs this run scored already (`scored`)."""
    cols = ["node_l", "node_r", "match_weight", "match_probability", "matched_on", "weights"]
    have = None
    if known is not None and known.height:
        have = known.select(cols).join(candidates, on=["node_l", "node_r"], how="semi")
        candidates = candidates.join(have, on=["node_l", "node_r"], how="anti")
    reuse = pl.DataFrame(schema={"node_l": pl.String, "node_r": pl.String})
    if previous_links is not None and touched is not None:
        touched_s = touched.implode()
        reuse = (previous_links.filter(pl.col("match_weight").is_not_null()
                                       & ~pl.col("node_l").is_in(touched_s)
                                       & ~pl.col("node_r").is_in(touched_s))
                 .join(candidates, on=["node_l", "node_r"], how="semi"))
    fresh = candidates.join(reuse, on=["node_l", "node_r"], how="anti")
    scored_new = score(features, fresh, model)
    mw = [c for c in scored_new.columns if c.startswith("mw_")]
    scored_new = scored_new.with_columns(
        pl.struct([pl.col(c).round(3).alias(c[3:]) for c in mw]).struct.json_encode()
        .alias("weights") if scored_new.height and mw
        else pl.lit(None, pl.String).alias("weights")).drop(mw)
    reused = (reuse.select("node_l", "node_r", "match_weight", "match_probability",
                           pl.col("evidence").alias("matched_on"), "weights") if reuse.height
              else pl.DataFrame(schema={c: scored_new.schema.get(c, pl.String) for c in cols}))
    schema = dict(scored_new.select(cols).schema)
    scored = pl.concat([scored_new.select(cols), reused.select(cols).cast(schema),  # type: ignore[arg-type]
                        *([have.cast(schema)] if have is not None else [])])  # type: ignore[arg-type]
    return scored.sort("node_l", "node_r"), fresh.height, reuse.height


def _with_contradiction(scored: pl.DataFrame, features: pl.DataFrame, guards: idn.Guards,
                        by_evidence: pl.Series, con: duckdb.DuckDBPyConnection
                        ) -> pl.DataFrame:
    """`contradiction`: why a scored pair (with `held_kinds`) may not link, if at all."""
    return scored.with_columns(pl.coalesce(
        idn.contradictions(scored, features, guards, con),
        idn.household(scored, features, guards, con),
        by_evidence,
        idn.unsupported()).alias("contradiction")).drop("held_kinds", "family")


def _groups(node_ids: pl.Series, det: pl.DataFrame, scored: pl.DataFrame,
            threshold: float) -> pl.Series:
    """`group_id` of each record of `node_ids` (sorted): the smallest node id of the
    records its deterministic links and its scored pairs at or above the threshold (any
    status) reach. Clustering never joins records of two groups, so a scoped run
    re-resolves whole groups."""
    links = pl.concat([det.select("node_l", "node_r"),
                       scored.filter(pl.col("match_weight") >= threshold)
                       .select("node_l", "node_r")])
    label = idn.components(node_ids, links)
    frame = pl.DataFrame({"node_id": node_ids, "c": label})
    return (frame.join(frame.group_by("c").agg(pl.col("node_id").min().alias("group_id")),
                       on="c", how="left", maintain_order="left")["group_id"])


def resolve(features: pl.DataFrame, keys: pl.DataFrame, merges: pl.DataFrame,
            guards: idn.Guards, model: Model, previous_links: pl.DataFrame | None = None,
            touched: pl.Series | None = None, progress: Callable[[str], None] = print
            ) -> dict[str, object]:
    """The whole resolution over in-memory inputs (see module docstring): `features` and
    `keys` from `features_and_keys`. With `previous_links` and `touched`, stored scores
    of pairs of untouched records are reused. Returns shared values, links (every
    status), identity rows, features with their group, the household strata and counts."""
    con = duckdb.connect()
    lap = Laps(progress)
    shared = idn.shared_values(keys, guards)
    det, held, shared = idn.deterministic_pairs(keys, shared, merges, features, guards, con)
    component = idn.components(features["node_id"], det)
    lap(f"{features.height:,} records, {det.height:,} deterministic links, {held.height:,} "
        f"held pairs, {shared['guard'].is_not_null().sum():,} guarded values")
    candidates = idn.candidate_pairs(features, component, held, con)
    scored, fresh, reused = _score(features, candidates, model, previous_links, touched)
    lap(f"{candidates.height:,} candidate pairs; scored {fresh:,} with Splink, "
        f"reused {reused:,} stored scores")
    # Why a pair may not link, for reused pairs too: whether a shared value is a family's
    # can change with a record that touches neither end of the pair.
    scored = scored.join(held_kinds(held), on=["node_l", "node_r"], how="left",
                         maintain_order="left")
    by_evidence, strata = idn.household_by_evidence(scored, features, guards,
                                                    model.threshold, con)
    scored = _with_contradiction(scored, features, guards, by_evidence, con)
    lap("scored; " + household_summary(strata))
    clustering = idn.cluster(features, component, scored, model.threshold, guards,
                             disagreement_weights(model))
    persons = idn.person_ids(features, clustering.cluster)
    rows = idn.identity_rows(features, persons, det, clustering.accepted,
                             scored.select("node_l", "node_r", "match_probability", "matched_on"))
    links = _links_table(det, held, scored, clustering, model.threshold)
    features = features.with_columns(
        _groups(features["node_id"], det, scored, model.threshold).alias("group_id"))
    lap(f"clustered: {clustering.accepted.height:,} probabilistic links accepted, "
        f"{clustering.refused.height:,} refused")
    return {"features": features, "keys": keys, "shared": shared, "links": links,
            "identity": rows, "scored": fresh, "reused": reused, "strata": strata,
            "reresolved": features.height}


@dataclass
class Previous:
    """The last complete run's tables a scoped run builds on."""

    features: pl.DataFrame  # with merged_into, fingerprint, group_id
    keys: pl.DataFrame
    links: pl.DataFrame
    shared: pl.DataFrame
    identity: pl.DataFrame
    strata: pl.DataFrame  # the household strata: counts and verdicts (idn.STRATA_SCHEMA)


def _touching(pairs: pl.DataFrame, nodes: pl.Series) -> pl.DataFrame:
    """The pairs with an end among `nodes` (imploded)."""
    return pairs.filter(pl.col("node_l").is_in(nodes) | pl.col("node_r").is_in(nodes))


def _leaving(pairs: pl.DataFrame, nodes: pl.Series) -> pl.Series:
    """The ends of the pairs with exactly one end among `nodes` (imploded)."""
    out = pairs.filter(pl.col("node_l").is_in(nodes) != pl.col("node_r").is_in(nodes))
    return pl.concat([out["node_l"], out["node_r"]]).unique()


REGION_SHARE_LIMIT = 0.5  # a region past this share of the records: resolve everything


def resolve_scoped(features: pl.DataFrame, keys: pl.DataFrame, guards: idn.Guards,
                   model: Model, previous: Previous, touched: pl.Series,
                   progress: Callable[[str], None] = print) -> dict[str, object] | str:
    """Re-resolve only the region `touched` records (features, merges or identifying
    values changed, appeared or vanished since `previous`) can reach, and keep the rest
    of `previous`; the result equals `resolve` over everything. Returns what `resolve`
    returns, or why a scoped run cannot give that result (then resolve everything).

    The region: the touched records, every holder of an identifying value a touched
    record holds or held (its guard can change: a contested or over-the-limit value),
    the members of a block a touched record pushed over the blocking limit or brought
    back under it, and then the whole previous group (`_groups`) of each. A pair of two
    records outside the region is unchanged: same features, same scores, same shared
    values. The region grows until no deterministic link and no pair at or above the
    threshold leaves it, so clustering sees whole groups. One thing is global: the
    household strata (`household_by_evidence`, over every scored pair), kept as counts
    and updated by the region's pairs. Should a stratum's verdict change, the scoped run
    gives up; the counts, quoted in some reasons, are brought up to date in the kept
    links too."""
    con = duckdb.connect()
    lap = Laps(progress)
    threshold = model.threshold
    ids = touched.implode()
    # Shared values and their blocklist and limit guards (not the contested verdict): the
    # last run's, but for the values a touched record holds or held, counted again.
    touched_values = pl.concat([previous.keys.filter(pl.col("node_id").is_in(ids)),
                                keys.filter(pl.col("node_id").is_in(ids))]
                               ).select("kind", "value").unique()
    shared_all = pl.concat([
        previous.shared.join(touched_values, on=["kind", "value"], how="anti")
        .with_columns(pl.when(pl.col("guard").str.starts_with("contested"))
                      .then(pl.lit(None, pl.String)).otherwise("guard").alias("guard")),
        idn.shared_values(keys.join(touched_values, on=["kind", "value"], how="semi"),
                          guards).cast(dict(previous.shared.schema))  # type: ignore[arg-type]
    ]).sort("kind", "value")
    merges = merges_of(features)
    groups = previous.features.select("node_id", "group_id").drop_nulls()
    existing = features.select("node_id")

    def with_groups(nodes: pl.Series) -> pl.Series:
        ids = pl.concat([nodes, groups.join(groups.filter(pl.col("node_id").is_in(
            nodes.implode())).select("group_id").unique(), on="group_id", how="semi")
            ["node_id"]])
        return existing.filter(pl.col("node_id").is_in(ids.implode()))["node_id"]

    # Values whose guard may change: held by a touched record now or before, and not
    # guarded (blocklist, over the limit) both before and after.
    def guarded(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("guard").is_not_null()
                            & ~pl.col("guard").str.starts_with("contested")).select(
            "kind", "value")
    values = (touched_values
              .join(guarded(previous.shared).join(guarded(shared_all), on=["kind", "value"],
                                                  how="semi"),
                    on=["kind", "value"], how="anti"))
    holders = keys.join(values, on=["kind", "value"], how="semi")["node_id"]
    blocking = idn.Blocking.of(features)  # the blocking columns, derived once
    blocks = idn.blocks_over_the_limit_changed(previous.features, features, touched,
                                               blocking)
    # A merge links two records: the other end of a touched record's merges, then or now.
    merge_ends = pl.concat([merges_of(previous.features), merges])
    partners = pl.concat([merge_ends.filter(pl.col("node_id").is_in(ids))["master"],
                          merge_ends.filter(pl.col("master").is_in(ids))["node_id"]])
    region = with_groups(pl.concat([touched, holders, blocks, partners]).unique())
    known: pl.DataFrame | None = None
    scored_n = 0
    open_values = shared_all.filter(pl.col("guard").is_null()).select("kind", "value")
    while True:
        if region.len() > REGION_SHARE_LIMIT * max(features.height, 1):
            return (f"the changed records reach {region.len():,} of {features.height:,} "
                    "records")
        in_r = region.implode()
        # Deterministic links and held pairs: every holder of the open values the region
        # holds, so a value's contested verdict sees all its holders.
        keys_r = keys.join(keys.filter(pl.col("node_id").is_in(in_r)).select("kind", "value")
                           .unique().join(open_values, on=["kind", "value"], how="semi"),
                           on=["kind", "value"], how="semi")
        det, held, shared_r = idn.deterministic_pairs(keys_r, shared_all, merges, features,
                                                      guards, con)
        det, held = _touching(det, in_r), _touching(held, in_r)
        out_det = _leaving(det, in_r)
        if out_det.len():
            region = with_groups(pl.concat([region, out_det]).unique())
            progress(f"identity: a deterministic link leaves the region: {region.len():,} "
                     "records now")
            continue
        features_r = features.filter(pl.col("node_id").is_in(in_r))
        component_r = idn.components(features_r["node_id"], det)
        offset = int(component_r.max() or 0) + 1  # type: ignore[arg-type]
        component = (features.select("node_id").with_row_index("i")
                     .join(features_r.select("node_id").with_columns(component_r.alias("c")),
                           on="node_id", how="left", maintain_order="left")
                     .select(pl.coalesce("c", pl.col("i").cast(pl.Int64) + offset)
                             .alias("component"))["component"])
        lap(f"region: {region.len():,} of {features.height:,} records ({touched.len():,} "
            f"touched), {det.height:,} deterministic links, {held.height:,} held pairs")
        candidates = idn.candidate_pairs(features, component, held, con, focus=region,
                                         blocking=blocking)
        scored, fresh, reused = _score(features, candidates, model, previous.links, touched,
                                       known)
        known, scored_n = scored, scored_n + fresh
        out_strong = _leaving(scored.filter(pl.col("match_weight") >= threshold), in_r)
        if out_strong.len():
            region = with_groups(pl.concat([region, out_strong]).unique())
            progress(f"identity: a pair at or above the threshold leaves the region: "
                     f"{region.len():,} records now")
            continue
        break
    del blocking  # its hashes are hundreds of MB at 1M records: not kept to the end
    reused = candidates.height - scored_n
    lap(f"{candidates.height:,} candidate pairs; scored {scored_n:,} with Splink, "
        f"reused {reused:,} stored scores")
    scored = scored.join(held_kinds(held), on=["node_l", "node_r"], how="left",
                         maintain_order="left")
    # The household strata count every scored pair: the last run's counts, less the
    # region's pairs as they were, plus the region's pairs now.
    # Pairs with a record that is gone (deleted, erased) go with the region's: a full
    # run has no pair for a record it does not read.
    gone = touched.filter(~touched.is_in(existing["node_id"].implode()))
    in_links = pl.concat([region, gone]).unique().implode()
    kept_links = previous.links.filter(~pl.col("node_l").is_in(in_links)
                                       & ~pl.col("node_r").is_in(in_links))
    old_links = _touching(previous.links, in_links)
    old_held = old_links.filter(pl.col("status") == "held").with_columns(
        pl.lit(None, pl.Boolean).alias("family"))
    old_scored = (old_links.filter(pl.col("match_weight").is_not_null())
                  .select("node_l", "node_r", "match_weight", "weights")
                  .join(held_kinds(old_held).drop("family"), on=["node_l", "node_r"],
                        how="left"))
    x_old = idn.household_evidence(old_scored, previous.features, guards, threshold, con)
    x_new = idn.household_evidence(scored, features, guards, threshold, con)
    counts = [c for c in idn.STRATA_SCHEMA if c != "contact"]
    delta_counts = (idn.household_counts(x_new).select(counts).to_numpy()
                    - idn.household_counts(x_old).select(counts).to_numpy())
    now = previous.strata.select(counts).to_numpy() + delta_counts
    strata = idn.household_verdicts(previous.strata.select("contact").with_columns(
        *[pl.Series(c, now[:, j], dtype=pl.Int64) for j, c in enumerate(counts)]))
    if not strata["households"].equals(previous.strata["households"]):
        return ("the household evidence changed its verdict (" + household_summary(strata)
                + ")")
    scored = _with_contradiction(scored, features, guards,
                                 idn.household_reasons(x_new, strata, scored.height), con)
    lap("scored; " + household_summary(strata))
    inside = scored.filter(pl.col("node_l").is_in(in_r) & pl.col("node_r").is_in(in_r))
    clustering = idn.cluster(features_r, component_r, inside, threshold, guards,
                             disagreement_weights(model))
    persons = idn.person_ids(features_r, clustering.cluster)
    rows_r = idn.identity_rows(features_r, persons, det, clustering.accepted,
                               inside.select("node_l", "node_r", "match_probability",
                                             "matched_on"))
    links = (pl.concat([
        kept_links.with_columns(*[idn.recount_household_evidence(pl.col(c), strata).alias(c)
                                  for c in ("contradiction", "reason")]),
        _links_table(det, held, scored, clustering, threshold)])
        .sort("node_l", "node_r", "rule"))
    group_r = features_r.select("node_id").with_columns(
        _groups(features_r["node_id"], det, inside, threshold).alias("_g"))
    features = (features.join(group_r, on="node_id", how="left", maintain_order="left")
                .with_columns(pl.coalesce("_g", "group_id").alias("group_id")).drop("_g"))
    # A value's contested verdict: this run's where the region holds it, else the last's
    # (blocklist and limit verdicts are this run's, over every record).
    seen = keys_r.select("kind", "value").unique().with_columns(pl.lit(True).alias("_seen"))
    contested = previous.shared.filter(pl.col("guard").str.starts_with("contested")).select(
        "kind", "value", pl.col("guard").alias("_old"))
    shared = (shared_r.join(seen, on=["kind", "value"], how="left")
              .join(contested, on=["kind", "value"], how="left")
              .with_columns(pl.when(pl.col("_seen")).then("guard")
                            .otherwise(pl.coalesce("guard", "_old")).alias("guard"))
              .drop("_seen", "_old"))
    compare = ["node_id", "person_id", "rule", "confidence", "matched_on"]
    rows = (pl.concat([previous.identity.join(features.select("node_id"), on="node_id",
                                              how="semi")
                       .filter(~pl.col("node_id").is_in(in_r)).select(compare),
                       rows_r.select(compare).cast(dict(previous.identity.select(compare)
                                                        .schema))])  # type: ignore[arg-type]
            .sort("node_id"))
    lap(f"clustered the region: {clustering.accepted.height:,} probabilistic links accepted, "
        f"{clustering.refused.height:,} refused")
    return {"features": features, "keys": keys, "shared": shared, "links": links,
            "identity": rows, "scored": scored_n, "reused": reused, "strata": strata,
            "reresolved": region.len()}


def household_summary(strata: pl.DataFrame) -> str:
    """One progress line: what `household_by_evidence` found, per stratum."""
    parts = [f"{'' if r['contact'] else 'no '}shared contact: {r['one_person']} of "
             f"{r['pairs_that_tell']} one person{', households' if r['households'] else ''}"
             for r in strata.iter_rows(named=True) if r["pairs_that_tell"]]
    return "first names differing, " + ("; ".join(parts) or "no pairs to tell")


def held_kinds(held: pl.DataFrame) -> pl.DataFrame:
    """node_l, node_r, held_kinds, family: how many identifier kinds (e-mail, phone)
    each held pair shares through contested values, and whether one of them is a
    family's (`deterministic_pairs`)."""
    kinds = pl.col("evidence").str.split(",").list.set_intersection(
        pl.lit(list(idn.IDENTIFIER_COMPARISONS))).list.len()
    return held.select("node_l", "node_r", kinds.cast(pl.Int32).alias("held_kinds"),
                       "family")


def _links_table(det: pl.DataFrame, held: pl.DataFrame, scored: pl.DataFrame,
                 clustering: idn.Clustering, threshold: float) -> pl.DataFrame:
    """One row per pair the run looked at: `linked` (deterministic), `held` (a shared
    value whose holders contradict), and every scored pair - `accepted` (joined two
    clusters), `refused` (above threshold, stopped by a guard), `contradiction`,
    `same_cluster` (above threshold, already together), `below_threshold`."""
    deterministic = det.select("node_l", "node_r", "rule", "evidence",
                               pl.lit("linked").alias("status"), pl.lit(None, pl.String)
                               .alias("reason"))
    held_rows = held.select("node_l", "node_r", "rule", "evidence", pl.lit("held").alias("status"),
                            pl.col("contradiction").alias("reason"))
    acc = clustering.accepted.select("node_l", "node_r", pl.lit("accepted").alias("_s"),
                                     pl.lit(None, pl.String).alias("_r"))
    ref = clustering.refused.select("node_l", "node_r", pl.lit("refused").alias("_s"),
                                    pl.col("reason").alias("_r"))
    decided = pl.concat([acc, ref])
    prob = (scored.join(decided, on=["node_l", "node_r"], how="left")
            .with_columns(
                pl.when(pl.col("_s").is_not_null()).then(pl.col("_s"))
                .when(pl.col("contradiction").is_not_null()).then(pl.lit("contradiction"))
                .when(pl.col("match_weight") >= threshold).then(pl.lit("same_cluster"))
                .otherwise(pl.lit("below_threshold")).alias("status"),
                pl.coalesce("_r", "contradiction").alias("reason"))
            .select("node_l", "node_r", pl.lit("probabilistic").alias("rule"),
                    pl.col("matched_on").alias("evidence"), "status", "reason",
                    "contradiction", "match_weight", "match_probability", "weights"))
    det_rows = pl.concat([deterministic, held_rows]).with_columns(
        pl.lit(None, pl.String).alias("contradiction"),
        pl.lit(None, pl.Float64).alias("match_weight"),
        pl.lit(None, pl.Float64).alias("match_probability"),
        pl.lit(None, pl.String).alias("weights"))
    return (pl.concat([det_rows, prob.select(det_rows.columns)])
            .select(list(LINKS_SCHEMA)).cast(dict(LINKS_SCHEMA)).sort("node_l", "node_r", "rule"))


def _made_from(lake: Path, identity_config: IdentityConfig, model: Model,
               attributes: idn.Inputs) -> tuple[dict, dict, dict]:
    """The last run's state, and what a run now would be made from: silver's data
    versions (a compaction is not a change) and the model's and config's fingerprints."""
    inputs = {"nodes": delta.data_version(layout.silver_table(lake, NODES)),
              "relationships": delta.data_version(layout.silver_table(lake, RELATIONSHIPS))}
    fingerprints = {"model": _fingerprint([model.splink, model.threshold]),
                    "config": _fingerprint([identity_config.model_dump(), nicknames(),
                                            attributes.features, attributes.link_kinds])}
    return _load_state(lake), inputs, fingerprints


def up_to_date(lake: Path, identity_config: IdentityConfig, model: Model,
               attributes: idn.Inputs) -> bool:
    """Whether a run now would be a no-op: the last run completed, on the silver, model
    and config there are now, and its tables are there."""
    if not all(delta.table_exists(layout.silver_table(lake, n))
               for n in (NODES, RELATIONSHIPS, IDENTITY, LINKS, FEATURES)):
        return False
    state, inputs, fingerprints = _made_from(lake, identity_config, model, attributes)
    return (not interrupted_run(lake, state) and state.get("inputs") == inputs
            and state.get("fingerprints") == fingerprints)


def build_identity(lake: Path, identity_config: IdentityConfig, model: Model,
                   attributes: idn.Inputs, *, full: bool = False,
                   progress: Callable[[str], None] = print) -> IdentityReport:
    """Resolve identity over the lake's silver graph; write the identity tables.
    `attributes`: which canonical attributes identity reads (`Inputs.of(registry)`)."""
    t0 = time.perf_counter()
    guards = idn.Guards.from_config(identity_config)
    nodes_p, rel_p = layout.silver_table(lake, NODES), layout.silver_table(lake, RELATIONSHIPS)
    if not (delta.table_exists(nodes_p) and delta.table_exists(rel_p)):
        raise FileNotFoundError(f"silver graph missing under "
                                f"{layout.layer(lake, layout.SILVER)}: materialise silver first")
    state, inputs, fingerprints = _made_from(lake, identity_config, model, attributes)
    torn = interrupted_run(lake, state)
    have_tables = all(delta.table_exists(layout.silver_table(lake, n))
                      for n in (IDENTITY, LINKS, FEATURES))
    if torn:
        progress(f"identity: the previous run ended part-way ({', '.join(torn)} changed "
                 "after its last complete state): rescoring every pair, events against the "
                 "last complete run")
    if (not full and not torn and have_tables and state.get("inputs") == inputs
            and state.get("fingerprints") == fingerprints):
        return IdentityReport("no-op", previous_largest_cluster=state.get("largest_cluster"),
                              largest_cluster=state.get("largest_cluster") or 0,
                              threshold=model.threshold,
                              versions={n: delta.table_version(layout.silver_table(lake, n))
                                        for n in (IDENTITY, EVENTS)},
                              seconds=time.perf_counter() - t0)

    incremental = (not full and not torn and have_tables
                   and state.get("fingerprints") == fingerprints)
    out: dict | None = None
    touched_n: int | None = None
    if incremental:
        scoped = _scoped(lake, state, attributes, guards, model, progress)
        if isinstance(scoped, str):
            progress(f"identity: re-resolving every record: {scoped}")
        else:
            out, touched_n = scoped
    if out is None:
        out, touched_n = _everything(lake, attributes, guards, model, incremental, progress)
    identity_rows: pl.DataFrame = out["identity"]  # type: ignore[assignment]
    identity_p = layout.silver_table(lake, IDENTITY)
    previous = out.get("previous_identity")  # a scoped run read it already
    if not isinstance(previous, pl.DataFrame):
        previous = _read_previous(identity_p, IDENTITY_SCHEMA)
    # Merges and splits are against the last complete run, also after one that died.
    written = state.get("written") or {}
    complete = previous
    if torn and written.get(IDENTITY) is not None:
        try:
            complete = _read_previous(identity_p, IDENTITY_SCHEMA, written[IDENTITY])
        except Exception as exc:  # noqa: BLE001 - its files vacuumed since: best effort
            progress(f"identity: the last complete identity (version {written[IDENTITY]}) is "
                     f"no longer readable ({exc.__class__.__name__}); the dead run's merges "
                     "and splits are not logged")
    now = dt.datetime.now(dt.UTC)
    lap = Laps(progress)
    report = _write(lake, out, identity_rows, previous, now, complete,
                    written.get(EVENTS) if torn else None)
    lap(f"wrote {report.records_reassigned:,} changed identity rows and the working tables")
    report.mode = out["mode"]  # type: ignore[assignment]
    report.records_touched = touched_n if touched_n is not None else identity_rows.height
    report.records_reresolved = out["reresolved"]  # type: ignore[assignment]
    report.pairs_scored, report.pairs_reused = out["scored"], out["reused"]  # type: ignore[assignment]
    report.threshold = model.threshold
    report.previous_largest_cluster = state.get("largest_cluster")
    shared: pl.DataFrame = out["shared"]  # type: ignore[assignment]
    report.guarded_values = dict(
        shared.filter(pl.col("guard").is_not_null())
        .group_by(pl.col("guard").str.extract(r"^(blocklist|shared by|contested)")
                  .replace({"shared by": "over_limit"}))
        .len().iter_rows())
    links: pl.DataFrame = out["links"]  # type: ignore[assignment]
    report.held_pairs = int((links["status"] == "held").sum())
    report.refused_links = int((links["status"] == "refused").sum())
    report.links_by_rule = dict(
        links.filter(pl.col("status").is_in(["linked", "accepted"]))
        .group_by("rule").len().sort("rule").iter_rows())
    strata: pl.DataFrame = out["strata"]  # type: ignore[assignment]
    _save_state(lake, {"inputs": inputs, "fingerprints": fingerprints,
                       "largest_cluster": report.largest_cluster,
                       "households": [list(r) for r in strata.select(
                           *idn.STRATA_SCHEMA, "households").iter_rows()],
                       "written": {n: delta.data_version(layout.silver_table(lake, n))
                                   for n in WRITTEN}})
    report.seconds = time.perf_counter() - t0
    progress(f"identity: {report.persons:,} persons from {report.records:,} records; "
             f"{report.merges} merges, {report.splits} splits; largest person "
             f"{report.largest_cluster} records ({report.seconds:.1f}s)")
    return report


def _strata(rows: list) -> pl.DataFrame:
    """The household strata a state file holds (counts and verdict per stratum)."""
    return pl.DataFrame(rows, schema={**idn.STRATA_SCHEMA, "households": pl.Boolean()},
                        orient="row")


def _everything(lake: Path, attributes: idn.Inputs, guards: idn.Guards, model: Model,
                incremental: bool, progress: Callable[[str], None]
                ) -> tuple[dict[str, object], int | None]:
    """Resolve every record; `incremental`: reusing the stored scores of pairs whose
    records did not change. (out, records touched or None)."""
    lap = Laps(progress)
    records, edges, merges = read_graph(lake, attributes)
    lap(f"read the graph: {records.height:,} customer records, {edges.height:,} edges")
    previous_features = _read_previous(layout.silver_table(lake, FEATURES), pl.Schema(
        {"node_id": pl.String(), "fingerprint": pl.Int64()})) if incremental else None
    # Only scored pairs can be reused: read just those rows of the previous links.
    previous_links = (pl.scan_delta(str(layout.silver_table(lake, LINKS)))
                      .filter(pl.col("match_weight").is_not_null()).collect()
                      .select(list(LINKS_SCHEMA)).cast(dict(LINKS_SCHEMA))  # type: ignore[arg-type]
                      if incremental else None)
    features, keys = features_and_keys(records, edges, attributes, merges)
    del edges
    lap(f"features and {keys.height:,} identifying values")
    touched: pl.Series | None = None
    if previous_features is not None:
        diff = (features.select("node_id", "fingerprint")
                .join(previous_features, on=["node_id", "fingerprint"], how="anti"))
        gone = previous_features.join(features.select("node_id"), on="node_id", how="anti")
        touched = pl.concat([diff["node_id"], gone["node_id"]]).unique()
        progress(f"identity: {touched.len():,} records touched since the last run")
    out = resolve(features, keys, merges, guards, model, previous_links, touched, progress)
    out["mode"] = "incremental" if incremental else "full"
    return out, None if touched is None else touched.len()


def _scoped(lake: Path, state: dict, attributes: idn.Inputs, guards: idn.Guards,
            model: Model, progress: Callable[[str], None]
            ) -> tuple[dict[str, object], int] | str:
    """A scoped run (`resolve_scoped`) from the records silver changed since the last
    run (the record change log), or why there cannot be one."""
    lap = Laps(progress)
    since = (state.get("inputs") or {}).get("relationships")
    households = state.get("households")
    if (not delta.table_exists(layout.silver_table(lake, KEYS))
            or not isinstance(households, list) or any(len(r) != 5 for r in households)):
        return "no per-record identity input stored yet"
    changed = change_log.records_changed_since(lake, {RELATIONSHIPS: since},
                                               tables=(RELATIONSHIPS,))
    if changed is None:
        return "the record change log cannot say which records changed"
    # The stored tables, read side by side (polars reads outside the GIL).
    with ThreadPoolExecutor(max_workers=2) as pool:
        stored = {name: pool.submit(_read_previous, layout.silver_table(lake, name), schema)
                  for name, schema in ((FEATURES, FEATURES_TABLE_SCHEMA), (KEYS, KEYS_SCHEMA),
                                       (LINKS, LINKS_SCHEMA), (IDENTITY, IDENTITY_SCHEMA))}
        shared = pool.submit(delta.read_table, layout.silver_table(lake, SHARED))
        previous = Previous(features=stored[FEATURES].result(), keys=stored[KEYS].result(),
                            links=stored[LINKS].result(), shared=shared.result(),
                            identity=stored[IDENTITY].result(),
                            strata=_strata(state["households"]))
    nodes = pl.scan_delta(str(layout.silver_table(lake, NODES)))
    records = idn.customer_records(nodes)
    # Changed edges (the log), a changed record time, a record new or gone.
    old = previous.features.select("node_id", "record_time")
    gone = old.join(records, on="node_id", how="anti")["node_id"]
    moved = pl.concat([records.select("node_id", "record_time")
                       .join(old, on=["node_id", "record_time"], how="anti", nulls_equal=True)
                       ["node_id"], gone])
    read = pl.concat([changed, moved]).unique().sort()
    rel = pl.scan_delta(str(layout.silver_table(lake, RELATIONSHIPS))).filter(
        pl.col("source_node_id").is_in(read.implode()))
    edges, merges = idn.record_edges(nodes, rel, attributes.attributes)
    fresh, fresh_keys = features_and_keys(
        records.filter(pl.col("node_id").is_in(read.implode())), edges, attributes, merges)
    touched = pl.concat([
        fresh.select("node_id", "fingerprint")
        .join(previous.features.select("node_id", "fingerprint"),
              on=["node_id", "fingerprint"], how="anti")["node_id"], gone]).unique().sort()
    lap(f"read {read.len():,} changed records' edges ({edges.height:,}); "
        f"{touched.len():,} records touched since the last run")
    rest = previous.features.filter(~pl.col("node_id").is_in(read.implode())
                                    & pl.col("node_id").is_in(records["node_id"].implode()))
    features = pl.concat([
        rest,
        fresh.join(previous.features.select("node_id", "group_id"), on="node_id",
                   how="left").select(rest.columns).cast(dict(rest.schema))  # type: ignore[arg-type]
    ]).sort("node_id")
    keys = pl.concat([previous.keys.filter(~pl.col("node_id").is_in(read.implode())),
                      fresh_keys.select(previous.keys.columns)
                      .cast(dict(previous.keys.schema))])  # type: ignore[arg-type]
    if touched.len() == 0:
        strata = previous.strata
        return ({"features": previous.features, "keys": previous.keys,
                 "shared": previous.shared, "links": previous.links,
                 "identity": previous.identity.select(
                     "node_id", "person_id", "rule", "confidence", "matched_on"),
                 "scored": 0, "reused": 0, "strata": strata, "reresolved": 0,
                 "mode": "scoped", "unchanged": True, "previous_identity": previous.identity},
                0)
    out = resolve_scoped(features, keys, guards, model, previous, touched, progress)
    if isinstance(out, str):
        return out
    out["mode"], out["previous_identity"] = "scoped", previous.identity
    return out, touched.len()


def _write(lake: Path, out: dict, rows: pl.DataFrame, previous: pl.DataFrame,
           now: dt.datetime, complete: pl.DataFrame, events_since: int | None) -> IdentityReport:
    """Write what changed against `previous` (the table now); events are against
    `complete` (the last complete run's identity), less those a dead run appended after
    events version `events_since`."""
    report = IdentityReport("full")
    compare = ["node_id", "person_id", "rule", "confidence", "matched_on"]
    rows = rows.with_columns(pl.col("confidence").round(6))
    changed = rows.join(previous.select(compare), on=compare, how="anti", nulls_equal=True)
    removed = previous.join(rows.select("node_id"), on="node_id", how="anti")
    new_rows = changed.with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC"))
                                    .alias("resolved_at"), bucket_of(pl.col("node_id")))
    keys = pl.concat([changed["node_id"], removed["node_id"]])
    identity_p, events_p = layout.silver_table(lake, IDENTITY), layout.silver_table(lake, EVENTS)
    if not delta.table_exists(identity_p):  # exists even with no records yet
        delta.commit(identity_p, delta.to_arrow(pl.DataFrame(schema=IDENTITY_SCHEMA)),
                     mode="append", partition_by=["bucket"])
    if keys.len():
        write = delta.replace_keyed_rows(identity_p,
                                         new_rows.select(list(IDENTITY_SCHEMA)), key="node_id",
                                         keys=keys)
        report.versions[IDENTITY] = write.version
        change_log.append(lake, IDENTITY, write.versions, pl.concat(
            [write.added.get_column("node_id"), write.removed.get_column("node_id")]))
    failpoints.reached("identity.rows_written")
    events = idn.identity_events(complete.select("node_id", "person_id"),
                                 rows.select("node_id", "person_id"))
    if events_since is not None and events.height and delta.table_exists(events_p):
        try:  # the events the dead run appended: the table now less the table then
            already = _read_previous(events_p, EVENTS_SCHEMA).join(
                _read_previous(events_p, EVENTS_SCHEMA, events_since),
                on=list(EVENTS_SCHEMA), how="anti", nulls_equal=True)
            events = events.join(already.select(events.columns), on=events.columns,
                                 how="anti", nulls_equal=True)
        except Exception:  # noqa: BLE001 - version vacuumed since: never log twice
            events = events.clear()
    if events.height:
        delta.commit(events_p, delta.to_arrow(
            events.with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("resolved_at"))
            .select(list(EVENTS_SCHEMA))), mode="append")
    elif not delta.table_exists(events_p):
        delta.commit(events_p, delta.to_arrow(pl.DataFrame(schema=EVENTS_SCHEMA)), mode="append")
    report.versions[EVENTS] = delta.table_version(events_p)
    # The three working tables are independent: written side by side (delta-rs writes
    # outside the GIL).
    working = {LINKS: out["links"], FEATURES: out["features"], SHARED: out["shared"],
               KEYS: out["keys"]}
    if out.get("unchanged"):  # nothing identity reads changed: the tables stand
        working = {}
    with ThreadPoolExecutor(max_workers=max(1, len(working))) as pool:
        futures = {name: pool.submit(_overwrite, layout.silver_table(lake, name), frame)
                   for name, frame in working.items()}
        for name, future in futures.items():
            report.versions[name] = future.result()
    sizes = rows.group_by("person_id").len()
    report.records, report.persons = rows.height, sizes.height
    report.largest_cluster = int(sizes["len"].max() or 0)
    report.records_reassigned = changed.height
    report.merges = int((events["event_type"] == "MERGED_INTO").sum())
    report.splits = int((events["event_type"] == "SPLIT").sum())
    report.cluster_sizes = dict(
        sizes.group_by(pl.when(pl.col("len") >= 10).then(pl.lit("10+"))
                       .otherwise(pl.col("len").cast(pl.String)).alias("size"))
        .len().sort("size").iter_rows())
    return report


# ---------------------------------------------------------------------------- training


def truth_labels(records_parquet: Path) -> pl.DataFrame:
    """node_id, true_id from a generated world's `_truth/records.parquet` (or any file
    with source, record_id and person_id columns: a user's reviewed labels)."""
    truth = pl.read_parquet(records_parquet)
    missing = {"source", "record_id", "person_id"} - set(truth.columns)
    if missing:
        raise ValueError(f"{records_parquet}: labels need columns source, record_id, "
                         f"person_id; missing {', '.join(sorted(missing))}")
    return truth.select(pl.format("customer:{}:{}", "source", "record_id").alias("node_id"),
                        pl.col("person_id").cast(pl.String).alias("true_id"))


def read_graph(lake: Path, inputs: idn.Inputs) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return idn.graph_inputs(pl.scan_delta(str(layout.silver_table(lake, NODES))),
                            pl.scan_delta(str(layout.silver_table(lake, RELATIONSHIPS))),
                            inputs.attributes)


def pair_labels(path: Path) -> pl.DataFrame:
    """node_id, true_id from clerical pair labels (record_a, record_b, same: records as
    `source:record_id`): the records the `same` pairs join get one id (connected
    components); other labelled records stand alone."""
    raw = pl.read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
    missing = {"record_a", "record_b", "same"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path}: pair labels need columns record_a, record_b, same; "
                         f"missing {', '.join(sorted(missing))}")

    def node(col: str) -> pl.Expr:
        return pl.format("customer:{}", pl.col(col).cast(pl.String))
    pairs = raw.select(node("record_a").alias("node_l"), node("record_b").alias("node_r"),
                       pl.col("same").cast(pl.String).str.to_lowercase()
                       .is_in(["true", "1", "yes", "y"]).alias("same"))
    ids = pl.concat([pairs["node_l"], pairs["node_r"]]).unique().sort()
    comp = idn.components(ids, pairs.filter("same"))
    return pl.DataFrame({"node_id": ids, "true_id": comp.cast(pl.String)})


def read_labels(path: Path) -> pl.DataFrame:
    """Full labels (source, record_id, person_id: parquet or CSV) or pair labels
    (record_a, record_b, same) -> node_id, true_id."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such labels file")
    head = (pl.read_csv(path, n_rows=1) if path.suffix == ".csv"
            else pl.read_parquet(path, n_rows=1)).columns
    if {"record_a", "record_b", "same"} <= set(head):
        return pair_labels(path)
    if path.suffix == ".csv":
        tmp = pl.read_csv(path, infer_schema=False)
        missing = {"source", "record_id", "person_id"} - set(tmp.columns)
        if missing:
            raise ValueError(f"{path}: labels need columns source, record_id, person_id "
                             f"(or record_a, record_b, same); missing {', '.join(sorted(missing))}")
        return tmp.select(pl.format("customer:{}:{}", "source", "record_id").alias("node_id"),
                          pl.col("person_id").alias("true_id"))
    return truth_labels(path)


def train_on_lake(lake: Path, identity_config: IdentityConfig, attributes: idn.Inputs,
                  labels: pl.DataFrame | None, description: dict, seed: int = 1,
                  progress: Callable[[str], None] = print) -> Model:
    """Train the probabilistic model on the lake's records: without labels by EM
    (`identity_model.train_unsupervised`), with labels from them (m and the threshold)."""
    from c360_assets.silver.identity_model import train_supervised, train_unsupervised

    lap = Laps(progress)
    records, edges, merges = read_graph(lake, attributes)
    if records.height < 2:
        raise ValueError(f"{lake}: {records.height} customer records in silver; "
                         "materialise the lake before training")
    features, keys = features_and_keys(records, edges, attributes, merges)
    del edges
    con = duckdb.connect()
    guards = idn.Guards.from_config(identity_config)
    shared = idn.shared_values(keys, guards)
    det, held, shared = idn.deterministic_pairs(keys, shared, merges, features, guards, con)
    component = idn.components(features["node_id"], det)
    candidates = idn.candidate_pairs(features, component, held, con)
    sizes = component.value_counts()["count"]
    guarded = shared.filter(pl.col("guard").is_not_null()).select("kind", "value")
    known = int((sizes * (sizes - 1) // 2).sum())
    lap(f"{features.height:,} records, {det.height:,} deterministic links, "
        f"{candidates.height:,} candidate pairs")
    if labels is None:
        return train_unsupervised(features, candidates, known, description, seed, progress,
                                  guarded)
    pairs = pl.concat([candidates.select("node_l", "node_r"), det.select("node_l", "node_r")]
                      ).unique()
    model = train_supervised(features, pairs, labels, description)
    lap(f"trained on {labels.height:,} labelled records")
    return model


def merged_survivors(lake: Path) -> pl.DataFrame:
    """Merged person -> the person it ended up in (`_person`, `_survivor`; MERGED_INTO
    chains of `identity_events` followed)."""
    path = layout.silver_table(lake, "identity_events")
    if not delta.table_exists(path):
        return pl.DataFrame(schema={"_person": pl.String(), "_survivor": pl.String()})
    merged = (delta.read_table(path).filter(pl.col("event_type") == "MERGED_INTO")
              .sort("resolved_at").unique("from_person_id", keep="last")
              .select(pl.col("from_person_id").alias("_person"),
                      pl.col("to_person_id").alias("_survivor")))
    for _ in range(64):  # chains are short; bounded against a cycle
        step = merged.join(merged.rename({"_person": "_survivor", "_survivor": "_next"}),
                           on="_survivor", how="left")
        if step["_next"].is_null().all():
            break
        merged = step.select("_person", pl.coalesce("_next", "_survivor").alias("_survivor"))
    return merged.filter(pl.col("_person") != pl.col("_survivor"))
