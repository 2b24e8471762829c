"""The serving store: one SQLite file per gold version, read by `c360 serve`.

`<lake>/serving/profiles.sqlite` holds, for the last complete gold publish:

* `profiles`: one row per person - `doc`, the person's `customer_profile_v2` row (every
  field with its winning source and field time, `extensions`, `source_record_count`)
  plus `consent` (the person's `consent_status` rows) as compact JSON; `changed_at`,
  when a build first saw this content (carried from the previous store while the
  content is unchanged: what `changed_since` exports filter on); `digest`.
* `identifiers`: (kind, normalised value) -> person: every valid e-mail, phone and
  Segment anonymous id the person's records ever held (`silver/identity_keys`, so
  normalised as silver does) and every such value they hold now, valid or not
  (`current` says whether a record holds it now), every
  source record (`record`, `<source>:<id>`) and, where the source declares one, its
  looser lookup key (`record_key`, `SourceSpec.lookup_key`).
* `aliases`: an old person id (merged, `silver/identity_events`) -> its survivor.
* `details`: per person, what `/sources` and the explorer show: the records with their
  current values and what holds each in the person, the links between them (and those
  kept out), the attributes its records disagree on, the consent history.
* `tombstones`: persons a previous store served that this one does not (deleted,
  merged or erased), with when they went and their survivor: a `changed_since` export
  reports them so a consumer can delete its copy.
* `meta`: the store's version, when it was built, the gold versions it was built from,
  the profile's attributes and export columns, each attribute's survivorship rule, the
  sources it serves, counts.

A build writes a new file beside the store and renames it into place (`os.replace`):
a reader that opened the old file keeps reading it whole, a new reader gets the new
one, nobody sees half a build. The file is never changed in place (readers open it
immutable); an erasure (`forget`) writes a copy without the erased persons the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from c360_assets.bronze import catalogue
from c360_assets.bronze.contract import SourceSpec
from c360_assets.gold.publish import published_versions, read_journal, read_version
from c360_assets.lib import delta, failpoints, layout
from c360_assets.lib.config import load_config
from c360_assets.lib.registry import Registry, load_registry
from c360_assets.silver.identity_build import merged_survivors

FORMAT = 3
PROFILE = "customer_profile_v2"
BATCH = 50_000  # rows per executemany
# silver attribute -> identifier kind in the index (identity_keys' kinds)
KEY_KINDS = ("email", "phone", "anonymous_id")
SHOWN_STATUSES = ("linked", "accepted")
KEPT_OUT_STATUSES = ("held", "refused")


class StoreError(RuntimeError):
    """No store can be built (no gold yet) or read (none built, or an unknown format)."""


@dataclass(frozen=True)
class BuildReport:
    path: Path
    version: str
    persons: int
    identifiers: int
    aliases: int
    changed: int  # profiles new or changed since the previous store
    removed: int  # persons the previous store served and this one does not
    bytes: int
    seconds: float
    gold_versions: dict[str, int]


def store_path(lake: Path) -> Path:
    return layout.serving_store(lake)


def _iso(column: str) -> pl.Expr:
    return pl.col(column).dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ")


def _scan(path: Path, version: int | None = None) -> pl.LazyFrame:
    try:
        return pl.scan_delta(str(path), version=version)
    except Exception:  # noqa: BLE001 - that version's files were vacuumed: the latest
        if version is None:
            raise
        return pl.scan_delta(str(path))


def _silver(lake: Path, name: str, versions: dict[str, int]) -> pl.LazyFrame:
    """A silver table as the last complete gold build read it (where that version is
    still readable), so the records agree with the profiles."""
    path = layout.silver_table(lake, name)
    if not delta.table_exists(path):
        raise StoreError(f"{path} missing: run silver first (c360 materialize)")
    return _scan(path, versions.get(name))


def _gold(lake: Path, name: str) -> pl.LazyFrame | None:
    path = layout.gold_table(lake, name)
    if not delta.table_exists(path):
        return None
    return pl.scan_delta(str(path), version=read_version(lake, name))


def gold_token(lake: Path) -> dict[str, int]:
    """The gold versions a store built now would be made from (the last complete
    publish)."""
    return dict(sorted(published_versions(lake).items()))


def current(lake: Path) -> bool:
    """Whether the store exists, has this code's format and was built from the last
    complete gold publish."""
    meta = read_meta(store_path(lake))
    return (meta is not None and meta.get("format") == str(FORMAT)
            and json.loads(meta.get("gold_versions", "{}")) == gold_token(lake))


def read_meta(path: Path) -> dict[str, str] | None:
    if not path.is_file():
        return None
    try:
        con = connect(path)
        try:
            return dict(con.execute("SELECT key, value FROM meta").fetchall())
        finally:
            con.close()
    except sqlite3.Error:
        return None


def connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to a store file (immutable: the file is never changed in
    place, so SQLite takes no locks and keeps no journal)."""
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True,
                          check_same_thread=False)
    con.execute("PRAGMA query_only = 1")
    return con


