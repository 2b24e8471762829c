"""Salesforce (Fivetran Salesforce connector, Tier 2 snapshots): contact, account, asset.

Record ids are Salesforce `id`s. `is_deleted` marks a delete; `master_record_id` on a
deleted contact means it was merged into that contact.
"""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import ColType as T
from c360_assets.bronze.contract import Pii, Records, SourceSpec, TableSpec, col


def _modstamp_time() -> pl.Expr:
    # Record time: system_modstamp if present, else last_modified_date.
    return pl.coalesce("system_modstamp", "last_modified_date")


def _is_deleted() -> pl.Expr:
    return pl.col("is_deleted").fill_null(False)


def _id() -> pl.Expr:
    return pl.col("id")


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
    records=Records(
        "customer", record_id=_id, deleted=_is_deleted,
        region=lambda: pl.coalesce("mailing_country_code", "mailing_country"),
        value_rules={
            # Contract: has_opted_out_of_email=true -> false; false or null -> no value.
            "has_opted_out_of_email": lambda e: pl.when(e.fill_null(False)).then(pl.lit("false")),
            # master_record_id means "merged into" only on a deleted contact.
            "master_record_id": lambda e: pl.when(_is_deleted()).then(e),
        },
        keep_when_deleted=("master_record_id",),
        display={"first_name": lambda: pl.col("first_name"),
                 "last_name": lambda: pl.col("last_name")},
        created=lambda: pl.col("created_date"),
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
    records=Records(
        "company", record_id=_id, deleted=_is_deleted,
        display={"name": lambda: pl.col("name"), "website": lambda: pl.col("website"),
                 "industry": lambda: pl.col("industry")},
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
    records=Records(
        "asset", record_id=_id, deleted=_is_deleted,
        display={"name": lambda: pl.col("name"), "serial_number": lambda: pl.col("serial_number"),
                 "status": lambda: pl.col("status"),
                 "quantity": lambda: pl.col("quantity").cast(pl.String),
                 "install_date": lambda: pl.col("install_date").cast(pl.String),
                 "usage_end_date": lambda: pl.col("usage_end_date").cast(pl.String),
                 "contact_id": lambda: pl.col("contact_id")},
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
    profile_key="sfdc_contact_id",
    # The 18-character id is the 15-character (case-sensitive) one plus a case checksum:
    # reports and exports show either.
    lookup_key=lambda e: e.str.slice(0, 15),
)
