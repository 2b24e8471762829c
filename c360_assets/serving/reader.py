"""Reading the serving store: what the API answers, independent of HTTP.

`Stores` hands out the current store: it checks the file's identity (device, inode,
mtime) on each call and opens the new file after a rebuild renamed one into place. A
request keeps the `Store` it started with, so it reads one version whole; the old file
stays readable to it after the rename.

Identifiers are normalised with silver's own functions (`lib/normalise.py`), so
`' Alex.Doe@Example.COM '` finds what silver stored as `alex.doe@example.com`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from c360_assets.lib import normalise
from c360_assets.serving import store as st

PERSON_ID = re.compile(r"^p_[0-9a-f]{16}$")
MAX_INPUT = 1_000  # characters of one query value
CONTROL = re.compile(normalise.CONTROL)  # what silver removes and never links on


class BadInput(ValueError):
    """A malformed request value (answered 422); `field` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Match:
    person_id: str
    current: bool  # a record holds the identifier now (else it held it before)


class Store:
    """One open store file (one version)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity = _identity(path)
        self.con = st.connect(path)
        meta = dict(self.con.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != str(st.FORMAT):
            self.con.close()
            raise st.StoreError(f"{path}: store format {meta.get('format')!r}, this c360 "
                                f"reads {st.FORMAT} (rebuild it: c360 materialize)")
        self.meta = meta
        self.version = meta["version"]
        self.attributes: list[str] = json.loads(meta["attributes"])
        self.rules: dict[str, str] = json.loads(meta.get("rules") or "{}")
        self.columns: list[tuple[str, str]] = [tuple(c) for c in json.loads(meta["columns"])]
        self.sources: list[str] = json.loads(meta["sources"])  # that hold served records

    # ---------------------------------------------------------------- point reads
    def doc(self, person_id: str) -> tuple[dict[str, Any], str] | None:
        row = self.con.execute("SELECT doc, changed_at FROM profiles WHERE person_id = ?",
                               (person_id,)).fetchone()
        return None if row is None else (orjson.loads(row[0]), row[1])

    def survivor(self, person_id: str) -> str | None:
        row = self.con.execute("SELECT survivor FROM aliases WHERE person_id = ?",
                               (person_id,)).fetchone()
        return None if row is None else row[0]

    def tombstone(self, person_id: str) -> dict[str, Any] | None:
        row = self.con.execute("SELECT removed_at, merged_into FROM tombstones "
                               "WHERE person_id = ?", (person_id,)).fetchone()
        return None if row is None else {"removed_at": row[0], "merged_into": row[1]}

    def details(self, person_id: str) -> dict[str, Any] | None:
        row = self.con.execute("SELECT doc FROM details WHERE person_id = ?",
                               (person_id,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def lookup(self, kind: str, value: str) -> list[Match]:
        rows = self.con.execute(
            "SELECT person_id, current FROM identifiers WHERE kind = ? AND value = ? "
            "ORDER BY current DESC, person_id LIMIT 100", (kind, value)).fetchall()
        return [Match(p, bool(c)) for p, c in rows]

    def close(self) -> None:
        self.con.close()


def _identity(path: Path) -> tuple[int, int, int]:
    s = os.stat(path)
    return s.st_dev, s.st_ino, s.st_mtime_ns


class Stores:
    """The current store of a lake, reopened after each rebuild."""

    def __init__(self, lake: Path) -> None:
        self.path = st.store_path(lake)
        self._store: Store | None = None
        self._lock = threading.Lock()

    def get(self) -> Store:
        """The store as it is now (raises `StoreError` when none was built)."""
        try:
            now = _identity(self.path)
        except FileNotFoundError:
            raise st.StoreError(f"no serving store at {self.path} (build it: c360 "
                                "materialize)") from None
        store = self._store
        if store is not None and store.identity == now:
            return store
        with self._lock:
            if self._store is None or self._store.identity != _identity(self.path):
                # The old file stays open for requests still reading it; the connection
                # closes when the last of them lets go.
                self._store = Store(self.path)
            return self._store


# ------------------------------------------------------------------------ identifiers

def _one(kind: str, raw: str, field: str) -> str:
    """`raw` normalised as silver normalises `kind`, and valid."""
    frame = normalise.normalise(pl.DataFrame({"v": [raw]}, schema={"v": pl.String}), "v", kind)
    value, valid = frame.row(0)
    if value is None or not valid or CONTROL.search(raw):
        raise BadInput(field, f"not a valid {field.replace('_', ' ')}")
    return value


# Rust's `char::is_whitespace` within ASCII (what polars' strip_chars() trims); Python's
# str.strip() would also trim \x1c-\x1f.
_ASCII_SPACE = " \t\n\x0b\x0c\r"


def email_value(raw: str) -> str | None:
    """The e-mail as silver stores it (`lib/normalise.email`: control characters
    removed, trimmed, lower-cased). ASCII input in plain Python - a lookup's hottest step
    (~0.6 ms through polars for one value); anything else through silver's own function.
    `tests/unit/test_serving_reader.py` holds the two to the same answers."""
    if raw.isascii():
        return CONTROL.sub("", raw).strip(_ASCII_SPACE).lower() or None
    frame = normalise.normalise(pl.DataFrame({"v": [raw]}, schema={"v": pl.String}), "v",
                                "email")
    return frame.get_column("v")[0] or None


def _checked(field: str, raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise BadInput(field, f"{field} is empty")
    if len(raw) > MAX_INPUT:
        raise BadInput(field, f"{field} is longer than {MAX_INPUT} characters")
    return raw


def identifier(params: dict[str, str], sources: Iterable[str]) -> tuple[str, str]:
    """(kind, normalised value) of a lookup's query parameters: exactly one of `email`,
    `phone` (with an optional `country` for a national number), `anonymous_id`, or
    `source` with `id` (`record`, `<source>:<id>`; `record_key` lookups are the API's
    second try)."""
    allowed = {"email", "phone", "country", "anonymous_id", "source", "id"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise BadInput(unknown[0], f"unknown parameter {unknown[0]!r} (use one of email, "
                                   "phone [with country], anonymous_id, source with id)")
    given = [k for k in ("email", "phone", "anonymous_id", "source") if k in params]
    if len(given) != 1:
        raise BadInput("query", "give exactly one identifier: email, phone, anonymous_id, "
                                "or source with id")
    kind = given[0]
    if "country" in params and kind != "phone":
        raise BadInput("country", "country is a hint for phone numbers only")
    if "id" in params and kind != "source":
        raise BadInput("id", "id goes with source (source=<name>&id=...)")
    if kind == "email":
        raw = _checked("email", params["email"])
        local, at, domain = raw.strip().rpartition("@")
        if not at or not local or not domain:
            raise BadInput("email", "not an e-mail address (name@domain)")
        value = email_value(raw)
        if value is None or CONTROL.search(raw):
            raise BadInput("email", "not a valid email")
        return "email", value
    if kind == "anonymous_id":
        return "anonymous_id", _one("id", _checked("anonymous_id", params["anonymous_id"]),
                                    "anonymous_id")
    if kind == "phone":
        raw = _checked("phone", params["phone"])
        country = params.get("country")
        if country is not None:
            country = _one("country", _checked("country", country), "country")
        frame = normalise.normalise(
            pl.DataFrame({"v": [raw], "r": [country]}, schema={"v": pl.String, "r": pl.String}),
            "v", "phone", region="r")
        value = frame.get_column("v")[0]
        # A number no plan knows is looked up as silver stored it (E.164-shaped), but a
        # national number without its country, or too few digits, is no number at all.
        national = country is None and not raw.strip().startswith(("+", "00"))
        if (value is None or national or not value.startswith("+") or len(value) < 8
                or CONTROL.search(raw)):
            raise BadInput("phone", "not a phone number (give it in international form, "
                                    "+<country code>..., or add country=<ISO code>)")
        return "phone", value
    source = _checked("source", params["source"]).strip().lower()
    if source not in sources:
        raise BadInput("source", f"unknown source {source!r} (known: {', '.join(sources)})")
    record = _checked("id", params.get("id")).strip()
    if len(record) > 255 or CONTROL.search(record):
        raise BadInput("id", "not a source record id")
    return "record", f"{source}:{record}"


def record_key(source: str, record: str, lookup_key: Callable[[pl.Expr], pl.Expr] | None
               ) -> str | None:
    """The source's looser lookup key of a typed record id (`SourceSpec.lookup_key`)."""
    if lookup_key is None:
        return None
    key = pl.select(lookup_key(pl.lit(record, pl.String))).item()
    return f"{source}:{key}" if key else None


