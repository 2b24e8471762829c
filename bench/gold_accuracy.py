"""Golden-record correctness against the generator's truth, for c360 and for a
record-level-latest baseline on the same lake.

For every true person with at least one live record in silver and every canonical
attribute whose true current value some source landed (`observed` in
`_truth/attributes.parquet`), is the golden value the true one?

* c360: `<lake>/gold/resolved_attributes` (field-level times, resolve_winner).
* Baselines - what record-timestamped CDPs do: each person's newest record wins every
  field it holds; a field the newest record lacks comes from the next newest record that
  has it. Same silver values, same identity: only the survivorship differs. "Newest" by
  * record time ("last modified": the latest record time the record's snapshots or
    events carried - Salesforce system_modstamp, Shopify/Zendesk updated_at, SAP laeda,
    Segment timestamp), or
  * sync time ("last synced": the latest `_fivetran_synced`, Segment `received_at`) -
    the seed's example, where a full re-sync makes a record newest.
  A third baseline, "last modified, true identity", groups records by the *true*
  person instead of c360's: what record-level survivorship would get with perfect
  identity resolution. c360 must beat it too - a person c360 splits in two loses
  values that baseline keeps.

A true person maps to the c360 person holding most of its live records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from c360_assets.bronze import BUILTIN, record_tables
from c360_assets.lib.registry import load_registry
from c360_assets.silver.identity_build import truth_labels

CANONICAL = tuple(attribute for attribute, _ in load_registry().gold_columns())


@dataclass
class Correctness:
    by_attribute: pl.DataFrame  # attribute, pairs, c360, modified, synced, true_identity
    contested: pl.DataFrame  # the same, only where the person's records disagree
    pairs: int
    c360: float
    modified: float
    synced: float
    persons_scored: int
    persons_without_live_record: int

    def table(self, contested: bool = False) -> str:
        frame = self.contested if contested else self.by_attribute
        total = frame.select(pl.col("pairs").sum(), *(
            (pl.col(c) * pl.col("pairs")).sum() / pl.col("pairs").sum()
            for c in ("c360", "modified", "synced", "true_identity"))).row(0, named=True)
        lines = ["| attribute | (person, attribute) pairs | c360 | record-level latest, "
                 "last modified | gap | record-level latest, last synced | gap | "
                 "last modified, true identity | gap |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        rows = [*frame.iter_rows(named=True), {"attribute": "**all**", **total}]
        for row in rows:
            lines.append(f"| {row['attribute']} | {row['pairs']:,} | {row['c360']:.2%} | "
                         f"{row['modified']:.2%} | {row['c360'] - row['modified']:+.2%} | "
                         f"{row['synced']:.2%} | {row['c360'] - row['synced']:+.2%} | "
                         f"{row['true_identity']:.2%} | "
                         f"{row['c360'] - row['true_identity']:+.2%} |")
        return "\n".join(lines)


def current_values(lake: Path) -> pl.DataFrame:
    """person_id, node_id, source_system, attribute, value: current values of live records."""
    edges = (pl.scan_delta(str(lake / "silver" / "relationships"))
             .filter(pl.col("is_current") & pl.col("rel_type").str.starts_with("HAS_"))
             .select(pl.col("source_node_id").alias("node_id"), "target_node_id",
                     "source_system"))
    values = (pl.scan_delta(str(lake / "silver" / "nodes"))
              .filter(pl.col("node_type").is_in(CANONICAL))
              .select(pl.col("node_id").alias("target_node_id"),
                      pl.col("node_type").alias("attribute"), "value"))
    identity = pl.scan_delta(str(lake / "silver" / "identity")).select("node_id", "person_id")
    return (edges.join(values, on="target_node_id").join(identity, on="node_id")
            .drop("target_node_id").collect())


def record_times(lake: Path, by: str) -> pl.LazyFrame:
    """node_id, record_time: per customer record, the newest record time (`by` =
    "modified") or sync time ("synced") its main table's snapshots or events carried."""
    frames = []
    for t in record_tables(BUILTIN):
        path = lake / "bronze" / t.key
        r = t.records
        if r is None or r.entity_type != "customer" or t.main_ref is not None \
                or not path.exists():
            continue
        scan = pl.scan_delta(str(path))
        when = t.silver_record_time()
        if by == "synced":
            when = pl.col("received_at" if r.tier == 1 else "_fivetran_synced")
        frames.append(scan.select(
            pl.format("{}{}", pl.lit(t.node_prefix()), r.record_id()).alias("node_id"),
            when.cast(pl.Datetime("us", "UTC")).alias("record_time")))
    return pl.concat(frames).group_by("node_id").agg(pl.col("record_time").max())


