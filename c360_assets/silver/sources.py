"""How each bronze table becomes source records: ids, record time, deletes, field times.

This is the landing contract's semantics per table (record time, delete markers,
Tier 1 fields with their own time, secondary tables attached to a main record); which
fields feed which attribute is data, in `config/attribute_name_registry.csv`.

Entity node ids are `<entity type>:<source>:<record id>` with the contract's record
ids: Salesforce `id`; SAP `<mandt>:<kunnr>` as landed; Shopify `id` as an exact integer
string; Segment `user_id`, else `anon:<anonymous_id>`; Zendesk `id`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from c360_assets.lib.config import ConfigError
from c360_assets.lib.registry import Registry

Expr = Callable[[], pl.Expr]
UTC = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class RecordTable:
    """One bronze table read as snapshots (Tier 2) or events (Tier 1) of source records."""

    source: str
    table: str
    entity_type: str  # customer | company | asset
    record_id: Expr  # over the bronze frame (main tables); secondary tables: see `attach`
    record_time: Expr
    deleted: Expr = lambda: pl.lit(False)
    tier: int = 2
    # Field -> its own change time (Tier 1 fields inside Tier 2 rows; all Segment traits).
    field_times: dict[str, Expr] = field(default_factory=dict)
    # Field -> how its landed value reads as the attribute's value.
    value_rules: dict[str, Callable[[pl.Expr], pl.Expr]] = field(default_factory=dict)
    # Fields whose value survives a delete (a merge's master is set on the deleted row).
    keep_when_deleted: tuple[str, ...] = ()
    time_precision: Expr = lambda: pl.lit("timestamp")
    region: Expr | None = None  # ISO country hint for phones (raw; normalised later)
    event_id: Expr | None = None  # Tier 1 message id
    # Entity node display properties (main tables).
    display: dict[str, Expr] = field(default_factory=dict)
    created: Expr | None = None
    # Secondary tables: the main table whose records they describe.
    main: str | None = None
    # Bronze columns that identify a row's record (used to filter bronze for touched records).
    key_columns: tuple[str, ...] = ("id",)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.table}"

    @property
    def bronze_key(self) -> str:
        return f"{self.source}_{self.table}"

    def node_prefix(self) -> str:
        return f"{self.entity_type}:{self.source}:"


def _modstamp() -> pl.Expr:
    return pl.coalesce("system_modstamp", "last_modified_date")


def _sap_time() -> pl.Expr:
    return pl.coalesce(pl.col("laeda").cast(UTC), pl.col("_fivetran_synced"))


TABLES: tuple[RecordTable, ...] = (
    RecordTable(
        "salesforce", "contact", "customer", record_id=lambda: pl.col("id"),
        record_time=_modstamp, deleted=lambda: pl.col("is_deleted").fill_null(False),
        region=lambda: pl.coalesce("mailing_country_code", "mailing_country"),
        value_rules={
            # Contract: has_opted_out_of_email=true -> false; false or null -> no value.
            "has_opted_out_of_email": lambda e: pl.when(e.fill_null(False)).then(pl.lit("false")),
            # master_record_id means "merged into" only on a deleted contact.
            "master_record_id": lambda e: pl.when(pl.col("is_deleted").fill_null(False)).then(e),
        },
        keep_when_deleted=("master_record_id",),
        display={"first_name": lambda: pl.col("first_name"),
                 "last_name": lambda: pl.col("last_name")},
        created=lambda: pl.col("created_date"),
    ),
    RecordTable(
        "salesforce", "account", "company", record_id=lambda: pl.col("id"),
        record_time=_modstamp, deleted=lambda: pl.col("is_deleted").fill_null(False),
        display={"name": lambda: pl.col("name"), "website": lambda: pl.col("website"),
                 "industry": lambda: pl.col("industry")},
    ),
    RecordTable(
        "salesforce", "asset", "asset", record_id=lambda: pl.col("id"),
        record_time=lambda: pl.col("last_modified_date"),
        deleted=lambda: pl.col("is_deleted").fill_null(False),
        display={"name": lambda: pl.col("name"), "serial_number": lambda: pl.col("serial_number"),
                 "status": lambda: pl.col("status"),
                 "quantity": lambda: pl.col("quantity").cast(pl.String),
                 "install_date": lambda: pl.col("install_date").cast(pl.String),
                 "usage_end_date": lambda: pl.col("usage_end_date").cast(pl.String),
                 "contact_id": lambda: pl.col("contact_id")},
    ),
    RecordTable(
        "sap", "kna1", "customer",
        record_id=lambda: pl.format("{}:{}", "mandt", "kunnr"),
        record_time=_sap_time,
        time_precision=lambda: pl.when(pl.col("laeda").is_not_null()).then(pl.lit("date"))
        .otherwise(pl.lit("timestamp")),
        deleted=lambda: (pl.col("loevm") == "X").fill_null(False)
        | pl.col("_fivetran_deleted").fill_null(False),
        region=lambda: pl.col("land1"),
        display={"name": lambda: pl.col("name1")},
        created=lambda: pl.col("erdat").cast(UTC),
        key_columns=("mandt", "kunnr"),
    ),
    RecordTable(
        # E-mails of the customer's own address (kna1.adrnr); attached in `attach_adr6`.
        "sap", "adr6", "customer", record_id=lambda: pl.col("_record_id"),
        record_time=lambda: pl.col("_fivetran_synced"),
        deleted=lambda: pl.col("_fivetran_deleted").fill_null(False),
        main="sap/kna1", key_columns=("client", "addrnumber"),
    ),
    RecordTable(
        "shopify", "customer", "customer", record_id=lambda: pl.col("id").cast(pl.String),
        record_time=lambda: pl.col("updated_at"),
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
    RecordTable(
        # The default address of a customer; attached in `attach_customer_address`.
        "shopify", "customer_address", "customer", record_id=lambda: pl.col("_record_id"),
        record_time=lambda: pl.col("_record_time"),
        region=lambda: pl.coalesce("country_code", "country"),
        main="shopify/customer", key_columns=("customer_id",),
    ),
    RecordTable(
        "segment", "identifies", "customer", tier=1,
        record_id=lambda: pl.coalesce(pl.col("user_id"),
                                      pl.format("anon:{}", pl.col("anonymous_id"))),
        record_time=lambda: pl.col("timestamp"),
        event_id=lambda: pl.col("id"),
        region=lambda: pl.col("traits.address_country"),
        created=lambda: pl.col("timestamp"),
        key_columns=("user_id", "anonymous_id"),
    ),
    RecordTable(
        "zendesk", "user", "customer", record_id=lambda: pl.col("id").cast(pl.String),
        record_time=lambda: pl.col("updated_at"),
        deleted=lambda: pl.col("_fivetran_deleted").fill_null(False)
        | (pl.col("active") == False).fill_null(False),  # noqa: E712
        value_rules={"organization_id": lambda e: e.cast(pl.String)},
        display={"name": lambda: pl.col("name")},
        created=lambda: pl.col("created_at"),
    ),
    RecordTable(
        "zendesk", "organization", "company", record_id=lambda: pl.col("id").cast(pl.String),
        record_time=lambda: pl.col("updated_at"),
        display={"name": lambda: pl.col("name"), "domain_names": lambda: pl.col("domain_names")},
    ),
)
TABLES_BY_KEY = {t.key: t for t in TABLES}

# Canonical attributes whose edges point at entity nodes rather than value nodes.
ENTITY_TARGETS = {"company": "company", "owner": "company", "mergedInto": "customer"}
TRAITS_PREFIX = "traits."


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
                          pl.format("{}:{}", "mandt", "kunnr").alias("_record_id"))
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


def check_registry(registry: Registry, schemas: dict[str, pl.Schema],
                   source: str | None = None) -> None:
    """Every active registry row (of `source`, or all) names a known table and one of its
    fields, and an attribute of one source comes from one table."""
    from c360_assets.bronze.segment import TRAITS_COL
    table_of: dict[tuple[str, str], str] = {}
    for m in registry.mappings:
        if source is not None and m.source_system != source:
            continue
        where = f"config/attribute_name_registry.csv:{m.line}"
        table = TABLES_BY_KEY.get(m.table_key)
        if table is None:
            raise ConfigError(f"{where}: unknown source table {m.table_key} (known: "
                              f"{', '.join(sorted(TABLES_BY_KEY))})")
        schema = schemas[table.bronze_key]
        if m.source_field.startswith(TRAITS_PREFIX):
            if TRAITS_COL not in schema:
                raise ConfigError(f"{where}: {m.table_key} has no traits")
        elif m.source_field not in schema:
            raise ConfigError(f"{where}: {m.table_key} has no field {m.source_field!r}")
        if m.canonical_name == "owner" and m.table_key != "salesforce/asset":
            raise ConfigError(f"{where}: OWNS edges come from asset tables only")
        other = table_of.setdefault((m.source_system, m.canonical_name), m.table_key)
        if other != m.table_key:
            raise ConfigError(f"{where}: {m.source_system} already maps {m.canonical_name} "
                              f"from {other}: one table per attribute and source (an edge's "
                              "history is one field's history)")
