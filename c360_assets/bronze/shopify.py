"""Shopify (Fivetran Shopify connector, Tier 2 with a Tier 1 consent field)."""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import ColType as T
from c360_assets.bronze.contract import Pii, SourceSpec, TableSpec, col

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
)
