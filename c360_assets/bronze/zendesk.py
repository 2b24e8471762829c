"""Zendesk Support (Fivetran Zendesk connector, Tier 2): users and organizations."""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import ColType as T
from c360_assets.bronze.contract import Pii, SourceSpec, TableSpec, col

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
)

SOURCE = SourceSpec(
    name="zendesk",
    title="Zendesk",
    description=(
        "Zendesk Support via Fivetran (Tier 2): user snapshots (single full-name field, "
        "active=false for deleted users) and organizations, record time updated_at."
    ),
    tables=(USER, ORGANIZATION),
)
