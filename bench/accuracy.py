"""Identity accuracy against labelled truth: pairwise precision/recall/F1 and persons
reconstructed exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass
class Accuracy:
    records: int
    true_persons: int
    predicted_persons: int
    precision: float
    recall: float
    f1: float
    exact_persons: float  # share of true persons whose records are exactly one predicted person

    def row(self, label: str) -> str:
        return (f"| {label} | {self.records:,} | {self.true_persons:,} | "
                f"{self.predicted_persons:,} | {self.precision:.4f} | {self.recall:.4f} | "
                f"{self.f1:.4f} | {self.exact_persons:.2%} |")


HEADER = ("| data | records | true persons | predicted persons | precision | recall | F1 | "
          "persons exact |\n|---|---:|---:|---:|---:|---:|---:|---:|")


def accuracy(predicted: pl.DataFrame, truth: pl.DataFrame) -> Accuracy:
    """`predicted`: node_id, person_id; `truth`: node_id, true_id (records in both count)."""
    got = predicted.select("node_id", "person_id").join(truth, on="node_id", how="inner")

    def pairs(*cols: str) -> int:
        return got.group_by(*cols).len().select(
            (pl.col("len").cast(pl.Int64) * (pl.col("len") - 1) // 2).sum()).item()

    both, pred, true = pairs("person_id", "true_id"), pairs("person_id"), pairs("true_id")
    precision = both / pred if pred else 1.0
    recall = both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    true_sizes = got.group_by("true_id").len().rename({"len": "n_true"})
    pred_sizes = got.group_by("person_id").len().rename({"len": "n_pred"})
    cells = (got.group_by("true_id", "person_id").len()
             .join(true_sizes, on="true_id").join(pred_sizes, on="person_id"))
    exact = cells.filter((pl.col("len") == pl.col("n_true")) & (pl.col("len") == pl.col("n_pred")))
    return Accuracy(got.height, true_sizes.height, pred_sizes.height, precision, recall, f1,
                    exact.height / true_sizes.height if true_sizes.height else 1.0)


@dataclass
class Ceiling:
    """What no linker can recover without guessing: true pairs whose records nothing but
    a name several persons share ties together. Two records of one person are
    comparable when they share an identifying value (e-mail, phone, anonymous id, a
    merge), both carry a birth date, both carry an address, or both carry a full name
    no other person holds; a chain of comparable records is placeable. Pairs across
    chains are lost: which of the namesakes a record belongs to is not in the data.
    (An upper bound: two birth dates or addresses may still disagree.)"""

    unplaceable_records: int  # records outside the largest chain of their person
    true_pairs: int
    lost_pairs: int

    @property
    def recall(self) -> float:
        return 1 - self.lost_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:  # at perfect precision
        return 2 * self.recall / (1 + self.recall)

    def line(self, label: str) -> str:
        return (f"{label}: {self.unplaceable_records:,} records share nothing with the rest "
                f"of their person but a name several persons hold (no identifier, birth date "
                f"or address on both sides); they cost {self.lost_pairs:,} of "
                f"{self.true_pairs:,} true pairs: recall at most {self.recall:.4f}, F1 at "
                f"most {self.f1:.4f} for a linker that does not guess among namesakes")


def ceiling(features: pl.DataFrame, keys: pl.DataFrame, truth: pl.DataFrame) -> Ceiling:
    """`features`: identity.record_features rows; `keys`: node_id, kind, value (every
    identifying value each record ever held, merges too); `truth`: node_id, true_id."""
    f = (features.join(truth, on="node_id", how="inner").sort("node_id")
         .with_row_index("i"))
    namesakes = f.group_by("first_name", "last_name").agg(
        pl.col("true_id").n_unique().alias("namesakes"))
    f = f.join(namesakes, on=["first_name", "last_name"], how="left", nulls_equal=False)
    tagged = pl.concat([
        f.filter(pl.col("birth_date").is_not_null()).select("i", "true_id",
                                                            pl.lit("birth").alias("tag")),
        f.filter(pl.any_horizontal(pl.col("street", "postal_code", "city").is_not_null()))
        .select("i", "true_id", pl.lit("address").alias("tag")),
        f.filter(pl.col("namesakes") == 1).select(
            "i", "true_id", pl.format("name:{} {}", "first_name", "last_name").alias("tag")),
        keys.join(f.select("node_id", "i", "true_id"), on="node_id").select(
            "i", "true_id", pl.format("{}:{}", "kind", "value").alias("tag")),
    ])
    # Records of one person carrying one tag form a chain (consecutive pairs suffice).
    chained = tagged.unique().sort("true_id", "tag", "i").with_columns(
        pl.col("i").shift(-1).over("true_id", "tag").alias("j")).drop_nulls("j")
    n = f.height
    graph = coo_matrix((np.ones(chained.height, dtype=np.int8),
                        (chained["i"].to_numpy(), chained["j"].to_numpy())), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    parts = (f.select("true_id").with_columns(pl.Series("part", label))
             .group_by("true_id", "part").len())

    def pairs(col: pl.Expr) -> pl.Expr:
        return (col * (col - 1) // 2).sum()

    per = parts.group_by("true_id").agg(pl.col("len").sum().alias("n"),
                                        pairs(pl.col("len")).alias("kept"),
                                        pl.col("len").max().alias("largest"))
    total = per.select(pairs(pl.col("n"))).item()
    lost = total - per["kept"].sum()
    outside = per.select((pl.col("n") - pl.col("largest")).sum()).item()
    return Ceiling(int(outside), int(total), int(lost))
