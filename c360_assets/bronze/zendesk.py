"""Zendesk Support (Fivetran Zendesk connector, Tier 2): users and organizations.

Record ids are Zendesk `id`s; a user with `active=false` or `_fivetran_deleted` is
deleted.
"""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import ColType as T
from c360_assets.bronze.contract import Pii, Records, SourceSpec, TableSpec, col

USER = TableSpec(
    source="zendesk",
    name="user",
    description="Zendesk users as landed by Fivetran (active=false means deleted).",
    record_time=lambda: pl.col("updated_at"),
    columns=(
        col("id", T.INT64, required=True),
        col("name", required=True, pii=Pii.NAME),
        col("email", pii=Pii.EMAIL),
        col("phone", pii=Pii.PHONE),
        col("external_id"),
        col("organization_id", T.INT64),
        col("role"),
        col("active", T.BOOL),
        col("created_at", T.TIMESTAMP),
        col("updated_at", T.TIMESTAMP, required=True),
        col("_fivetran_deleted", T.BOOL, required=True),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
    records=Records(
        "customer", record_id=lambda: pl.col("id").cast(pl.String),
        deleted=lambda: pl.col("_fivetran_deleted").fill_null(False)
        | (pl.col("active") == False).fill_null(False),  # noqa: E712
        value_rules={"organization_id": lambda e: e.cast(pl.String)},
        display={"name": lambda: pl.col("name")},
        created=lambda: pl.col("created_at"),
    ),
)

ORGANIZATION = TableSpec(
    source="zendesk",
    name="organization",
    description="Zendesk organizations (companies) as landed by Fivetran.",
    record_time=lambda: pl.col("updated_at"),
    columns=(
        col("id", T.INT64, required=True),
        col("name", required=True),
        col("external_id"),
        col("domain_names"),
        col("updated_at", T.TIMESTAMP, required=True),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
    records=Records(
        "company", record_id=lambda: pl.col("id").cast(pl.String),
        display={"name": lambda: pl.col("name"), "domain_names": lambda: pl.col("domain_names")},
    ),
)

SOURCE = SourceSpec(
    name="zendesk",
    title="Zendesk",
    description=(
        "Zendesk Support via Fivetran (Tier 2): user snapshots (single full-name field, "
        "active=false for deleted users) and organizations, record time updated_at."
    ),
    tables=(USER, ORGANIZATION),
    profile_key="zendesk_id",
)
