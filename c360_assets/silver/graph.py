"""The attribute graph: field changes -> SCD-2 edges, value nodes and entity nodes.

Pure functions over polars frames. Two tables (architecture, "Silver: the graph"):
* `nodes`: value nodes `sha256(node_type + ":" + value)`, one per distinct normalised
  value and attribute type ("Munich" is one node); entity nodes
  `<type>:<source>:<record id>` per source record (customer, company, asset), plus
  entities a source names without landing records of them (`company:<source>:<name>`,
  e.g. SAP's KNA1 `name2`).
* `relationships`: SCD-2 per `(record_node_id, rel_type, source_system)`, where
  `record_node_id` is the source record whose field the edge comes from: the edge's
  `source_node_id` for attribute, `WORKS_AT` and `MERGED_INTO` edges; the asset for
  `OWNS` (company -> asset), so a company may own many assets while each asset has one
  current owner. One current edge per key; a change closes the previous edge
  (`valid_to`, `is_current=false`) and opens the next; a cleared or deleted field only
  closes. `MERGED_INTO` points at the final master of a Salesforce merge chain
  (A -> B, then B -> C gives A -> C from the second merge on).
"""

from __future__ import annotations

import polars as pl

from c360_assets.lib.frames import in_group_of_many, next_in_group, row_number_in_group
from c360_assets.lib.hashing import sha256
from c360_assets.lib.normalise import breaks_limits, kind_expr
from c360_assets.silver.echo import ECHO_COLUMN
from c360_assets.silver.sources import ENTITY_TARGETS

UTC = pl.Datetime("us", "UTC")

RELATIONSHIPS_SCHEMA = pl.Schema({
    "source_node_id": pl.String(), "target_node_id": pl.String(), "rel_type": pl.String(),
    "updated_at": UTC, "confidence": pl.Float64(), "is_current": pl.Boolean(),
    "valid_from": UTC, "valid_to": UTC, "source_system": pl.String(),
    "source_event_id": pl.String(), "properties": pl.String(), "record_node_id": pl.String(),
    "version": pl.Int32(),
    # When the change that opened the edge was ingested: landing date, file and line as
    # one sortable string (`ingestion_order`); gold's last tie-break (later wins).
    "ingestion_order": pl.String(),
})
NODES_SCHEMA = pl.Schema({
    "node_id": pl.String(), "node_type": pl.String(), "value": pl.String(),
    "checksum": pl.String(), "created_at": UTC, "properties": pl.String(),
})
INVALID_CONFIDENCE = 0.5  # an edge to a value that failed normalisation rules
# An edge to a value that breaks its attribute's content limits (length, control
# characters: `normalise.breaks_limits`); gold.demote_implausible ranks it last.
IMPLAUSIBLE_CONFIDENCE = 0.2


def with_targets(changes: pl.DataFrame) -> pl.DataFrame:
    """Add `_target`: the node each change points at (null for a cleared value) - the
    value node `sha256(attribute:value)`, or the entity node for WORKS_AT / OWNS /
    MERGED_INTO."""
    entity = pl.col("attribute").is_in(list(ENTITY_TARGETS))
    key = pl.when(pl.col("value").is_not_null() & ~entity).then(
        pl.format("{}:{}", "attribute", "value"))
    ids = sha256(changes.select(key.alias("k")).to_series())
    return changes.with_columns(
        pl.when(entity & pl.col("value").is_not_null())
        .then(entity_target(pl.col("attribute"), pl.col("source_system"), pl.col("value")))
        .otherwise(ids).alias("_target"))


def entity_target(attribute: pl.Expr, source: pl.Expr, value: pl.Expr) -> pl.Expr:
    kind = attribute.replace_strict(ENTITY_TARGETS, default=None, return_dtype=pl.String)
    return pl.format("{}:{}:{}", kind, source, value)


