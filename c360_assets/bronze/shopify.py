"""Shopify (Fivetran Shopify connector, Tier 2 with a Tier 1 consent field).

Record ids are customer `id`s as exact integer strings. A customer's default address
(`customer_address`) attaches to the customer (`attach_customer_address`).
"""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import Attachment, Pii, Records, SourceSpec, TableSpec, col
from c360_assets.bronze.contract import ColType as T


def attach_customer_address(addresses: pl.DataFrame, customers: pl.DataFrame) -> pl.DataFrame:
    """Default addresses -> snapshots of their customer's address fields.

    Record time (contract): the `updated_at` of the customer's row landed in the same day
    folder, else the address row's own `_fivetran_synced`.
    """
    same_day = (customers.group_by(pl.col("id").alias("customer_id"), "_landing_date")
                .agg(pl.col("updated_at").max().alias("_customer_time")))
    return (addresses.filter(pl.col("is_default").fill_null(True))
            .join(same_day, on=["customer_id", "_landing_date"], how="left")
            .with_columns(pl.col("customer_id").cast(pl.String).alias("_record_id"),
                          pl.coalesce("_customer_time", "_fivetran_synced").alias("_record_time")))


def address_record_ids(rows: pl.DataFrame, _read_customers) -> pl.Series:
    """Address rows -> their customers (an address may land before its customer)."""
    return rows.get_column("customer_id").cast(pl.String).drop_nulls().unique()


def address_rows_of(_customers: pl.DataFrame, ids: pl.Series) -> pl.Expr:
    wanted = ids.cast(pl.Int64, strict=False).drop_nulls()
    return pl.col("customer_id").is_in(wanted.implode())


CUSTOMER = TableSpec(
    source="shopify",
    name="customer",
    description=(
        "Shopify customers as landed by Fivetran (REST or GraphQL flavour); the consent "
        "state carries its own time in email_marketing_consent_updated_at."
    ),
    record_time=lambda: pl.col("updated_at"),
    columns=(
        col("id", T.INT64, required=True),
        col("email", pii=Pii.EMAIL),
        col("first_name", pii=Pii.NAME),
        col("last_name", pii=Pii.NAME),
        col("phone", pii=Pii.PHONE),
        col("state"),
        col("accepts_marketing", T.BOOL),
        col("accepts_marketing_updated_at", T.TIMESTAMP),
        col("email_marketing_consent_state"),
        # The REST flavour spells it with a doubled "consent".
        col("email_marketing_consent_updated_at", T.TIMESTAMP,
            aliases=("email_marketing_consent_consent_updated_at",)),
        col("created_at", T.TIMESTAMP),
        col("updated_at", T.TIMESTAMP, required=True),
        col("_fivetran_deleted", T.BOOL, required=True),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
    records=Records(
        "customer", record_id=lambda: pl.col("id").cast(pl.String),
        deleted=lambda: pl.col("_fivetran_deleted").fill_null(False),
        field_times={
            "email_marketing_consent_state": lambda: pl.coalesce(
                "email_marketing_consent_updated_at", "accepts_marketing_updated_at"),
            "accepts_marketing": lambda: pl.col("accepts_marketing_updated_at"),
        },
        value_rules={"accepts_marketing": lambda e: e.cast(pl.String)},
        display={"first_name": lambda: pl.col("first_name"),
                 "last_name": lambda: pl.col("last_name")},
        created=lambda: pl.col("created_at"),
    ),
)

CUSTOMER_ADDRESS = TableSpec(
    source="shopify",
    name="customer_address",
    description=(
        "Shopify customer addresses as landed by Fivetran (is_default marks the one the "
        "profile uses). No record time of its own: the customer's updated_at of the same "
        "day folder, else _fivetran_synced."
    ),
    record_time=lambda: pl.col("_fivetran_synced"),
    columns=(
        col("customer_id", T.INT64, required=True),
        col("id", T.INT64, required=True),
        col("address_1", pii=Pii.TEXT),
        col("city"),
        col("zip", pii=Pii.TEXT),
        col("country"),
        col("country_code"),
        col("phone", pii=Pii.PHONE),
        col("is_default", T.BOOL),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
    records=Records(
        "customer", record_id=lambda: pl.col("_record_id"),
        record_time=lambda: pl.col("_record_time"),
        region=lambda: pl.coalesce("country_code", "country"),
        key_columns=("customer_id",),
        attachment=Attachment("customer", attach=attach_customer_address,
                              record_ids=address_record_ids, rows_of=address_rows_of),
    ),
)

SOURCE = SourceSpec(
    name="shopify",
    title="Shopify",
    description=(
        "Shopify customers via Fivetran (Tier 2 snapshots, record time updated_at) with the "
        "e-mail marketing consent as a Tier 1 field on its own time; 64-bit ids kept exact; "
        "default addresses from customer_address."
    ),
    tables=(CUSTOMER, CUSTOMER_ADDRESS),
    profile_key="shopify_id",
)
