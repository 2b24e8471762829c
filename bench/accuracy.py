"""Identity accuracy against labelled truth: pairwise precision/recall/F1 and persons
reconstructed exactly."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


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
    """What no linker can recover: true pairs that touch an *unplaceable* record, one
    holding no identifier (e-mail, phone, anonymous id) ever, no birth date and no
    address - nothing but a name - whose name several true persons share (or no name at
    all). Which of the namesakes it belongs to is not in the data."""

    unplaceable_records: int
    true_pairs: int
    lost_pairs: int

    @property
    def recall(self) -> float:
        return 1 - self.lost_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:  # at perfect precision
        return 2 * self.recall / (1 + self.recall)

    def line(self, label: str) -> str:
        return (f"{label}: {self.unplaceable_records:,} records carry nothing but a name "
                f"shared by several persons (or none); they touch {self.lost_pairs:,} of "
                f"{self.true_pairs:,} true pairs: recall at most {self.recall:.4f}, F1 at "
                f"most {self.f1:.4f} for a linker that does not guess among namesakes")


def ceiling(features: pl.DataFrame, identified: pl.Series, truth: pl.DataFrame) -> Ceiling:
    """`features`: identity.record_features rows; `identified`: node ids holding any
    identifying value; `truth`: node_id, true_id."""
    f = features.join(truth, on="node_id", how="inner")
    names = f.group_by("first_name", "last_name").agg(
        pl.col("true_id").n_unique().alias("namesakes"))
    bare = (f.filter(~pl.col("node_id").is_in(identified.implode())
                     & pl.col("birth_date").is_null() & pl.col("street").is_null()
                     & pl.col("postal_code").is_null() & pl.col("city").is_null())
            .join(names, on=["first_name", "last_name"], how="left", nulls_equal=False)
            .filter(pl.col("namesakes").fill_null(2) > 1))
    per = (f.with_columns(pl.col("node_id").is_in(bare["node_id"].implode()).alias("bare"))
           .group_by("true_id").agg(pl.len().alias("n"), pl.col("bare").sum().alias("b")))
    # Pairs with at least one unplaceable record: all pairs minus pairs of placeable ones.
    lost = per.select((pl.col("n") * (pl.col("n") - 1) // 2
                       - (pl.col("n") - pl.col("b")) * (pl.col("n") - pl.col("b") - 1) // 2)
                      .sum()).item()
    total = per.select((pl.col("n") * (pl.col("n") - 1) // 2).sum()).item()
    return Ceiling(bare.height, int(total), int(lost))
