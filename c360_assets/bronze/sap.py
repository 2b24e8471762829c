"""SAP customer master (Fivetran SAP connector, Tier 2; every value lands as a string)."""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import ColType as T
from c360_assets.bronze.contract import Pii, SourceSpec, TableSpec, col


def _kna1_time() -> pl.Expr:
    # laeda is a date: it counts as 00:00 UTC of that day; else _fivetran_synced.
    return pl.coalesce(
        pl.col("laeda").cast(pl.Datetime("us", "UTC")), pl.col("_fivetran_synced")
    )


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
)