# ----------------------------------------------------------------------------- the build

def _profiles(lake: Path, registry: Registry
              ) -> tuple[pl.DataFrame, list[str], dict[str, str], str | None]:
    """person_id, doc (JSON without the build's own time), digest; the attributes; each
    doc key's kind (string, timestamp, date, int, json: how an export types it); the
    build's own time (`profile_resolved_at`, the latest)."""
    gold = _gold(lake, PROFILE)
    if gold is None:
        raise StoreError(f"{layout.gold_table(lake, PROFILE)} missing: gold is not built "
                         "yet (c360 materialize)")
    columns = [c for _, c in registry.gold_columns()]
    profiles = gold
    consent = _gold(lake, "consent_status")
    if consent is not None:
        per_person = (consent.select(
            "customer_id", "purpose", "status", "allowed",
            _iso("decided_at").alias("decided_at"),
            pl.col("decided_by_source").alias("source"),
            _short("decided_by_record").alias("record"),
            _iso("expires_at").alias("expires_at"))
            .sort("customer_id", "purpose")
            .group_by("customer_id", maintain_order=True)
            .agg(pl.struct(pl.exclude("customer_id")).alias("consent")))
        profiles = profiles.join(per_person, on="customer_id", how="left")
    frame = profiles.collect()
    resolved_at = (frame.get_column("profile_resolved_at").max()
                   if "profile_resolved_at" in frame.columns else None)
    frame = frame.drop("profile_resolved_at", strict=False)
    schema = frame.schema
    frame = frame.with_columns(
        [_iso(c).alias(c) for c, t in schema.items() if isinstance(t, pl.Datetime)]
        + [pl.col(c).dt.to_string("%Y-%m-%d").alias(c) for c, t in schema.items()
           if t == pl.Date])
    kinds = {c: ("timestamp" if isinstance(t, pl.Datetime) else "date" if t == pl.Date
                 else "int" if t.is_integer() else "json" if c in ("extensions", "consent")
                 else "string") for c, t in schema.items()}
    doc = frame.select(pl.col("customer_id").alias("person_id"),
                       pl.struct(pl.all()).struct.json_encode().alias("doc"))
    digests = [hashlib.blake2b(d.encode(), digest_size=10).hexdigest()
               for d in doc.get_column("doc")]
    when = None if resolved_at is None else resolved_at.isoformat().replace("+00:00", "Z")
    return doc.with_columns(pl.Series("digest", digests, pl.String)), columns, kinds, when


# A `details` doc is JSON built from vectorised fragments (struct encodings joined per
# group: encoding lists inside an aggregation is ten times slower at 1M persons):
#   {"records": [{"record", "record_time", "rule", "matched_on", "confidence",
#                 "values": [{"a": attribute, "v": value, "t": field time, "c": confidence}]}],
#    "links": [LINK], "kept_out": [LINK],
#    "contested": [{"a": attribute, "n": candidate records, "k": competing values}]
#                 (attributes with more than one candidate; each attribute's rule is in
#                 meta `rules`),
#    "consent": [{"record", "source", "value", "raw_value", "field_time", "valid_to",
#                 "is_current"}]}
# LINK: {"a", "b", "rule", "evidence", "status", "reason", "match_weight",
#        "match_probability"}. `serving/reader.py` turns it into the API's shape.


def _json(*fields: pl.Expr) -> pl.Expr:
    return pl.struct(*fields).struct.json_encode()


def _joined(column: str, name: str) -> pl.Expr:
    """An aggregation: the group's JSON fragments as one JSON array."""
    return pl.format("[{}]", pl.col(column).str.join(",")).alias(name)


def _short(column: str) -> pl.Expr:
    return pl.col(column).str.replace(r"^customer:", "")