def baseline(values: pl.DataFrame, lake: Path, by: str) -> pl.DataFrame:
    """person_id, attribute, value chosen by record-level latest (`by`: modified|synced)."""
    priority = load_registry().priorities
    return (values.lazy().join(record_times(lake, by), on="node_id", how="left")
            .with_columns(pl.col("source_system").replace_strict(priority, default=999)
                          .alias("_priority"))
            .sort(["person_id", "attribute", "record_time", "_priority", "node_id"],
                  descending=[False, False, True, False, False], nulls_last=True)
            .group_by("person_id", "attribute", maintain_order=True).first()
            .select("person_id", "attribute", "value").collect())


def score(lake: Path, truth_dir: Path) -> Correctness:
    values = current_values(lake)
    labels = truth_labels(truth_dir / "records.parquet")
    live = values.select("node_id", "person_id").unique()
    votes = (live.join(labels, on="node_id").group_by("true_id", "person_id").len()
             .sort(["true_id", "len", "person_id"], descending=[False, True, False])
             .group_by("true_id", maintain_order=True).first().drop("len"))
    truth = (pl.read_parquet(truth_dir / "attributes.parquet")
             .filter(pl.col("observed") & pl.col("attribute").is_in(CANONICAL))
             .select(pl.col("person_id").cast(pl.String).alias("true_id"), "attribute",
                     pl.col("value").alias("true_value")))
    persons_total = truth.get_column("true_id").n_unique()
    truth = truth.join(votes, on="true_id", how="inner")
    golden = (pl.read_delta(str(lake / "gold" / "resolved_attributes"))
              .select(pl.col("customer_id").alias("person_id"), "attribute",
                      pl.col("value").alias("c360_value")))
    scored = truth.join(golden, on=["person_id", "attribute"], how="left")
    for by in ("modified", "synced"):
        naive = baseline(values, lake, by).rename({"value": f"{by}_value"})
        scored = scored.join(naive, on=["person_id", "attribute"], how="left")
    perfect = (baseline(values.drop("person_id").join(
        labels.rename({"true_id": "person_id"}), on="node_id"), lake, "modified")
        .rename({"person_id": "true_id", "value": "true_identity_value"}))
    scored = scored.join(perfect, on=["true_id", "attribute"], how="left")
    scored = scored.with_columns(
        (pl.col(f"{name}_value") == pl.col("true_value")).fill_null(False).alias(name)
        for name in ("c360", "modified", "synced", "true_identity"))
    disagree = (values.group_by("person_id", "attribute").agg(pl.col("value").n_unique())
                .filter(pl.col("value") > 1).select("person_id", "attribute"))

    def by_attribute(frame: pl.DataFrame) -> pl.DataFrame:
        return (frame.group_by("attribute")
                .agg(pl.len().alias("pairs"), pl.col("c360").mean(),
                     pl.col("modified").mean(), pl.col("synced").mean(),
                     pl.col("true_identity").mean())
                .sort("attribute"))
    persons = truth.get_column("true_id").n_unique()
    return Correctness(by_attribute(scored),
                       by_attribute(scored.join(disagree, on=["person_id", "attribute"])),
                       scored.height, scored["c360"].mean(),
                       scored["modified"].mean(), scored["synced"].mean(), persons,
                       persons_total - persons)


def misses(lake: Path, truth_dir: Path, attribute: str, n: int = 10) -> pl.DataFrame:
    """Examples where c360's golden value is not the true one (for investigation)."""
    values = current_values(lake)
    labels = truth_labels(truth_dir / "records.parquet")
    votes = (values.select("node_id", "person_id").unique().join(labels, on="node_id")
             .group_by("true_id").agg(pl.col("person_id").mode().first()))
    truth = (pl.read_parquet(truth_dir / "attributes.parquet")
             .filter(pl.col("observed") & (pl.col("attribute") == attribute))
             .select(pl.col("person_id").cast(pl.String).alias("true_id"), "value", "changed_at")
             .join(votes, on="true_id"))
    golden = pl.read_delta(str(lake / "gold" / "resolved_attributes")).filter(
        pl.col("attribute") == attribute).rename({"customer_id": "person_id"})
    return (truth.join(golden, on="person_id", how="left", suffix="_golden")
            .filter(pl.col("value") != pl.col("value_golden").fill_null("<none>")).head(n))
