"""The probabilistic identity model: Splink (DuckDB backend) over record features.

The model (comparisons, m/u parameters, prior) and its decision threshold live in one
JSON file. A lake's own model, `<lake>/_identity/model.json`, is trained by
`c360 identity-train --lake DIR` on the lake's records **without labels** (Splink's
method: u from random pairs, m by expectation maximisation over blocked pairs, the prior
by EM over the pipeline's candidate pairs, the threshold where the expected pairwise F1
under the model's own posteriors peaks, never below match probability 0.5). Labels
(`--labels`: a full labelling, or clerical pair labels) are optional and refine m and
the threshold. A lake without a model of its own uses the shipped
`config/identity_model.json`.

At run time nothing is trained: `score` registers the candidate pairs chosen by
`identity.candidate_pairs` with Splink (`register_blocked_pairs_for_predict`) and asks
it for match weights, so scoring is deterministic and costs only the pairs scored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from c360_assets.lib import config as cfg
from c360_assets.lib import layout
from c360_assets.lib.config import ConfigError
from c360_assets.silver.identity import COMPARED

MODEL_FILE = "identity_model.json"
MODEL_FORMAT = 2


def comparisons() -> list:
    """Comparisons on names (typo and nickname tolerant: Jaro-Winkler levels and a
    nickname-equivalence level), birth date, address (one comparison), country, e-mail
    and phone similarity.

    No term-frequency adjustments: a pair's score must depend on the two records only,
    so a pair scored in one run scores the same in the next (incremental scoring)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    def crossed(a: str, b: str) -> str:  # `a` of the left record resembles `b` of the right
        return f"jaro_winkler_similarity({a}_l, {b}_r) >= 0.92"

    def levels(col: str, *middle: object) -> object:
        return cl.CustomComparison(output_column_name=col, comparison_levels=[
            cll.NullLevel(col), cll.ExactMatchLevel(col), *middle, cll.ElseLevel()])

    return [
        levels("first_name",
               cll.CustomLevel("first_name_nick_l = first_name_nick_r",
                               "nickname of each other"),
               cll.CustomLevel("list_contains(first_names_l, first_name_r) "
                               "OR list_contains(first_names_r, first_name_l)",
                               "one record held the other's first name before"),
               cll.ColumnsReversedLevel("first_name", "last_name", symmetrical=True),
               cll.CustomLevel(f"{crossed('first_name', 'last_name')} AND "
                               f"{crossed('last_name', 'first_name')}",
                               "names swapped between the fields, a typo apart"),
               cll.JaroWinklerLevel("first_name", 0.92), cll.JaroWinklerLevel("first_name", 0.8),
               cll.CustomLevel(f"{crossed('first_name', 'last_name')} OR "
                               f"{crossed('last_name', 'first_name')}",
                               "one record's first name is the other's last name")),
        levels("last_name", cll.JaroWinklerLevel("last_name", 0.92),
               cll.JaroWinklerLevel("last_name", 0.8)),
        levels("birth_date", cll.DamerauLevenshteinLevel("birth_date", 1),
               cll.CustomLevel("substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4)",
                               "same year")),
        address(),
        levels("country"),
        # No "similar e-mail" or "same local part" level: addresses are made from
        # names, so namesakes hold similar ones (maria.rodriguez6980@ /
        # maria_rodriguez2066@, lea.bauer@posteo.de / lea.bauer@web.de) and the name
        # comparisons already count that evidence.
        levels("email"),
        levels("phone",
               cll.CustomLevel("right(phone_l, 8) = right(phone_r, 8)", "same last 8 digits")),
    ]


