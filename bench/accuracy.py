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
