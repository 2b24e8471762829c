"""A sixth source, HubSpot CRM contacts as a Fivetran-style connector lands them, declared
the way a user adds one: this module (named in `c360.yaml` `sources:`) plus registry rows
(`REGISTRY_ROWS`, `PRIORITY_ROW`). Nothing else in c360 changes; the test
`tests/integration/test_sixth_source.py` proves it flows to gold and the profile.
"""

from __future__ import annotations

import polars as pl

from c360_assets.bronze.contract import ColType as T
from c360_assets.bronze.contract import Pii, Records, SourceSpec, TableSpec, col

CONTACT = TableSpec(
    source="hubspot",
    name="contact",
    description="HubSpot contacts: one row per synced snapshot (record time "
                "property_lastmodifieddate; archived or _fivetran_deleted marks a delete).",
    record_time=lambda: pl.col("property_lastmodifieddate"),
    columns=(
        col("id", T.INT64, required=True),
        col("property_email", pii=Pii.EMAIL),
        col("property_firstname", pii=Pii.NAME),
        col("property_lastname", pii=Pii.NAME),
        col("property_phone", pii=Pii.PHONE),
        col("property_city"),
        col("property_country"),
        col("archived", T.BOOL),
        col("property_lastmodifieddate", T.TIMESTAMP, required=True),
        col("_fivetran_deleted", T.BOOL, required=True),
        col("_fivetran_synced", T.TIMESTAMP, required=True),
    ),
    records=Records(
        "customer", record_id=lambda: pl.col("id").cast(pl.String),
        deleted=lambda: pl.col("archived").fill_null(False)
        | pl.col("_fivetran_deleted").fill_null(False),
        region=lambda: pl.col("property_country"),
        display={"first_name": lambda: pl.col("property_firstname"),
                 "last_name": lambda: pl.col("property_lastname")},
    ),
)

SOURCE = SourceSpec(
    name="hubspot",
    title="HubSpot",
    description="HubSpot CRM contacts (Tier 2 snapshots).",
    tables=(CONTACT,),
    profile_key="hubspot_id",
)

# config/attribute_name_registry.csv and config/source_priority.csv rows.
REGISTRY_ROWS = """\
hubspot,contact,property_email,email,HAS_EMAIL,true,1,true
hubspot,contact,property_firstname,firstName,HAS_FIRST_NAME,false,1,true
hubspot,contact,property_lastname,lastName,HAS_LAST_NAME,false,1,true
hubspot,contact,property_phone,phone,HAS_PHONE,true,1,true
hubspot,contact,property_city,city,HAS_CITY,false,1,true
hubspot,contact,property_country,country,HAS_COUNTRY,false,1,true
"""
PRIORITY_ROW = "hubspot,6,a CRM added by the user\n"
CONFIG = "sources:\n  hubspot: {module: tests.sixth_source.hubspot, start_date: 2020-01-01}\n"
