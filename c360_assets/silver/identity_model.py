"""The probabilistic identity model: Splink (DuckDB backend) over record features.

The model (comparisons, trained m/u parameters, prior) and its decision threshold live
in one JSON file, `config/identity_model.json`. It is trained by `c360 identity-train`
on labelled data - a generated world's truth, or a user's own clerically reviewed
pairs - and the threshold is the match weight that maximises pairwise F1 on the
labelled candidate pairs, never a fixed probability (Splink's precision at a fixed 0.9
falls as data grows).

At run time nothing is trained: `score` registers the candidate pairs chosen by
`identity.candidate_pairs` with Splink (`register_blocked_pairs_for_predict`) and asks
it for match weights, so scoring is deterministic and costs only the pairs scored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from c360_assets.lib import config as cfg
from c360_assets.lib.config import ConfigError
from c360_assets.silver.identity import COMPARED, CONTRADICTIONS, unsupported

MODEL_FILE = "identity_model.json"
MODEL_FORMAT = 1


def comparisons() -> list:
    """Comparisons on names (typo and nickname tolerant: Jaro-Winkler levels and a
    nickname-equivalence level), birth date, address, e-mail and phone similarity.

    No term-frequency adjustments: a pair's score must depend on the two records only,
    so a pair scored in one run scores the same in the next (incremental scoring)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    def levels(col: str, *middle: object) -> object:
        return cl.CustomComparison(output_column_name=col, comparison_levels=[
            cll.NullLevel(col), cll.ExactMatchLevel(col), *middle, cll.ElseLevel()])

    return [
        levels("first_name",
               cll.CustomLevel("first_name_nick_l = first_name_nick_r",
                               "nickname of each other"),
               cll.ColumnsReversedLevel("first_name", "last_name", symmetrical=True),
               cll.JaroWinklerLevel("first_name", 0.92), cll.JaroWinklerLevel("first_name", 0.8)),
        levels("last_name", cll.JaroWinklerLevel("last_name", 0.92),
               cll.JaroWinklerLevel("last_name", 0.8)),
        levels("birth_date", cll.DamerauLevenshteinLevel("birth_date", 1),
               cll.CustomLevel("substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4)",
                               "same year")),
        levels("street", cll.JaroWinklerLevel("street", 0.92),
               cll.JaroWinklerLevel("street", 0.8)),
        levels("postal_code"),
        levels("city"),
        levels("country"),
        levels("email",
               cll.CustomLevel("split_part(email_l, '@', 1) = split_part(email_r, '@', 1)",
                               "same local part"),
               cll.JaroWinklerLevel("email", 0.88)),
        levels("phone",
               cll.CustomLevel("right(phone_l, 8) = right(phone_r, 8)", "same last 8 digits")),
    ]


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
    trained: dict  # what it was trained on, and its scores there
    # The contradictions (identity.CONTRADICTIONS) the labels bore out.
    contradictions: tuple[str, ...] = CONTRADICTIONS

    def to_json(self) -> str:
        return json.dumps({"format": MODEL_FORMAT, "threshold_match_weight": self.threshold,
                           "contradictions": list(self.contradictions),
                           "trained": self.trained, "splink": self.splink}, indent=1)


def model_path() -> Path:
    return cfg.config_dir() / MODEL_FILE


def load_model(path: Path | None = None) -> Model:
    """The model file (read each time: a retrained model applies from the next run)."""
    path = path or model_path()
    if not path.exists():
        raise ConfigError(f"{path}: identity model missing; train one with "
                          "`c360 identity-train` (see README)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != MODEL_FORMAT:
            raise ConfigError(f"{path}: format {raw.get('format')!r}, expected {MODEL_FORMAT}")
        contradictions = tuple(raw.get("contradictions", CONTRADICTIONS))
        unknown = set(contradictions) - set(CONTRADICTIONS)
        if unknown:
            raise ConfigError(f"{path}: unknown contradictions {sorted(unknown)} "
                              f"(known: {', '.join(CONTRADICTIONS)})")
        return Model(raw["splink"], float(raw["threshold_match_weight"]),
                     raw.get("trained", {}), contradictions)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a c360 identity model: {exc}") from exc


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
    return features.select("node_id", *COMPARED).with_columns(
        first.replace_strict(nick, default=first, return_dtype=pl.String)
        .alias("first_name_nick"))


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
    names = [c.output_column_name for c in linker._settings_obj.comparisons]
    agreed = pl.concat_str([pl.when(pl.col(f"mw_{c}") > 0).then(pl.lit(c)) for c in names],
                           separator=",", ignore_nulls=True)
    return out.select(pl.col("node_id_l").alias("node_l"), pl.col("node_id_r").alias("node_r"),
                      "match_weight", "match_probability", agreed.alias("matched_on"),
                      *[pl.col(f"mw_{c}") for c in names])


U_PAIRS = 5_000_000  # random pairs sampled to estimate u


def _floor_unobserved(saved: dict, m_floor: float, u_floor: float) -> dict:
    """Give levels the training never observed an explicit estimate instead of none
    (Splink would give them a neutral weight).

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
            if level.get("u_probability") is None:
                level["u_probability"] = u_floor
            last = i == len(levels) - 1
            if level.get("m_probability") is None:
                level["m_probability"] = (m_floor if last or above is None
                                          else min(1.0, level["u_probability"] * above))
            else:
                above = level["m_probability"] / level["u_probability"]
    return saved


def train(features: pl.DataFrame, pairs: pl.DataFrame, labels: pl.DataFrame,
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
    saved = _floor_unobserved(linker.misc.save_model_to_json(), m_floor=0.5 / max(true_pairs, 1),
                              u_floor=0.5 / U_PAIRS)
    model = Model(saved, 0.0, {})
    scored = score(features, pairs, model).filter(unsupported().is_null())
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
    trained = {**description, "candidate_pairs": scored.height,
               "true_candidate_pairs": int(positives),
               "candidate_f1_at_threshold": round(float(f1[best]), 4) if scored.height else None,
               "prior": prior}
    return Model(saved, threshold, trained)
