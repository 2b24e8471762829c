"""The attribute name registry, the canonical attributes and source priorities
(`config/*.csv`), validated once.

`attribute_name_registry.csv` maps a source field to a canonical attribute and the
relationship type of its edge; adding a source field is a registry row, never a schema
change. `canonical_attributes.csv` says, per canonical attribute, how its values are
normalised (`kind`), its `customer_profile` column (`gold_column`, empty: not in the
profile) and the identity comparison column it feeds (`identity_column`); an attribute
it does not list is text, outside the profile and identity. Rules checked at load, each
failure naming the file and line:
* the header is exactly the architecture's columns;
* booleans are `true`/`false`, `registry_version` a positive integer;
* a canonical attribute has one relationship type everywhere (the SCD-2 key of an
  edge is its record and relationship type, so two attributes may not share one);
* an active mapping is not listed twice.
Several active rows of one source table mapping the same canonical attribute are a
fallback chain in file order: the first non-empty field wins (Salesforce
`mailing_country_code`, else `mailing_country`).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from c360_assets.lib.config import ConfigError, config_dir, load_config

REGISTRY_FILE = "attribute_name_registry.csv"
PRIORITY_FILE = "source_priority.csv"
CANONICAL_FILE = "canonical_attributes.csv"
CANONICAL_COLUMNS = ("canonical_name", "kind", "gold_column", "identity_column")
REGISTRY_COLUMNS = ("source_system", "source_table", "source_field", "canonical_name",
                    "rel_type", "identifying", "registry_version", "is_active")
PRIORITY_COLUMNS = ("source_system", "priority", "notes")


@dataclass(frozen=True)
class Mapping:
    source_system: str
    source_table: str
    source_field: str
    canonical_name: str
    rel_type: str
    identifying: bool
    registry_version: int
    line: int  # in the CSV file, for messages

    @property
    def table_key(self) -> str:
        return f"{self.source_system}/{self.source_table}"


@dataclass(frozen=True)
class Canonical:
    name: str
    kind: str  # how values are normalised (lib/normalise.py)
    gold_column: str | None  # customer_profile column
    identity_column: str | None  # identity comparison column (silver/identity.py)
    line: int


@dataclass(frozen=True)
class Registry:
    mappings: tuple[Mapping, ...]  # active rows, file order
    priorities: dict[str, int]  # source_system -> 1 (most trusted) ..
    canonical: tuple[Canonical, ...] = ()  # canonical_attributes.csv, file order

    def kind(self, attribute: str) -> str:
        """How the attribute's values are normalised (`text` when not listed)."""
        return self.kinds().get(attribute, "text")

    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.canonical}

    def gold_columns(self) -> tuple[tuple[str, str], ...]:
        """(attribute, customer_profile column), in profile order."""
        return tuple((c.name, c.gold_column) for c in self.canonical if c.gold_column)

    def identity_columns(self) -> dict[str, str]:
        """attribute -> the identity comparison column it feeds."""
        return {c.name: c.identity_column for c in self.canonical if c.identity_column}

    def link_kinds(self, not_values: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
        """Identifying attributes (registry `identifying`) that link records through a
        shared value -> the kind of that link: attributes of one value kind link across
        each other (a mobile and a landline with the same digits are one phone); an id
        links only with itself (`anonymousId` -> `anonymous_id`). `not_values`:
        attributes whose edges point at records, not values."""
        identifying = self.identifying() - set(not_values)
        ordered = [c.name for c in self.canonical] + sorted(
            identifying - {c.name for c in self.canonical})
        return {a: self.kind(a) if self.kind(a) != "id" else _snake(a)
                for a in ordered if a in identifying}

    def for_table(self, source: str, table: str) -> dict[str, list[Mapping]]:
        """canonical name -> its fallback chain of mappings for one source table."""
        out: dict[str, list[Mapping]] = {}
        for m in self.mappings:
            if m.source_system == source and m.source_table == table:
                out.setdefault(m.canonical_name, []).append(m)
        return out

    def rel_type(self, canonical: str) -> str:
        for m in self.mappings:
            if m.canonical_name == canonical:
                return m.rel_type
        raise KeyError(canonical)

    def identifying(self) -> set[str]:
        return {m.canonical_name for m in self.mappings if m.identifying}


def _snake(name: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name).lstrip("_")


def _bool(value: str, where: str, column: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "false"):
        return v == "true"
    raise ConfigError(f"{where}: column {column}: expected true or false, got {value!r}")


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    if not path.exists():
        raise ConfigError(f"{path}: file not found (it ships in config/; set C360_CONFIG_DIR "
                          "to a folder holding your own copy)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != columns:
            raise ConfigError(f"{path}:1: header must be {','.join(columns)}, got "
                              f"{','.join(header or [])!r}")
        out = []
        for line, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise ConfigError(f"{path}:{line}: expected {len(columns)} columns, got {len(row)}")
            out.append((line, {c: v.strip() for c, v in zip(columns, row, strict=True)}))
    return out


def parse_canonical(path: Path) -> tuple[Canonical, ...]:
    from c360_assets.lib.normalise import MAX_CHARS  # the kinds normalisation knows

    out: list[Canonical] = []
    seen: dict[str, int] = {}
    columns: dict[str, int] = {}
    for line, row in _rows(path, CANONICAL_COLUMNS):
        where = f"{path}:{line}"
        name, kind = row["canonical_name"], row["kind"]
        if not name:
            raise ConfigError(f"{where}: column canonical_name is empty")
        if name in seen:
            raise ConfigError(f"{where}: {name} is listed twice (line {seen[name]})")
        seen[name] = line
        if kind not in MAX_CHARS:
            raise ConfigError(f"{where}: column kind: unknown kind {kind!r} (known: "
                              f"{', '.join(sorted(MAX_CHARS))})")
        gold = row["gold_column"] or None
        if gold is not None:
            if not gold.isidentifier() or gold != gold.lower():
                raise ConfigError(f"{where}: column gold_column: {gold!r} is not a lower-case "
                                  "identifier")
            if gold in columns:
                raise ConfigError(f"{where}: gold_column {gold} is already line "
                                  f"{columns[gold]}'s")
            columns[gold] = line
        out.append(Canonical(name, kind, gold, row["identity_column"] or None, line))
    return tuple(out)


def parse_registry(registry_path: Path, priority_path: Path, sources: tuple[str, ...],
                   canonical_path: Path | None = None) -> Registry:
    """Read and check the files; `sources`: the names of the sources c360 reads (the
    catalogue, `c360_assets.bronze.source_names`); `canonical_path` defaults to
    `canonical_attributes.csv` beside the registry."""
    mappings: list[Mapping] = []
    rel_of: dict[str, tuple[str, int]] = {}
    canonical_of: dict[str, tuple[str, int]] = {}
    seen: dict[tuple[str, str, str, str], int] = {}
    for line, row in _rows(registry_path, REGISTRY_COLUMNS):
        where = f"{registry_path}:{line}"
        for column in REGISTRY_COLUMNS:
            if not row[column]:
                raise ConfigError(f"{where}: column {column} is empty")
        if row["source_system"] not in sources:
            raise ConfigError(f"{where}: column source_system: unknown source "
                              f"{row['source_system']!r} (known: {', '.join(sources)})")
        try:
            version = int(row["registry_version"])
        except ValueError:
            version = 0
        if version < 1:
            raise ConfigError(f"{where}: column registry_version: expected a positive integer, "
                              f"got {row['registry_version']!r}")
        identifying = _bool(row["identifying"], where, "identifying")
        if not _bool(row["is_active"], where, "is_active"):
            continue
        canonical, rel = row["canonical_name"], row["rel_type"]
        if canonical in rel_of and rel_of[canonical][0] != rel:
            raise ConfigError(f"{where}: {canonical} maps to {rel}, but line {rel_of[canonical][1]} "
                              f"maps it to {rel_of[canonical][0]}: one relationship type per "
                              "attribute")
        if rel in canonical_of and canonical_of[rel][0] != canonical:
            raise ConfigError(f"{where}: {rel} is already the relationship type of "
                              f"{canonical_of[rel][0]} (line {canonical_of[rel][1]})")
        rel_of.setdefault(canonical, (rel, line))
        canonical_of.setdefault(rel, (canonical, line))
        key = (row["source_system"], row["source_table"], row["source_field"], canonical)
        if key in seen:
            raise ConfigError(f"{where}: duplicate of line {seen[key]}")
        seen[key] = line
        mappings.append(Mapping(row["source_system"], row["source_table"], row["source_field"],
                                canonical, rel, identifying, version, line))
    priorities: dict[str, int] = {}
    for line, row in _rows(priority_path, PRIORITY_COLUMNS):
        where = f"{priority_path}:{line}"
        source = row["source_system"]
        if source not in sources:
            raise ConfigError(f"{where}: column source_system: unknown source {source!r}")
        if source in priorities:
            raise ConfigError(f"{where}: {source} is listed twice")
        try:
            priorities[source] = int(row["priority"])
        except ValueError:
            raise ConfigError(f"{where}: column priority: expected an integer, got "
                              f"{row['priority']!r}") from None
    missing = [s for s in sources if s not in priorities]
    if missing:
        raise ConfigError(f"{priority_path}: no priority for {', '.join(missing)}")
    canonical = parse_canonical(canonical_path or registry_path.parent / CANONICAL_FILE)
    return Registry(tuple(mappings), priorities, canonical)


def load_registry(folder: Path | None = None, sources: tuple[str, ...] | None = None
                  ) -> Registry:
    """The registry in `folder` (default: the config folder), checked against `sources`
    (default: the catalogue of that folder's `c360.yaml`); read once per folder."""
    return _load_registry(folder or config_dir(), sources)


@functools.cache
def _load_registry(folder: Path, sources: tuple[str, ...] | None) -> Registry:
    if sources is None:
        from c360_assets.bronze import source_names  # the catalogue imports lib.config

        sources = source_names(load_config(folder / "c360.yaml"))
    return parse_registry(folder / REGISTRY_FILE, folder / PRIORITY_FILE, sources)


def markdown(registry: Registry, sources: tuple[str, ...]) -> str:
    """Which landed column feeds which canonical attribute, as a Markdown table: one row
    per attribute, one column per source (`table.field`, a fallback chain with "else")."""
    attributes = list(dict.fromkeys(m.canonical_name for m in registry.mappings))
    lines = ["| attribute | edge | identifying | " + " | ".join(sources) + " |",
             "|---|---|---|" + "---|" * len(sources)]
    for attribute in attributes:
        rows = [m for m in registry.mappings if m.canonical_name == attribute]
        cells = []
        for source in sources:
            chains: dict[str, list[str]] = {}
            for m in rows:
                if m.source_system == source:
                    chains.setdefault(m.source_table, []).append(m.source_field)
            cells.append("; ".join(f"`{t}.{fs[0]}`" + "".join(f", else `{f}`" for f in fs[1:])
                                   for t, fs in chains.items()) or "-")
        lines.append(f"| {attribute} | {rows[0].rel_type} | "
                     f"{'yes' if any(m.identifying for m in rows) else 'no'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
