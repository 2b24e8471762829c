"""Salesforce (Fivetran Salesforce connector, Tier 2 snapshots): contact, account, asset."""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import ColType as T
from c360_assets.bronze.contract import Pii, SourceSpec, TableSpec, col


def _modstamp_time() -> pl.Expr:
    # Record time: system_modstamp if present, else last_modified_date.
    return pl.coalesce("system_modstamp", "last_modified_date")


CONTACT = TableSpec(
    source="salesforce",
    name="contact",
    description="Salesforce contacts as landed by Fivetran: one row per synced snapshot.",
    record_time=_modstamp_time,
    columns=(
        col("id", required=True),
        col("account_id"),
        col("first_name", pii=Pii.NAME),
        col("last_name", required=True, pii=Pii.NAME),
        col("email", pii=Pii.EMAIL),
        col("phone", pii=Pii.PHONE),
        col("mobile_phone", pii=Pii.PHONE),
        col("mailing_street", pii=Pii.TEXT),
        col("mailing_city"),
        col("mailing_postal_code", pii=Pii.TEXT),
        col("mailing_country"),
        col("mailing_country_code"),
        col("birthdate", T.DATE, pii=Pii.TEXT),
        col("has_opted_out_of_email", T.BOOL),
        col("is_deleted", T.BOOL, required=True),
        col("master_record_id"),
        col("created_date", T.TIMESTAMP),
        col("last_modified_date", T.TIMESTAMP, required=True),
        col("system_modstamp", T.TIMESTAMP),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
)

ACCOUNT = TableSpec(
    source="salesforce",
    name="account",
    description="Salesforce accounts (companies) as landed by Fivetran.",
    record_time=_modstamp_time,
    columns=(
        col("id", required=True),
        col("name", required=True),
        col("website"),
        col("industry"),
        col("billing_city"),
        col("billing_country"),
        col("is_deleted", T.BOOL, required=True),
        col("master_record_id"),
        col("last_modified_date", T.TIMESTAMP, required=True),
        col("system_modstamp", T.TIMESTAMP),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
)

ASSET = TableSpec(
    source="salesforce",
    name="asset",
    description="Salesforce assets (licences a company owns) as landed by Fivetran.",
    record_time=lambda: pl.col("last_modified_date"),
    columns=(
        col("id", required=True),
        col("account_id"),
        col("contact_id"),
        col("name", required=True),
        col("serial_number"),
        col("install_date", T.DATE),
        col("usage_end_date", T.DATE),
        col("status"),
        col("quantity", T.FLOAT),
        col("is_deleted", T.BOOL, required=True),
        col("last_modified_date", T.TIMESTAMP, required=True),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
)

SOURCE = SourceSpec(
    name="salesforce",
    title="Salesforce",
    description=(
        "Salesforce CRM via the Fivetran connector (Tier 2): every landed row is a full "
        "snapshot of a contact, account or asset at its record time (system_modstamp, "
        "else last_modified_date). is_deleted marks deletes; master_record_id on a deleted "
        "contact means it was merged into that contact."
    ),
    tables=(CONTACT, ACCOUNT, ASSET),
)