def _records(lake: Path, versions: dict[str, int], identity: pl.DataFrame,
             registry: Registry) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(person_id, records: the person's records as one JSON array; every value each
    record currently holds: node_id, attribute, value)."""
    shown = {a: c for a, c in registry.gold_columns()} | {"anonymousId": "anonymous_id"}
    nodes = (_silver(lake, "nodes", versions)
             .filter(pl.col("node_type").is_in(list(shown)))
             .select("node_id", "node_type", "value"))
    values = (_silver(lake, "relationships", versions)
              .filter(pl.col("is_current") & pl.col("rel_type").str.starts_with("HAS_"))
              .select(pl.col("source_node_id").alias("node_id"), "target_node_id",
                      "updated_at", "confidence")
              .join(nodes, left_on="target_node_id", right_on="node_id")
              .join(identity.lazy().select("node_id"), on="node_id", how="semi")
              .select("node_id", pl.col("node_type").replace_strict(shown).alias("attribute"),
                      "value", "updated_at", "confidence")
              .collect())
    per_record = (values.sort("node_id", "attribute", "updated_at",
                              descending=[False, False, True])
                  .select("node_id", _json(pl.col("attribute").alias("a"),
                                           pl.col("value").alias("v"),
                                           _iso("updated_at").alias("t"),
                                           pl.col("confidence").alias("c")).alias("value"))
                  .group_by("node_id", maintain_order=True)
                  .agg(_joined("value", "values")))
    features = (_silver(lake, "identity_features", versions).select("node_id", "record_time")
                .collect())
    head = _json(_short("node_id").alias("record"), _iso("record_time").alias("record_time"),
                 "rule", "matched_on", pl.col("confidence").round(4))
    records = (identity.join(features, on="node_id", how="left")
               .join(per_record, on="node_id", how="left")
               .sort("person_id", "node_id")
               .select("person_id", pl.format('{},"values":{}}}', head.str.head(-1),
                                              pl.col("values").fill_null("[]")).alias("record"))
               .group_by("person_id", maintain_order=True).agg(_joined("record", "records")))
    return records, values.select("node_id", "attribute", "value")


def _links(lake: Path, versions: dict[str, int], identity: pl.DataFrame) -> pl.DataFrame:
    """person_id, links (inside the person), kept_out (refused/held links touching it)."""
    links = _silver(lake, "identity_links", versions).collect()
    ends = identity.select("node_id", "person_id")
    links = (links.join(ends.rename({"node_id": "node_l", "person_id": "person_l"}),
                        on="node_l", how="left")
             .join(ends.rename({"node_id": "node_r", "person_id": "person_r"}),
                   on="node_r", how="left")
             .sort("node_l", "node_r")
             .with_columns(_json(_short("node_l").alias("a"), _short("node_r").alias("b"),
                                 "rule", "evidence", "status", "reason",
                                 pl.col("match_weight").round(3),
                                 pl.col("match_probability").round(6)).alias("link")))
    inside = (links.filter((pl.col("person_l") == pl.col("person_r"))
                           & pl.col("status").is_in(SHOWN_STATUSES))
              .group_by(pl.col("person_l").alias("person_id"), maintain_order=True)
              .agg(_joined("link", "links")))
    out = links.filter(pl.col("status").is_in(KEPT_OUT_STATUSES))
    # A link kept out shows on both persons it would have joined (at most 50 each).
    kept_out = (pl.concat([out.select(pl.col("person_l").alias("person_id"), "link"),
                           out.filter(pl.col("person_l") != pl.col("person_r"))
                           .select(pl.col("person_r").alias("person_id"), "link")])
                .drop_nulls("person_id").group_by("person_id", maintain_order=True)
                .agg(pl.format("[{}]", pl.col("link").head(50).str.join(",")).alias("kept_out")))
    return inside.join(kept_out, on="person_id", how="full", coalesce=True)


def _rules(resolved: pl.LazyFrame | None, columns: dict[str, str]) -> dict[str, str]:
    """Each attribute's survivorship rule (the same for every person: config), from
    `gold/resolved_attributes`."""
    if resolved is None:
        return {}
    pairs = (resolved.select("attribute", "rule").unique().sort("attribute", "rule")
             .collect().rows())
    return {columns.get(a, a): r for a, r in pairs}


def _details(lake: Path, versions: dict[str, int], records: pl.DataFrame,
             identity: pl.DataFrame, resolved: pl.LazyFrame | None,
             columns: dict[str, str]) -> pl.DataFrame:
    """person_id, doc: the person's records, links, contested attributes (of
    `gold/resolved_attributes`), consent history."""
    parts = [records, _links(lake, versions, identity)]
    if resolved is not None:
        parts.append(resolved.filter(pl.col("candidate_records") > 1)
                     .sort("customer_id", "attribute").select(
            pl.col("customer_id").alias("person_id"),
            _json(pl.col("attribute").replace_strict(columns, default=pl.col("attribute"))
                  .alias("a"), pl.col("candidate_records").alias("n"),
                  pl.col("competing_values").alias("k")).alias("item"))
            .group_by("person_id", maintain_order=True).agg(_joined("item", "contested"))
            .collect())
    log = _gold(lake, "consent_log")
    if log is not None:
        parts.append(log.sort("customer_id", "field_time").select(
            pl.col("customer_id").alias("person_id"),
            _json(_short("record_node_id").alias("record"),
                  pl.col("source_system").alias("source"),
                  pl.col("email_consent").alias("value"), "raw_value",
                  _iso("field_time").alias("field_time"), _iso("valid_to").alias("valid_to"),
                  "is_current").alias("item"))
            .group_by("person_id", maintain_order=True).agg(_joined("item", "consent"))
            .collect())
    frame = parts[0]
    for part in parts[1:]:
        frame = frame.join(part, on="person_id", how="left")
    names = [c for c in ("records", "links", "kept_out", "contested", "consent")
             if c in frame.columns]
    template = "{{" + ",".join(f'"{n}":{{}}' for n in names) + "}}"  # polars: {{ is {
    return frame.select("person_id", pl.format(template, *[pl.col(n).fill_null("[]")
                                                           for n in names]).alias("doc"))


def _identifiers(lake: Path, versions: dict[str, int], identity: pl.DataFrame,
                 current: pl.DataFrame, sources: tuple[SourceSpec, ...]) -> pl.DataFrame:
    """kind, value, person_id, current (1 when a record holds the value now): every
    valid identifier a record ever held (identity's keys) and every value one holds now,
    valid or not (a golden phone no numbering plan knows is still what the profile
    shows, and what a user copies from it)."""
    kinds = {"email": "email", "phone": "phone", "mobile_phone": "phone",
             "anonymous_id": "anonymous_id"}
    now = (current.filter(pl.col("attribute").is_in(list(kinds)))
           .select("node_id", pl.col("attribute").replace_strict(kinds).alias("kind"), "value")
           .with_columns(pl.lit(1, pl.Int8).alias("current")))
    keys = (_silver(lake, "identity_keys", versions)
            .filter(pl.col("kind").is_in(KEY_KINDS)).select("node_id", "kind", "value")
            .with_columns(pl.lit(0, pl.Int8).alias("current")).collect())
    held = (pl.concat([keys, now]).join(identity, on="node_id")
            .group_by("kind", "value", "person_id").agg(pl.col("current").max()))
    record = identity.select(pl.lit("record").alias("kind"),
                             pl.col("node_id").str.replace(r"^customer:", "").alias("value"),
                             "person_id", pl.lit(1, pl.Int8).alias("current"))
    # Looser keys of record ids where a source declares one (`SourceSpec.lookup_key`:
    # a Salesforce id's 15 characters, an SAP number without client or zeros).
    keyed = [record.filter(pl.col("value").str.starts_with(f"{s.name}:"))
             .with_columns(pl.format("{}:{}", pl.lit(s.name), s.lookup_key(
                 pl.col("value").str.slice(len(s.name) + 1))).alias("value"),
                 pl.lit("record_key").alias("kind"))
             for s in sources if s.lookup_key is not None]
    return (pl.concat([held, record, *keyed], how="diagonal_relaxed")
            .unique(["kind", "value", "person_id"]).sort("kind", "value", "person_id"))


def _previous(path: Path) -> tuple[dict[str, tuple[str, str]], pl.DataFrame]:
    """The previous store's person -> (digest, changed_at), and its tombstones."""
    empty = pl.DataFrame(schema={"person_id": pl.String, "removed_at": pl.String,
                                 "merged_into": pl.String})
    meta = read_meta(path)
    if meta is None or meta.get("format") != str(FORMAT):
        return {}, empty
    con = connect(path)
    try:
        seen = {p: (d, c) for p, d, c in
                con.execute("SELECT person_id, digest, changed_at FROM profiles")}
        gone = pl.DataFrame(con.execute("SELECT person_id, removed_at, merged_into "
                                        "FROM tombstones").fetchall(),
                            schema=empty.schema, orient="row")
    finally:
        con.close()
    return seen, gone


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE profiles (person_id TEXT PRIMARY KEY, doc TEXT NOT NULL, changed_at TEXT NOT NULL,
                       digest TEXT NOT NULL);
CREATE TABLE details (person_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE identifiers (kind TEXT, value TEXT, person_id TEXT, current INTEGER,
                          PRIMARY KEY (kind, value, person_id)) WITHOUT ROWID;
CREATE TABLE aliases (person_id TEXT PRIMARY KEY, survivor TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE tombstones (person_id TEXT PRIMARY KEY, removed_at TEXT NOT NULL,
                         merged_into TEXT) WITHOUT ROWID;
"""
_INDEXES = "CREATE INDEX profiles_changed ON profiles (changed_at);"


def _insert(con: sqlite3.Connection, table: str, frame: pl.DataFrame) -> None:
    marks = ", ".join("?" * frame.width)
    sql = f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES ({marks})"
    for start in range(0, frame.height, BATCH):
        chunk = frame.slice(start, BATCH)
        con.executemany(sql, zip(*(chunk.get_column(c).to_list() for c in frame.columns),
                                 strict=True))


def _replace(tmp: Path, path: Path) -> None:
    """fsync `tmp`, rename it over `path`, fsync the folder."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stale_temporaries(path: Path) -> None:
    """Remove half-written stores of writers that died (a `kill -9` mid-build): they may
    hold customers' values nobody serves, and an erasure's proof would find them."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write(path: Path, tables: dict[str, pl.DataFrame], meta: dict[str, str]) -> int:
    """Write a complete store to a new file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        con = sqlite3.connect(tmp)
        try:
            con.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                              "PRAGMA page_size = 4096;" + _SCHEMA)
            for table, frame in tables.items():
                _insert(con, table, frame)
                failpoints.reached("serving.table_written")
            _insert(con, "meta", pl.DataFrame({"key": list(meta), "value": list(meta.values())}))
            con.executescript(_INDEXES)
            con.commit()
        finally:
            con.close()
        _replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def build_store(lake: Path, *, sources: tuple[SourceSpec, ...] | None = None,
                echo: Callable[[str], None] = print) -> BuildReport:
    """Build the store from the last complete gold publish and rename it into place.
    `sources`: the catalogue (default: the configured one), for record ids' lookup keys."""
    t0 = time.perf_counter()
    lake = Path(lake)
    path = store_path(lake)
    token = gold_token(lake)
    versions = ((read_journal(lake).get("complete") or {}).get("build") or {}) \
        .get("silver_versions") or {}
    registry = load_registry()
    columns = dict(registry.gold_columns())
    resolved = _gold(lake, "resolved_attributes")
    profiles, attributes, kinds, resolved_at = _profiles(lake, registry)
    persons = profiles.get_column("person_id")
    identity = (_silver(lake, "identity", versions)
                .select("node_id", "person_id", "rule", "matched_on", "confidence")
                .filter(pl.col("person_id").is_in(persons.implode())).collect())
    records, current = _records(lake, versions, identity, registry)
    details = _details(lake, versions, records, identity, resolved, columns)
    identity = identity.select("node_id", "person_id")
    identifiers = _identifiers(lake, versions, identity, current,
                               catalogue(load_config()) if sources is None else sources)
    survivors = merged_survivors(lake).rename({"_person": "person_id", "_survivor": "survivor"})
    served = set(persons.to_list())
    aliases = survivors.filter(pl.col("survivor").is_in(persons.implode())
                               & ~pl.col("person_id").is_in(persons.implode()))
    now = dt.datetime.now(dt.UTC)
    built_at = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
    seen, gone = _previous(path)
    changed_at = [seen[p][1] if p in seen and seen[p][0] == d else built_at
                  for p, d in zip(persons.to_list(), profiles.get_column("digest").to_list(),
                                  strict=True)]
    profiles = profiles.with_columns(pl.Series("changed_at", changed_at, pl.String))
    removed = [p for p in seen if p not in served]
    merged = dict(zip(aliases.get_column("person_id").to_list(),
                      aliases.get_column("survivor").to_list(), strict=True))
    tombstones = pl.concat([
        gone.filter(~pl.col("person_id").is_in(persons.implode())
                    & ~pl.col("person_id").is_in(pl.Series(removed, dtype=pl.String).implode())),
        pl.DataFrame({"person_id": removed, "removed_at": [built_at] * len(removed),
                      "merged_into": [merged.get(p) for p in removed]},
                     schema=gone.schema)]).sort("person_id")
    version = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    meta = {"format": str(FORMAT), "version": version, "built_at": built_at,
            "gold_versions": json.dumps(token, sort_keys=True),
            "profile_resolved_at": resolved_at or "", "attributes": json.dumps(attributes),
            "rules": json.dumps(_rules(resolved, columns)), "columns": json.dumps(list(kinds.items())),
            "persons": str(profiles.height), "identifiers": str(identifiers.height),
            "sources": json.dumps(sorted(identity.get_column("node_id").str.splitn(":", 3)
                                         .struct.field("field_1").unique().to_list()))}
    size = _write(path, {
        "profiles": profiles.select("person_id", "doc", "changed_at", "digest").sort("person_id"),
        "details": details.sort("person_id"),
        "identifiers": identifiers.select("kind", "value", "person_id", "current"),
        "aliases": aliases.select("person_id", "survivor").sort("person_id"),
        "tombstones": tombstones}, meta)
    changed = sum(1 for c in changed_at if c == built_at)
    report = BuildReport(path, version, profiles.height, identifiers.height, aliases.height,
                         changed, len(removed), size, time.perf_counter() - t0, token)
    echo(f"serving: store {version}: {report.persons:,} profile(s), {report.identifiers:,} "
         f"identifier(s), {report.aliases:,} merged id(s); {changed:,} changed, "
         f"{len(removed):,} gone since the last store ({size / 2**20:,.1f} MiB, "
         f"{report.seconds:.1f} s)")
    return report


# ----------------------------------------------------------------------------- erasure

def forget(lake: Path, persons: set[str]) -> int:
    """Write the store again without `persons` (profiles, details, identifiers, aliases
    naming them; each becomes a tombstone), as a new file renamed into place, so none of
    their values stays in any page of the file. Returns the profiles removed."""
    path = store_path(lake)
    meta = read_meta(path)
    if meta is None or not persons:
        return 0
    con = connect(path)
    try:
        wanted = sorted(persons)
        holders = _matching(con, wanted)
        if not holders:
            return 0
        tables = {}
        for table in ("profiles", "details", "identifiers", "aliases", "tombstones"):
            cursor = con.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            frame = pl.DataFrame(cursor.fetchall(), schema=names, orient="row",
                                 infer_schema_length=None)
            if frame.height == 0:
                frame = pl.DataFrame(schema={n: pl.String for n in names})
            drop = pl.col("person_id").is_in(wanted)
            if table == "aliases":
                drop = drop | pl.col("survivor").is_in(wanted)
            tables[table] = frame.filter(~drop)
    finally:
        con.close()
    removed_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    erased = pl.DataFrame({"person_id": holders, "removed_at": [removed_at] * len(holders),
                           "merged_into": [None] * len(holders)},
                          schema={"person_id": pl.String, "removed_at": pl.String,
                                  "merged_into": pl.String})
    tables["tombstones"] = pl.concat([tables["tombstones"].cast(pl.String), erased]) \
        .unique("person_id", keep="last").sort("person_id")
    counts = {"persons": str(tables["profiles"].height),
              "identifiers": str(tables["identifiers"].height)}
    _write(path, tables, {**meta, **counts})
    return len(holders)


def _matching(con: sqlite3.Connection, persons: list[str]) -> list[str]:
    """Which of `persons` the store holds anything of."""
    found: set[str] = set()
    for start in range(0, len(persons), 500):
        chunk = persons[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for table in ("profiles", "details", "identifiers", "aliases"):
            found |= {r[0] for r in con.execute(
                f"SELECT DISTINCT person_id FROM {table} WHERE person_id IN ({marks})", chunk)}
        found |= {r[0] for r in con.execute(
            f"SELECT DISTINCT survivor FROM aliases WHERE survivor IN ({marks})", chunk)}
    return sorted(found)