def person_id(raw: str) -> str:
    value = raw.strip()
    if not PERSON_ID.match(value):
        raise BadInput("person_id", "not a person id (p_ and 16 hexadecimal digits)")
    return value


def since(raw: str | None) -> str | None:
    """`changed_since` as the store writes times (UTC, ISO 8601, microseconds, Z)."""
    if raw is None:
        return None
    text = _checked("changed_since", raw).strip()
    if "T" in text:  # a `+01:00` offset sent unencoded arrives as ` 01:00`
        text = text.replace(" ", "+")
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput("changed_since", "not an ISO 8601 time (e.g. "
                                        "2026-12-01T00:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------ documents

def profile(store: Store, doc: dict[str, Any], changed_at: str) -> dict[str, Any]:
    """The API's profile: each field with its winning source and field time."""
    fields = {a: {"value": doc.get(a), "source": doc.get(f"{a}_source"),
                  "updated_at": doc.get(f"{a}_updated_at")} for a in store.attributes}
    return {"person_id": doc["customer_id"], "fields": fields,
            "consent": doc.get("consent") or [], "extensions": doc.get("extensions") or {},
            "source_record_count": doc.get("source_record_count"),
            "resolved_at": store.meta.get("profile_resolved_at") or None,
            "changed_at": changed_at}


def sources(store: Store, person: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The person's records with their current values, what holds them together, and
    per field the winner, its rule and the values that lost (and why)."""
    details = store.details(person) or {}
    records = []
    for r in details.get("records") or []:
        source, _, rid = r["record"].partition(":")
        values = {}
        for v in r.get("values") or []:
            values.setdefault(v["a"], {"value": v["v"], "field_time": v["t"],
                                       "confidence": v["c"]})
        records.append({"record": r["record"], "source": source, "id": rid,
                        "record_time": r.get("record_time"),
                        "held_by": {"rule": r.get("rule"), "matched_on": r.get("matched_on"),
                                    "confidence": r.get("confidence")},
                        "values": values})
    contested = {x["a"]: x for x in details.get("contested") or []}
    fields = {}
    for attribute in store.attributes:
        winner = {"value": _text(doc.get(attribute)), "source": doc.get(f"{attribute}_source"),
                  "updated_at": doc.get(f"{attribute}_updated_at")}
        rule = store.rules.get(attribute)
        others = []
        for rec in records:
            held = rec["values"].get(attribute)
            if held is None:
                continue
            if (held["value"] == winner["value"] and rec["source"] == winner["source"]
                    and held["field_time"] == winner["updated_at"]):
                continue  # the winner itself
            others.append({"record": rec["record"], "source": rec["source"], **held,
                           **_verdict(held, rec["source"], winner, rule)})
        others.sort(key=lambda o: o["field_time"] or "", reverse=True)
        present = winner["value"] is not None
        fields[attribute] = {
            "winner": winner if present else None, "rule": rule if present else None,
            "candidates": contested[attribute]["n"] if attribute in contested
            else int(present),
            "competing_values": contested[attribute]["k"] if attribute in contested
            else int(present),
            "others": others}
    return {"person_id": person, "records": records,
            "links": details.get("links") or [], "kept_out": details.get("kept_out") or [],
            "fields": fields, "consent_history": details.get("consent") or []}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _verdict(held: dict[str, Any], source: str, winner: dict[str, Any], rule: str | None
             ) -> dict[str, str]:
    """`same` (the winner's value, held by another record) or `lost`, and why."""
    if held["value"] == winner["value"]:
        return {"verdict": "same", "why": "holds the winning value"}
    mine, theirs = held["field_time"] or "", winner["updated_at"] or ""
    if rule == "source_priority":
        why = f"source priority: {winner['source']} ranks before {source} for this field"
    elif rule == "most_frequent":
        why = "fewer of the person's records hold this value"
    elif mine < theirs:
        why = f"older: changed {mine}, the winner {theirs}"
    elif mine == theirs:
        why = ("changed at the same time as the winner: lower confidence, source "
               "priority or a later-landed winner decided")
    elif rule == "most_recent_unless_typo":
        why = "newer, but a typo of the value the person's records agree on"
    else:
        why = ("newer, but not a plausible value (a placeholder, over its length limit or "
               "holding control characters) or written back by a c360 sync")
    return {"verdict": "lost", "why": why}


# ------------------------------------------------------------------------ export

class Export:
    """A bulk export read from a connection of its own: one version whole, however long
    it streams. Iterate `batches()` (lists of (doc, changed_at)), then `tombstones()`
    (persons gone since `changed_since`); `close()` at the end."""

    def __init__(self, path: Path, changed_since: str | None, limit: int | None) -> None:
        self.con = st.connect(path)
        self.version = self.con.execute(
            "SELECT value FROM meta WHERE key = 'version'").fetchone()[0]
        self.columns = [tuple(c) for c in json.loads(self.con.execute(
            "SELECT value FROM meta WHERE key = 'columns'").fetchone()[0])]
        self.changed_since, self.limit = changed_since, limit

    def batches(self, size: int = 2_000) -> Iterator[list[tuple[str, str]]]:
        where, args = (("WHERE changed_at > ?", [self.changed_since]) if self.changed_since
                       else ("", []))
        limit = f" LIMIT {int(self.limit)}" if self.limit is not None else ""
        cursor = self.con.execute(
            f"SELECT doc, changed_at FROM profiles {where} ORDER BY person_id{limit}", args)
        while rows := cursor.fetchmany(size):
            yield rows

    def tombstones(self) -> Iterator[tuple[str, str, str | None]]:
        if self.changed_since is None:
            return
        yield from self.con.execute(
            "SELECT person_id, removed_at, merged_into FROM tombstones WHERE removed_at > ? "
            "ORDER BY person_id", [self.changed_since])

    def close(self) -> None:
        self.con.close()


def ndjson_lines(rows: list[tuple[str, str]]) -> bytes:
    """Each profile as the gold row plus `changed_at`, one JSON object per line."""
    return b"".join(f'{doc[:-1]},"changed_at":"{changed}"}}\n'.encode() for doc, changed in rows)


def tombstone_line(person: str, removed_at: str, merged_into: str | None) -> bytes:
    return orjson.dumps({"customer_id": person, "deleted": True, "removed_at": removed_at,
                         "merged_into": merged_into}) + b"\n"


def parquet_table(rows: list[tuple[str, str]], columns: list[tuple[str, str]]):  # noqa: ANN201
    """A batch of profiles as an Arrow table typed like gold (nested values as JSON)."""
    schema = {name: pl.Int64 if kind == "int" else pl.String for name, kind in columns}
    schema["changed_at"] = pl.String
    frame = (pl.read_ndjson(io.BytesIO(ndjson_lines(rows)), schema=schema) if rows
             else pl.DataFrame(schema=schema))
    typed = []
    for name, kind in [*columns, ("changed_at", "timestamp")]:
        col = pl.col(name) if name in frame.columns else pl.lit(None, pl.String).alias(name)
        if kind == "timestamp":
            col = col.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC")
        elif kind == "date":
            col = col.str.to_date("%Y-%m-%d")
        elif kind == "int":
            col = col.cast(pl.Int64)
        typed.append(col.alias(name))
    return frame.select(typed).to_arrow(compat_level=pl.CompatLevel.oldest())