def address() -> object:
    """Street, postal code and city as one comparison: they are one fact (where the
    person lives), and as three independent comparisons a shared address would count
    three times - enough to merge a father and son of one name at one address against
    their different birth dates."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    def same(col: str) -> str:
        return f'"{col}_l" = "{col}_r"'

    def near(col: str, t: float) -> str:
        return f'jaro_winkler_similarity("{col}_l", "{col}_r") >= {t}'

    def absent(side: str) -> str:
        return " AND ".join(f'"{c}_{side}" IS NULL' for c in ("street", "postal_code", "city"))

    return cl.CustomComparison(output_column_name="address", comparison_levels=[
        cll.CustomLevel(f"({absent('l')}) OR ({absent('r')})", "address missing on a side")
        .configure(is_null_level=True),
        cll.CustomLevel(f"{same('street')} AND {same('postal_code')}", "same street and postcode"),
        cll.CustomLevel(f"{near('street', 0.92)} AND {same('postal_code')}",
                        "street a typo apart, same postcode"),
        cll.CustomLevel(f"{same('street')} AND {same('city')}", "same street and city"),
        cll.CustomLevel(f"{near('street', 0.8)} AND ({same('postal_code')} OR {same('city')})",
                        "similar street, same postcode or city"),
        cll.CustomLevel(f"{near('street', 0.92)} AND ("
                        f'damerau_levenshtein("postal_code_l", "postal_code_r") <= 1 OR '
                        f"{near('city', 0.9)})",
                        "street, and postcode or city, each a typo apart"),
        cll.CustomLevel(f"{near('street', 0.92)}", "same or nearly the same street, "
                        "postcode and city apart"),
        cll.CustomLevel(same("postal_code"), "same postcode"),
        cll.CustomLevel(same("city"), "same city"),
        cll.ElseLevel(),
    ])


def settings(prior: float = 1e-5):  # noqa: ANN201 - splink.SettingsCreator
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="node_id",
        comparisons=comparisons(),
        probability_two_random_records_match=prior,
        additional_columns_to_retain=[],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


@dataclass(frozen=True)
class Model:
    splink: dict  # Splink's saved model (settings + trained parameters)
    threshold: float  # match weight at or above which a pair links
    trained: dict  # what it was trained on, how, and what it learnt
    version: int = 1
    path: str | None = None  # where it was read from

    def to_json(self) -> str:
        return json.dumps({"format": MODEL_FORMAT, "version": self.version,
                           "threshold_match_weight": self.threshold, "trained": self.trained,
                           "splink": self.splink}, indent=1)


def disagreement_weights(model: Model) -> dict[str, float]:
    """comparison -> the match weight of its last ("all other") level: what the model
    says a clear disagreement on it is worth (negative)."""
    out = {}
    for comparison in model.splink["comparisons"]:
        last = comparison["comparison_levels"][-1]
        m, u = last.get("m_probability"), last.get("u_probability")
        if m and u:
            out[comparison["output_column_name"]] = math.log2(m / u)
    return out


def model_path() -> Path:
    """The shipped model (config/identity_model.json)."""
    return cfg.config_dir() / MODEL_FILE




def load_model(path: Path | None = None, lake: Path | None = None) -> Model:
    """The model at `path`, else the lake's own model, else the shipped one (read each
    time: a retrained model applies from the next run)."""
    if path is None:
        path = layout.identity_model(lake) if lake is not None and layout.identity_model(lake).exists() \
            else model_path()
    if not path.exists():
        raise ConfigError(f"{path}: identity model missing; train one with "
                          "`c360 identity-train --lake DIR` (see README)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != MODEL_FORMAT:
            raise ConfigError(f"{path}: model format {raw.get('format')!r}, expected "
                              f"{MODEL_FORMAT}; retrain it with `c360 identity-train`")
        return Model(raw["splink"], float(raw["threshold_match_weight"]),
                     raw.get("trained", {}), int(raw.get("version", 1)), str(path))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a c360 identity model: {exc}") from exc


def save_lake_model(lake: Path, model: Model) -> Path:
    """Write `model` as the lake's model, version one above the previous; the previous
    versions stay beside it (`_identity/model-v<N>.json`). Written to a temporary file
    and renamed, so a reader never sees half a model."""
    target = layout.identity_model(lake)
    target.parent.mkdir(parents=True, exist_ok=True)
    versions = [int(p.stem.split("-v")[1]) for p in target.parent.glob("model-v*.json")
                if p.stem.split("-v")[1].isdigit()]
    version = max(versions, default=0) + 1
    versioned = Model(model.splink, model.threshold, model.trained, version)
    text = versioned.to_json() + "\n"
    layout.write_text_atomic(target.parent / f"model-v{version}.json", text)
    layout.write_text_atomic(target, text)
    return target


def nicknames() -> dict[str, str]:
    """name -> its equivalence class (config/nicknames.csv: name,canonical)."""
    path = cfg.config_dir() / "nicknames.csv"
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()[1:], start=2):
        if not line.strip():
            continue
        parts = [p.strip().lower() for p in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"{path}:{n}: expected name,canonical, got {line!r}")
        out[parts[0]] = parts[1]
    return out


def splink_input(features: pl.DataFrame) -> pl.DataFrame:
    """The compared columns plus the nickname class of the first name."""
    nick = nicknames()
    first = features["first_name"]
    return features.select("node_id", *COMPARED, "first_names").with_columns(
        first.replace_strict(nick, default=first, return_dtype=pl.String)
        .alias("first_name_nick"))


@contextlib.contextmanager
def _em_iterations() -> Iterator[list[str]]:
    """The EM iterations Splink logs ("Iteration N: ...") while the block runs, kept
    out of the user's output."""
    seen: list[str] = []

    class Iterations(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Iteration "):
                seen.append(record.getMessage())

    log = logging.getLogger("splink")
    handler, level, propagate = Iterations(logging.INFO), log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield seen
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _linker(frame: pl.DataFrame, model_settings, con: duckdb.DuckDBPyConnection):  # noqa: ANN001, ANN202
    from splink import DuckDBAPI, Linker

    db = DuckDBAPI(con)
    table = db.register(frame.to_arrow(), table_name="c360_identity_records")
    return db, Linker(table, model_settings, log_level=None)


def score(features: pl.DataFrame, pairs: pl.DataFrame, model: Model) -> pl.DataFrame:
    """node_l, node_r, match_weight, match_probability, matched_on (the comparisons
    that counted for a match) and mw_* (each comparison's match weight) for `pairs`."""
    schema = {"node_l": pl.String, "node_r": pl.String, "match_weight": pl.Float64,
              "match_probability": pl.Float64, "matched_on": pl.String}
    if pairs.height == 0:
        return pl.DataFrame(schema=schema)
    con = duckdb.connect()  # one linker per connection: its table names are fixed
    ids = pl.concat([pairs["node_l"], pairs["node_r"]]).unique()
    frame = splink_input(features.filter(pl.col("node_id").is_in(ids.implode())))
    logging.getLogger("splink").setLevel(logging.WARNING)
    db, linker = _linker(frame, {**model.splink, "retain_intermediate_calculation_columns": True},
                         con)
    blocked = db.register(pairs.select(
        pl.col("match_key").cast(pl.String) if "match_key" in pairs.columns
        else pl.lit("0").alias("match_key"),
        pl.col("node_l").alias("join_key_l"), pl.col("node_r").alias("join_key_r")).to_arrow(),
        table_name="c360_identity_pairs")
    linker.table_management.register_blocked_pairs_for_predict(blocked)
    out = pl.from_arrow(linker.inference.predict(warning_mode="never").as_duckdbpyrelation()
                        .arrow())
    names = [c["output_column_name"] for c in model.splink["comparisons"]]
    agreed = pl.concat_str([pl.when(pl.col(f"mw_{c}") > 0).then(pl.lit(c)) for c in names],
                           separator=",", ignore_nulls=True)
    return out.select(pl.col("node_id_l").alias("node_l"), pl.col("node_id_r").alias("node_r"),
                      "match_weight", "match_probability", agreed.alias("matched_on"),
                      *[pl.col(f"mw_{c}") for c in names])


U_PAIRS = 5_000_000  # random pairs sampled to estimate u


def _floor_unobserved(saved: dict, m_floor: float, u_floor: float) -> dict:
    """Give levels the training never observed an explicit estimate instead of none
    (Splink would give them a neutral weight).

    * neither m nor u observed (a column the data never holds): neutral, m = u.
    * m estimated below `m_floor` (EM converges to ~0 for a level no match showed):
      `m_floor`, so one such level cannot outweigh every other comparison.
    * u unobserved in the random sample: half an observation (`u_floor`).
    * m unobserved among labelled matches, on an agreement level (a nickname, swapped
      first/last names, a looser Jaro-Winkler band - variations the labelled data may
      simply not contain): the Bayes factor of the nearest observed level above it
      (more similar), so a nickname counts like the exact name it stands for, never
      more.
    * m unobserved on the last ("all other") level: half an observation - a
      disagreement no labelled match showed counts strongly against a match.
    """
    for comparison in saved["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        above: float | None = None  # Bayes factor of the nearest observed level above
        for i, level in enumerate(levels):
            if level.get("u_probability") is None and level.get("m_probability") is None:
                # Never seen at all (a column the data does not hold, a level it never
                # reaches): neutral, it neither helps nor hurts a pair.
                level["u_probability"] = level["m_probability"] = u_floor
                continue
            if level.get("u_probability") is None:
                level["u_probability"] = u_floor
            if level.get("m_probability") is not None and level["m_probability"] < m_floor:
                level["m_probability"] = m_floor  # EM drove it to ~0: an observation's worth
            last = i == len(levels) - 1
            if level.get("m_probability") is None:
                level["m_probability"] = (m_floor if last or above is None
                                          else min(1.0, level["u_probability"] * above))
            else:
                above = level["m_probability"] / level["u_probability"]
    return saved


# EM sessions (Splink's method): each blocks on some columns and estimates m for all the
# others; Splink averages a level's estimates over the sessions. Sessions whose blocks
# hold too few pairs are skipped; large ones are sampled. Blocked on an open e-mail or
# phone, nearly every pair is one person: the best estimate of how often one person's
# names, birth dates and addresses differ. Blocked on a name, namesakes abound and EM
# confuses them with matches: that session runs only where no identifier session can
# (data without e-mails or phones, such as FEBRL).
IDENTIFIER_SESSIONS: tuple[tuple[str, ...], ...] = (("email",), ("phone",))
EM_SESSIONS: tuple[tuple[str, ...], ...] = (
    *IDENTIFIER_SESSIONS,
    ("birth_date", "postal_code"),
    ("birth_date", "city"),
    ("first_name", "last_name"),
)
EM_MIN_PAIRS = 50
EM_MAX_PAIRS = 2_000_000
PRIOR_ITERATIONS = 50
MIN_THRESHOLD = 0.0  # match weight 0 = match probability 0.5


def _blocked_pairs(frame: pl.DataFrame, columns: tuple[str, ...]) -> int:
    sizes = frame.drop_nulls(list(columns)).group_by(list(columns)).len()["len"]
    return int((sizes * (sizes - 1) // 2).sum()) if sizes.len() else 0


def _posterior(bayes_log2: np.ndarray, prior: float) -> np.ndarray:
    logit = bayes_log2 + np.log2(prior / (1 - prior))
    return 1.0 / (1.0 + np.exp2(-np.clip(logit, -60, 60)))


def estimate_prior(bayes_log2: np.ndarray, known_matches: int, total_pairs: float,
                   start: float = 1e-5) -> float:
    """The prior (two random records match) by EM over the blocked pairs: iterate
    prior = (known deterministic matches + the expected matches among the scored pairs
    at this prior) / all pairs, to its fixed point."""
    prior = start
    for _ in range(PRIOR_ITERATIONS):
        new = (known_matches + float(_posterior(bayes_log2, prior).sum())) / total_pairs
        new = min(max(new, 1e-12), 0.5)
        if abs(new - prior) <= 1e-6 * prior:
            return new
        prior = new
    return prior


def expected_f1_threshold(weights: np.ndarray, probabilities: np.ndarray
                          ) -> tuple[float, float]:
    """(threshold, expected F1): the match weight at which the pairwise F1 expected under
    the model's own posteriors peaks, over the candidate pairs (no labels needed)."""
    if weights.size == 0:
        return 0.0, 0.0
    order = np.argsort(-weights, kind="stable")
    w, p = weights[order], probabilities[order]
    tp = np.cumsum(p)
    k = np.arange(1, p.size + 1)
    f1 = 2 * tp / (k + p.sum())
    # A threshold takes every pair of its weight: only the last of equal weights counts
    # (many pairs share one weight, e.g. names alike and nothing else known).
    ends = np.flatnonzero(np.append(w[1:] != w[:-1], True))
    best = int(ends[np.argmax(f1[ends])])
    return float(w[best]), float(f1[best])


def train_unsupervised(features: pl.DataFrame, candidates: pl.DataFrame,
                       known_matches: int, description: dict, seed: int = 1,
                       progress: Callable[[str], None] = print,
                       guarded: pl.DataFrame | None = None) -> Model:
    """Estimate the model from the records alone (see module docstring).

    `candidates`: the pairs the pipeline would score (blocking plus held pairs), with no
    deterministic pair among them; `known_matches`: record pairs the deterministic links
    already join (inside their components); `guarded`: kind, value of the e-mails and
    phones the guards stop (role mailboxes, values over the limit, contested values such
    as a family mailbox). The EM sessions blocked on an e-mail or phone leave those
    out: their holders are a mix of people, and EM would learn from a household that a
    person's first name and birth date often differ."""
    con = duckdb.connect()
    frame = splink_input(features)
    for kind in ("email", "phone"):
        stopped = (guarded.filter(pl.col("kind") == kind)["value"] if guarded is not None
                   else pl.Series([], dtype=pl.String))
        frame = frame.with_columns(
            (pl.col(kind).is_not_null() & ~pl.col(kind).is_in(stopped.implode()))
            .alias(f"{kind}_open"))
    logging.getLogger("splink").setLevel(logging.WARNING)
    model_settings = settings(1e-4)
    _, linker = _linker(frame, model_settings, con)
    t0 = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=seed)
    progress(f"identity-train: u from {U_PAIRS:,} random pairs "
             f"({time.perf_counter() - t0:.1f}s)")
    from splink import block_on

    sessions: list[dict] = []
    identifier_ran = False
    for columns in EM_SESSIONS:
        identifier = columns in IDENTIFIER_SESSIONS
        # An identifier session blocks only on open values (`<kind>_open`).
        block = frame.filter(pl.col(f"{columns[0]}_open")) if identifier else frame
        pairs = _blocked_pairs(block, columns)
        if columns == ("first_name", "last_name") and identifier_ran:
            sessions.append({"blocked_on": list(columns), "pairs": pairs, "skipped": True,
                             "why": "identifier sessions ran"})
            continue
        if pairs < EM_MIN_PAIRS:
            sessions.append({"blocked_on": list(columns), "pairs": pairs, "skipped": True})
            continue
        identifier_ran |= identifier
        t0 = time.perf_counter()
        c = columns[0]
        rule = (f'l."{c}" = r."{c}" AND l."{c}_open" AND r."{c}_open"' if identifier
                else block_on(*columns))
        # Splink stops early once the largest change is below em_convergence, else after
        # max_iterations; it logs each iteration.
        with _em_iterations() as iterations_seen:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True,
                max_pairs=EM_MAX_PAIRS if pairs > EM_MAX_PAIRS else None)
        iterations = len(iterations_seen) or None
        limit = model_settings.max_iterations
        sessions.append({"blocked_on": list(columns), "pairs": pairs,
                         "sampled_to": EM_MAX_PAIRS if pairs > EM_MAX_PAIRS else None,
                         "iterations": iterations,
                         "converged": iterations is not None and iterations < limit})
        progress(f"identity-train: EM blocked on {' + '.join(columns)}: {pairs:,} pairs"
                 f"{f' (sampled to {EM_MAX_PAIRS:,})' if pairs > EM_MAX_PAIRS else ''} "
                 f"({time.perf_counter() - t0:.1f}s)")
    n = frame.height
    saved = _canonical(_floor_unobserved(linker.misc.save_model_to_json(),
                                         m_floor=0.5 / max(n, 1), u_floor=0.5 / U_PAIRS))
    base = 1e-4
    saved["probability_two_random_records_match"] = base
    scored = score(features, candidates, Model(saved, 0.0, {}))
    # Bayes factors (log2) without the prior: the weight less the prior's log-odds.
    bayes = scored["match_weight"].to_numpy() - np.log2(base / (1 - base))
    total = n * (n - 1) / 2 if n > 1 else 1.0
    prior = estimate_prior(bayes, known_matches, total)
    saved["probability_two_random_records_match"] = prior
    weights = bayes + np.log2(prior / (1 - prior))
    posterior = _posterior(bayes, prior)
    threshold, f1 = expected_f1_threshold(weights, posterior)
    # Never link a pair the model itself finds more likely two people than one: a wrong
    # merge leaks one customer's data into another's profile, worse than a miss.
    threshold = max(threshold, MIN_THRESHOLD)
    trained = {**description, "method": "unsupervised (Splink: u by random sampling, m by "
               "EM over blocked pairs; prior by EM over the candidate pairs; threshold at "
               "the expected-F1 peak, at least match probability 0.5)", "seed": seed, "records": n,
               "em_sessions": sessions, "candidate_pairs": int(scored.height),
               "known_deterministic_matches": int(known_matches), "prior": prior,
               "expected_matches_among_candidates": round(float(posterior.sum()), 1),
               "expected_f1_at_threshold": round(f1, 4)}
    progress(f"identity-train: prior {prior:.3g}, threshold match weight {threshold:.2f} "
             f"(expected pairwise F1 {f1:.4f} over {scored.height:,} candidate pairs)")
    return Model(saved, threshold, trained)


def _canonical(saved: dict) -> dict:
    """The saved model with probabilities to 10 significant digits and a fixed linker id:
    DuckDB's parallel sums differ in the last bits from run to run, and the same data and
    seed must give the same model file."""
    saved["linker_uid"] = "c360"
    for comparison in saved["comparisons"]:
        for level in comparison["comparison_levels"]:
            for key in ("m_probability", "u_probability"):
                if level.get(key) is not None:
                    level[key] = float(f"{level[key]:.10g}")
    return saved


def train_supervised(features: pl.DataFrame, pairs: pl.DataFrame, labels: pl.DataFrame,
                     description: dict) -> Model:
    """Train m from labelled records (`labels`: node_id, true_id), u by random sampling,
    the prior from the labels; choose the threshold maximising pairwise F1 on `pairs`
    (the candidate pairs the pipeline would score)."""
    con = duckdb.connect()
    frame = splink_input(features).join(labels, on="node_id", how="inner")
    true_pairs = (frame.group_by("true_id").agg(pl.len().alias("n"))
                  .select((pl.col("n") * (pl.col("n") - 1) / 2).sum()).item())
    total = frame.height * (frame.height - 1) / 2
    prior = max(min(true_pairs / total, 0.5), 1e-9) if total else 1e-5
    _, linker = _linker(frame, settings(prior), con)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=1)
    linker.training.estimate_m_from_label_column("true_id")
    saved = _canonical(_floor_unobserved(linker.misc.save_model_to_json(),
                                         m_floor=0.5 / max(true_pairs, 1),
                                         u_floor=0.5 / U_PAIRS))
    scored = score(features, pairs, Model(saved, 0.0, {}))
    truth = labels.rename({"node_id": "node_l", "true_id": "t_l"})
    scored = (scored.join(truth, on="node_l").join(
        truth.rename({"node_l": "node_r", "t_l": "t_r"}), on="node_r")
        .with_columns((pl.col("t_l") == pl.col("t_r")).alias("same"))
        .sort("match_weight", descending=True))
    positives = scored["same"].sum()
    tp = scored["same"].cast(pl.Int64).cum_sum()
    k = pl.Series(range(1, scored.height + 1))
    f1 = 2 * tp / (k + positives)
    best = int(f1.arg_max()) if scored.height else 0
    threshold = float(scored["match_weight"][best]) if scored.height else 0.0
    trained = {**description, "method": "labelled (m from the labels, u by random "
               "sampling, threshold maximising pairwise F1 on the labelled candidates)",
               "candidate_pairs": scored.height, "true_candidate_pairs": int(positives),
               "candidate_f1_at_threshold": round(float(f1[best]), 4) if scored.height else None,
               "prior": prior}
    return Model(saved, threshold, trained)


def report(model: Model) -> str:
    """The learnt weights per comparison level, the prior and the threshold, for a data
    steward: how much each kind of agreement or disagreement counts (in bits: +1 doubles
    the odds of a match, -1 halves them)."""
    lines = [f"identity model v{model.version}" + (f" ({model.path})" if model.path else ""),
             f"method: {model.trained.get('method', 'unknown')}"]
    prior = model.splink.get("probability_two_random_records_match", 0.0)
    lines.append(f"prior (two random records match): {prior:.3g} = "
                 f"{math.log2(prior / (1 - prior)) if 0 < prior < 1 else float('nan'):+.1f} bits")
    lines.append(f"threshold: a pair links at a total match weight >= {model.threshold:.2f} "
                 f"(match probability {1 / (1 + 2 ** -model.threshold):.3f})")
    for comparison in model.splink["comparisons"]:
        lines.append(f"\n{comparison['output_column_name']}")
        lines.append(f"  {'level':<58} {'m':>9} {'u':>9} {'weight':>7}")
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                lines.append(f"  {'either side missing':<58} {'':>9} {'':>9} {0:>+7.1f}")
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            weight = math.log2(m / u) if m and u else float("nan")
            lines.append(f"  {level.get('label_for_charts', level['sql_condition'])[:58]:<58} "
                         f"{m:>9.2e} {u:>9.2e} {weight:>+7.1f}")
    summary = {k: v for k, v in model.trained.items() if k not in ("method",)}
    lines.append("\ntrained: " + json.dumps(summary, default=str))
    return "\n".join(lines)
