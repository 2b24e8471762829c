"""SAP customer master (Fivetran SAP connector, Tier 2; every value lands as a string).

Record ids are `<mandt>:<kunnr>` as landed (zero-padded). A KNA1 row is deleted when
`loevm='X'` or `_fivetran_deleted`. ADR6 holds the e-mails of a customer's own address
(`kna1.adrnr`): they attach to the KNA1 customer (`attach_adr6`).
"""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import UTC, Attachment, Pii, Records, SourceSpec, TableSpec, col
from c360_assets.bronze.contract import ColType as T


def _kna1_time() -> pl.Expr:
    # laeda is a date: it counts as 00:00 UTC of that day; else _fivetran_synced.
    return pl.coalesce(pl.col("laeda").cast(UTC), pl.col("_fivetran_synced"))


def _kna1_id() -> pl.Expr:
    return pl.format("{}:{}", "mandt", "kunnr")


def kna1_address() -> pl.Expr:
    """A KNA1 customer's own address key (`<mandt>:<adrnr>`)."""
    return pl.format("{}:{}", "mandt", "adrnr")


def adr6_address() -> pl.Expr:
    """The address an ADR6 row belongs to (`<client>:<addrnumber>`; = `kna1_address`)."""
    return pl.format("{}:{}", "client", "addrnumber")


def attach_adr6(adr6: pl.DataFrame, kna1: pl.DataFrame) -> pl.DataFrame:
    """ADR6 e-mail rows -> the primary e-mail of each KNA1 customer over time.

    Contract: primary = `flgdefault='X'` with a blank persnumber, else the lowest
    consnumber. At every time an ADR6 row of the address landed, each e-mail key's state
    is its latest row (as-of); the primary among the live keys is the customer's e-mail
    at that time (null when none is left).
    """
    if adr6.height == 0:
        return adr6.with_columns(pl.lit(None, pl.String).alias("_record_id"))
    owners = (kna1.select(kna1_address().alias("_addr"),
                          _kna1_id().alias("_record_id"))
              .drop_nulls().unique())
    rows = adr6.with_columns(
        adr6_address().alias("_addr"),
        pl.format("{}|{}", pl.col("persnumber").fill_null(""), pl.col("consnumber").fill_null(""))
        .alias("_mail_key"),
        (~((pl.col("flgdefault") == "X").fill_null(False)
           & pl.col("persnumber").fill_null("").eq(""))).cast(pl.Int8).alias("_rank"),
    )
    order = ["_fivetran_synced", "_landing_date", "_source_file", "_source_line"]
    times = rows.select("_addr", *order).unique()
    keys = rows.select("_addr", "_mail_key").unique()
    grid = times.join(keys, on="_addr").sort(order)
    state = grid.join_asof(
        rows.sort(order).select(*order, "_addr", "_mail_key", "_rank", "smtp_addr",
                                pl.col("_fivetran_deleted").alias("_gone"),
                                pl.col("_fivetran_synced").alias("_t")),
        on="_fivetran_synced", by=["_addr", "_mail_key"], strategy="backward",
        check_sortedness=False)
    live = state.filter(pl.col("_t").is_not_null() & ~pl.col("_gone").fill_null(False)
                        & pl.col("smtp_addr").is_not_null())
    primary = (live.sort("_rank", pl.col("_mail_key"))
               .group_by("_addr", *order, maintain_order=True).first()
               .select("_addr", *order, "smtp_addr"))
    # Every landing time of the address gives one snapshot of "its primary e-mail".
    snap = times.join(primary, on=["_addr", *order], how="left")
    meta = rows.group_by("_addr", *order).agg(
        pl.col("_ingested_at").max(), pl.col("client").first(), pl.col("addrnumber").first())
    return (snap.join(meta, on=["_addr", *order], how="left")
            .join(owners, on="_addr", how="inner")
            .with_columns(pl.lit(False).alias("_fivetran_deleted")))


def adr6_record_ids(rows: pl.DataFrame, read_kna1) -> pl.Series:
    """ADR6 rows (client, addrnumber) -> the KNA1 customers whose address they belong to."""
    kna1 = read_kna1(["mandt", "kunnr", "adrnr"])
    addr = rows.select(adr6_address().alias("_addr")).unique()
    owners = kna1.select(kna1_address().alias("_addr"), _kna1_id().alias("id"))
    return addr.join(owners, on="_addr").get_column("id").unique()


def adr6_rows_of(kna1: pl.DataFrame, _ids: pl.Series) -> pl.Expr:
    """Every ADR6 row of the addresses of these KNA1 rows."""
    addrs = kna1.select(kna1_address()).to_series().unique()
    return adr6_address().is_in(addrs.implode())


KNA1 = TableSpec(
    source="sap",
    name="kna1",
    description="SAP KNA1 customer master rows as landed (zero-padded kunnr kept exactly).",
    record_time=_kna1_time,
    columns=(
        col("mandt", required=True),
        col("kunnr", required=True),
        col("name1", pii=Pii.NAME),
        col("name2", pii=Pii.NAME),
        col("stras", pii=Pii.TEXT),
        col("ort01"),
        col("pstlz", pii=Pii.TEXT),
        col("land1"),
        col("telf1", pii=Pii.PHONE),
        col("adrnr"),
        col("erdat", T.SAP_DATE),
        col("laeda", T.SAP_DATE),
        col("loevm"),
        col("_fivetran_deleted", T.BOOL, required=True),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
    records=Records(
        "customer", record_id=_kna1_id,
        time_precision=lambda: pl.when(pl.col("laeda").is_not_null()).then(pl.lit("date"))
        .otherwise(pl.lit("timestamp")),
        deleted=lambda: (pl.col("loevm") == "X").fill_null(False)
        | pl.col("_fivetran_deleted").fill_null(False),
        region=lambda: pl.col("land1"),
        display={"name": lambda: pl.col("name1")},
        created=lambda: pl.col("erdat").cast(UTC),
        key_columns=("mandt", "kunnr"),
    ),
)

ADR6 = TableSpec(
    source="sap",
    name="adr6",
    description="SAP ADR6 e-mail addresses per address number (kna1.adrnr) as landed.",
    # SAP keeps no change time for e-mail addresses.
    record_time=lambda: pl.col("_fivetran_synced"),
    columns=(
        col("client", required=True),
        col("addrnumber", required=True),
        col("persnumber"),
        col("consnumber"),
        col("flgdefault"),
        col("smtp_addr", required=True, pii=Pii.EMAIL),
        col("_fivetran_deleted", T.BOOL, required=True),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
    records=Records(
        "customer", record_id=lambda: pl.col("_record_id"),
        deleted=lambda: pl.col("_fivetran_deleted").fill_null(False),
        key_columns=("client", "addrnumber"),
        attachment=Attachment("kna1", attach=attach_adr6, record_ids=adr6_record_ids,
                              rows_of=adr6_rows_of),
    ),
)

SOURCE = SourceSpec(
    name="sap",
    title="SAP",
    description=(
        "SAP ECC / S/4HANA customer master via Fivetran (Tier 2): KNA1 customers and ADR6 "
        "e-mail addresses. SAP has no NULLs ('' and 00000000 mean no value; bronze stores "
        "them as null); YYYYMMDD dates become dates; loevm='X' flags a deletion."
    ),
    tables=(KNA1, ADR6),
    profile_key="sap_kunnr",
    # Record ids are `<mandt>:<kunnr>`; users quote the customer number alone, as the UI
    # shows it (`100001` for the stored `0000100001`), whatever the client.
    lookup_key=lambda e: e.str.split(":").list.last().str.strip_chars_start("0"),
)