def _properties(columns: list[str]) -> pl.Expr:
    """The landed (raw) value; the rest of the edge's provenance is in field_changes. An
    echo of a c360 sync (`silver/echo.py`) also carries the field time of the value
    the sync sent (`echo_field_time`), at which gold resolves it."""
    raw = pl.struct(pl.col("raw_value").alias("raw")).struct.json_encode()
    if ECHO_COLUMN not in columns:
        return raw
    echo = pl.col(ECHO_COLUMN)
    return (pl.when(echo.is_null()).then(raw)
            .otherwise(pl.struct(pl.col("raw_value").alias("raw"),
                                 echo.dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ").alias(ECHO_COLUMN))
                       .struct.json_encode()))


def _scd2(rows: pl.DataFrame) -> pl.DataFrame:
    """Change rows -> edge versions: valid_to from the key's next change; a change to null
    (cleared, deleted) only closes.

    Relies on the order `field_changes` emits rows in: each (record, attribute) group is
    contiguous and in field-time order (one table feeds an attribute of a source), so
    neighbours are enough - no sort of millions of string keys.
    """
    key = ["record_node_id", "rel_type"]
    return (rows.with_columns(next_in_group(pl.col("field_time"), key).alias("valid_to"))
            .filter(pl.col("_target").is_not_null())
            .with_columns(row_number_in_group(key).alias("version")))


def ingestion_order() -> pl.Expr:
    """A change row's landing date, file and line as one string that sorts as they do
    (`landing_date|source_file|000000000042`)."""
    return pl.concat_str([
        pl.col("landing_date").cast(pl.String).fill_null(""),
        pl.col("source_file").fill_null(""),
        pl.col("source_line").cast(pl.String).str.zfill(12).fill_null("")], separator="|")


def attribute_edges(changes: pl.DataFrame, kinds: dict[str, str]) -> pl.DataFrame:
    """Attribute, WORKS_AT and OWNS edges from field changes (with `with_targets`);
    `kinds`: attribute -> normalisation kind (`Registry.kinds`). An edge's
    `ingestion_order` is the latest of the changes to a value of its record and
    relationship at its field time (`ingestion_order()`)."""
    changes = changes.filter(pl.col("attribute") != "mergedInto").with_columns(
        pl.when(pl.col("value").is_not_null()).then(ingestion_order())
        .alias("ingestion_order"))
    # Changes at one field time are neighbours (the order `_scd2` relies on): only those
    # few groups need their latest ingestion (a window over every row costs seconds).
    key = ["record_node_id", "rel_type", "field_time"]
    tied = changes.select(in_group_of_many(key)).to_series()
    if tied.any():
        latest = (changes.filter(tied).group_by(key)
                  .agg(pl.col("ingestion_order").max().alias("_latest")))
        changes = (changes.join(latest, on=key, how="left", maintain_order="left")
                   .with_columns(pl.coalesce("_latest", "ingestion_order")
                                 .alias("ingestion_order")).drop("_latest"))
    edges = _scd2(changes)
    owns = pl.col("rel_type") == "OWNS"
    return edges.select(
        pl.when(owns).then(pl.col("_target")).otherwise(pl.col("record_node_id"))
        .alias("source_node_id"),
        pl.when(owns).then(pl.col("record_node_id")).otherwise(pl.col("_target"))
        .alias("target_node_id"),
        "rel_type", pl.col("field_time").alias("updated_at"),
        pl.when(pl.col("is_valid")).then(1.0)
        .when(breaks_limits(pl.col("raw_value"), pl.col("value"),
                            kind_expr(pl.col("attribute"), kinds)))
        .then(IMPLAUSIBLE_CONFIDENCE).otherwise(INVALID_CONFIDENCE).alias("confidence"),
        pl.col("valid_to").is_null().alias("is_current"),
        pl.col("field_time").alias("valid_from"), "valid_to", "source_system", "source_event_id",
        _properties(edges.columns).alias("properties"), "record_node_id", "version",
        "ingestion_order")


def resolve_merge_chains(direct: pl.DataFrame) -> pl.DataFrame:
    """Direct merges (record, master, valid_from, valid_to, source_event_id) -> intervals
    of each merged record's final master, following chains A -> B -> C (cycle-safe)."""
    by_record: dict[str, list[tuple]] = {}
    for row in direct.sort("record_node_id", "valid_from").iter_rows(named=True):
        by_record.setdefault(row["record_node_id"], []).append(
            (row["valid_from"], row["valid_to"], row["master"], row["source_event_id"]))
    memo: dict[str, list[tuple]] = {}

    def resolved(node: str, seen: frozenset[str]) -> list[tuple]:
        if node in memo:
            return memo[node]
        out: list[tuple] = []
        for start, end, master, event in by_record.get(node, []):
            inner = [] if master in seen else resolved(master, seen | {master})
            cuts = sorted({start, *(t for s, e, *_ in inner for t in (s, e)
                                    if t is not None and start < t
                                    and (end is None or t < end))})
            bounds = [*cuts, end]
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                target, via = master, master  # via: the direct master
                for s, e, t, *_ in inner:
                    if s <= lo and (e is None or lo < e):
                        target = t
                if out and out[-1][2] == target and out[-1][1] == lo and out[-1][3] == event:
                    out[-1] = (out[-1][0], hi, target, event, via)
                else:
                    out.append((lo, hi, target, event, via))
        memo[node] = out
        return out

    rows = [(node, lo, hi, target, event, via) for node in by_record
            for lo, hi, target, event, via in resolved(node, frozenset({node}))]
    return pl.DataFrame(rows, schema={"record_node_id": pl.String, "valid_from": UTC,
                                      "valid_to": UTC, "master": pl.String,
                                      "source_event_id": pl.String, "direct_master": pl.String},
                        orient="row")


def direct_merges(changes: pl.DataFrame) -> pl.DataFrame:
    """mergedInto change rows -> direct merge intervals (record -> master node id)."""
    rows = changes.filter(pl.col("attribute") == "mergedInto").with_columns(
        pl.when(pl.col("value").is_not_null())
        .then(entity_target(pl.col("attribute"), pl.col("source_system"), pl.col("value")))
        .alias("_target")).sort("record_node_id", "field_time", maintain_order=True)  # few rows
    edges = _scd2(rows)
    return edges.select("record_node_id", pl.col("_target").alias("master"),
                        pl.col("field_time").alias("valid_from"), "valid_to", "source_event_id",
                        "source_system")


def merge_edges(direct: pl.DataFrame, records: set[str] | None = None) -> pl.DataFrame:
    """MERGED_INTO edges to final masters, for `records` (all merged records if None)."""
    if direct.height == 0:
        return pl.DataFrame(schema=RELATIONSHIPS_SCHEMA)
    chains = resolve_merge_chains(direct)
    if records is not None:
        chains = chains.filter(pl.col("record_node_id").is_in(list(records)))
    system = direct.select("record_node_id", "source_system").unique("record_node_id")
    key = "record_node_id"
    return (chains.join(system, on=key, how="left").sort(key, "valid_from").select(
        pl.col(key).alias("source_node_id"), pl.col("master").alias("target_node_id"),
        pl.lit("MERGED_INTO").alias("rel_type"), pl.col("valid_from").alias("updated_at"),
        pl.lit(1.0).alias("confidence"), pl.col("valid_to").is_null().alias("is_current"),
        "valid_from", "valid_to", "source_system", "source_event_id",
        pl.struct(pl.col("direct_master")).struct.json_encode().alias("properties"),
        pl.col(key).alias("record_node_id"),
        row_number_in_group([key]).alias("version"),
        pl.lit(None, pl.String).alias("ingestion_order"),
    ).cast(dict(RELATIONSHIPS_SCHEMA)))  # type: ignore[arg-type]


def merge_dependents(direct: pl.DataFrame, touched: set[str]) -> set[str]:
    """Merged records whose chain passes through a touched record (their final master
    may have moved), found by walking the direct-merge graph backwards."""
    parents: dict[str, set[str]] = {}
    for rec, master in direct.select("record_node_id", "master").iter_rows():
        parents.setdefault(master, set()).add(rec)
    out: set[str] = set()
    stack = [t for t in touched if t in parents]
    while stack:
        for rec in parents.get(stack.pop(), ()):
            if rec not in out:
                out.add(rec)
                stack.append(rec)
    return out


def value_nodes(changes: pl.DataFrame) -> pl.DataFrame:
    """Value nodes of `changes` (with `with_targets`): created_at = earliest time the
    value was observed."""
    seen = (changes.filter(pl.col("value").is_not_null()
                           & ~pl.col("attribute").is_in(list(ENTITY_TARGETS)))
            .group_by(pl.col("_target").alias("node_id")).agg(pl.col("attribute").first(), pl.col("value").first(),
                                     pl.col("field_time").min(), pl.col("is_valid").all()))
    return seen.select(
        "node_id", pl.col("attribute").alias("node_type"), "value",
        pl.col("node_id").alias("checksum"), pl.col("field_time").alias("created_at"),
        pl.when(pl.col("is_valid")).then(pl.lit('{"valid":true}'))
        .otherwise(pl.lit('{"valid":false}')).alias("properties"))


def entity_nodes(frames: dict[str, pl.DataFrame], display: dict[str, dict]) -> pl.DataFrame:
    """One node per source record of the main tables (`display`: how to read each), with
    its latest display fields."""
    parts = []
    for key, spec in display.items():
        if key not in frames:
            continue
        source, table = key.split("/")
        frame = frames[key]
        extra = [fn().cast(pl.String).alias(name) for name, fn in spec["display"].items()]
        created = spec["created"]
        base = frame.with_columns(
            (pl.lit(spec["prefix"]) + spec["record_id"]()).alias("node_id"),
            spec["record_id"]().alias("record_id"), spec["record_time"]().alias("_t"),
            spec["deleted"]().alias("_deleted"),
            (created() if created else pl.lit(None, UTC)).cast(UTC).alias("_created"),
            *extra,
        ).filter(pl.col("record_id").is_not_null())
        order = ["_t", "_landing_date", "_source_file", "_source_line"]
        names = [e.meta.output_name() for e in extra]
        first = base.group_by("node_id").agg(
            pl.min_horizontal(pl.col("_created").min(), pl.col("_t").min()).alias("created_at"))
        latest = (base.select("node_id", "record_id", "_deleted", *names, *order).sort(order)
                  .unique("node_id", keep="last")  # each record's newest snapshot
                  .join(first, on="node_id"))
        props = pl.struct(
            pl.lit(source).alias("source_system"), pl.lit(table).alias("source_table"),
            pl.col("record_id"), pl.col("_deleted").alias("deleted"),
            *[pl.col(e.meta.output_name()) for e in extra]).struct.json_encode()
        parts.append(latest.select("node_id", pl.lit(spec["entity_type"]).alias("node_type"),
                                   pl.col("record_id").alias("value"), "created_at",
                                   props.alias("properties")))
    if not parts:
        return pl.DataFrame(schema=NODES_SCHEMA)
    out = pl.concat(parts)
    return out.with_columns(sha256(out.get_column("properties")).alias("checksum")).select(
        list(NODES_SCHEMA))


def named_entity_nodes(changes: pl.DataFrame, with_records: set[tuple[str, str]]
                       ) -> pl.DataFrame:
    """Entities a source names without landing a record of them (SAP's KNA1 `name2`
    company): one node per (source, type, name), `<type>:<source>:<name>`.
    `with_records`: the (source, entity type) pairs whose entities are records."""
    kind = pl.col("attribute").replace_strict(ENTITY_TARGETS, default=None,
                                              return_dtype=pl.String)
    rows = changes.filter(pl.col("value").is_not_null()).with_columns(kind.alias("_kind"))
    rows = rows.filter(pl.col("_kind").is_not_null())
    named = [pair for pair in rows.select("source_system", "_kind").unique().iter_rows()
             if pair not in with_records]
    if not named:
        return pl.DataFrame(schema=NODES_SCHEMA)
    rows = rows.join(pl.DataFrame(named, schema=["source_system", "_kind"], orient="row"),
                     on=["source_system", "_kind"])
    nodes = rows.group_by("source_system", "_kind", "value").agg(
        pl.col("field_time").min().alias("created_at")).select(
        pl.format("{}:{}:{}", "_kind", "source_system", "value").alias("node_id"),
        pl.col("_kind").alias("node_type"), "value", "created_at",
        pl.struct("source_system", pl.col("value").alias("name"))
        .struct.json_encode().alias("properties"))
    return nodes.with_columns(sha256(nodes.get_column("properties")).alias("checksum")).select(
        list(NODES_SCHEMA))
