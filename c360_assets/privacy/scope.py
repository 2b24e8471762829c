"""What an erasure request reaches: records, persons, and what the proof looks for.

A request names an e-mail, a phone, a person or a source record. Its scope is:

* the records carrying the named identifier, at any time (current or closed edges):
  under-merged records of the same customer are reached through the identifier itself;
* the person(s) those records belong to, and every record of them (silver `identity`;
  a merged, old person id reaches its survivor through `identity_events`).

From the scope's records the proof's targets are derived, before anything is deleted:
their e-mails and phones (normalised, and as landed), their record node ids and source
record ids, the value node ids of values no record outside the scope holds, and each
(last name, birth date) pair. A value another person also holds (a shared street, a
family's landline) stays: it is not looked for, and its node stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from c360_assets.lib import delta, layout, normalise
from c360_assets.lib.hashing import sha256
from c360_assets.lib.registry import Registry
from c360_assets.privacy.proof import Target

KINDS = ("email", "phone", "person", "record")
# Source record ids shorter than this are not looked for as bare text (a 5-digit id
# occurs everywhere); their record node ids (`customer:<source>:<id>`) always are.
MIN_BARE_ID = 8
# Raw (as landed) forms of e-mails and phones shorter than this are not looked for.
MIN_RAW = 6


class ScopeError(ValueError):
    """A request that cannot be read (an empty or malformed identifier)."""


@dataclass
class Scope:
    records: set[str] = field(default_factory=set)  # record node ids
    persons: set[str] = field(default_factory=set)
    targets: list[Target] = field(default_factory=list)
    # Identifiers (kind, normalised value) for the suppression list, and source record
    # ids (`<entity>:<source>:<id>`).
    identifiers: set[tuple[str, str]] = field(default_factory=set)
    value_nodes: set[str] = field(default_factory=set)  # nodes only the scope holds
    person_of: dict[str, str] = field(default_factory=dict)  # record -> its person

    def union(self, other: Scope) -> Scope:
        return Scope(records=self.records | other.records, persons=self.persons | other.persons,
                     targets=ordered(self.targets + other.targets),
                     identifiers=self.identifiers | other.identifiers,
                     value_nodes=self.value_nodes | other.value_nodes,
                     person_of={**other.person_of, **self.person_of})


def ordered(targets: list[Target]) -> list[Target]:
    """Targets without repeats, in a stable order."""
    return sorted(set(targets), key=lambda t: (t.kind, t.text, t.other or ""))


def normalised(kind: str, value: str) -> str:
    """The identifier as silver stores it (e-mail lower-cased, phone E.164)."""
    value = (value or "").strip()
    if not value:
        raise ScopeError(f"an empty {kind}")
    if kind == "email":
        out = pl.DataFrame({"v": [value]}).select(normalise.email(pl.col("v"))[0]).item()
    elif kind == "phone":
        out = normalise.phone_frame(pl.Series([value]), pl.Series([None], dtype=pl.String)
                                    ).get_column("value").item()
    else:
        out = value
    if not out:
        raise ScopeError(f"{kind} {value!r} cannot be read")
    return out


def _scan(lake: Path, name: str) -> pl.LazyFrame | None:
    path = layout.silver_table(lake, name)
    return pl.scan_delta(str(path)) if delta.table_exists(path) else None


def _attributes_of(registry: Registry, kind: str) -> list[str]:
    return [a for a, k in registry.kinds().items() if k == kind]


def records_holding(lake: Path, value_nodes: list[str]) -> set[str]:
    """Records with an edge (current or closed) to one of `value_nodes`: one pass over
    the graph for all of a batch's identifiers."""
    rels = _scan(lake, "relationships")
    if rels is None or not value_nodes:
        return set()
    return set(rels.filter(pl.col("target_node_id").is_in(value_nodes))
               .select("record_node_id").unique().collect().get_column("record_node_id"))


def value_node_ids(registry: Registry, identifiers: set[tuple[str, str]]) -> list[str]:
    """The value node ids (silver's `sha256(attribute:value)`) each (kind, value) has as
    each attribute of its kind, hashed in one pass."""
    keys = [f"{a}:{value}" for kind, value in sorted(identifiers)
            for a in _attributes_of(registry, kind)]
    return sha256(pl.Series(keys, dtype=pl.String)).to_list() if keys else []


def survivor(lake: Path, person: str) -> str:
    """A person id, or the person it was merged into (identity_events, followed)."""
    events = _scan(lake, "identity_events")
    if events is None:
        return person
    moves = dict(events.filter(pl.col("event_type") == "MERGED_INTO")
                 .select("from_person_id", "to_person_id").collect().iter_rows())
    seen = {person}
    while person in moves and moves[person] not in seen:
        person = moves[person]
        seen.add(person)
    return person


def resolve(lake: Path, registry: Registry, requests: list[tuple[str, str]]) -> Scope:
    """The scope of `requests` ((kind, value) pairs, values as given)."""
    scope = Scope()
    identity = _scan(lake, "identity")
    direct: set[str] = set()
    persons: set[str] = set()
    named: set[tuple[str, str]] = set()
    for kind, value in requests:
        if kind not in KINDS:
            raise ScopeError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
        v = normalised(kind, value)
        if kind in ("email", "phone"):
            named.add((kind, v))
            scope.targets.append(Target(kind, v))  # whatever silver holds
        elif kind == "record":
            node = v if v.count(":") >= 2 else f"customer:{v}"
            direct.add(node)
        else:
            persons.add(survivor(lake, v))
    scope.identifiers |= named
    # Their value nodes: the records holding them, and looked for whether silver holds
    # them or not.
    nodes = value_node_ids(registry, named)
    scope.targets += [Target("node", n) for n in nodes]
    direct |= records_holding(lake, nodes)
    if identity is not None:
        persons |= set(identity.filter(pl.col("node_id").is_in(list(direct)))
                       .select("person_id").unique().collect().get_column("person_id"))
        membership = (identity.filter(pl.col("person_id").is_in(list(persons)))
                      .select("node_id", "person_id").collect())
        members = set(membership.get_column("node_id"))
        scope.person_of = dict(membership.iter_rows())
    else:
        members = set()
    scope.records = direct | members
    scope.persons = persons
    _derive_targets(lake, registry, scope)
    return scope


def _folded(expr: pl.Expr) -> pl.Expr:
    """Lower case without accents (NFKD, combining marks removed)."""
    return expr.str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.to_lowercase()


def _fold(text: str) -> str:
    return pl.select(_folded(pl.lit(text))).item()


def _derive_targets(lake: Path, registry: Registry, scope: Scope) -> None:
    records = pl.Series(sorted(scope.records), dtype=pl.String)
    for node in records.to_list():
        scope.targets.append(Target("record", node))
        bare = node.split(":", 2)[-1]
        if len(bare) >= MIN_BARE_ID:
            scope.targets.append(Target("record", bare))
        scope.identifiers.add(("record", node))
    rels, nodes, changes = (_scan(lake, "relationships"), _scan(lake, "nodes"),
                            _scan(lake, "field_changes"))
    if rels is None or nodes is None or changes is None:
        return
    mine = (rels.filter(pl.col("record_node_id").is_in(records.implode()))
            .select("target_node_id").unique().collect().get_column("target_node_id"))
    held_elsewhere = set(
        rels.filter(pl.col("target_node_id").is_in(mine.implode())
                    & ~pl.col("record_node_id").is_in(records.implode())
                    & ~pl.col("source_node_id").is_in(records.implode()))
        .select("target_node_id").unique().collect().get_column("target_node_id"))
    values = (nodes.filter(pl.col("node_id").is_in(mine.implode()))
              .select("node_id", "node_type", "value").collect())
    own = values.filter(~pl.col("node_id").is_in(list(held_elsewhere)))
    scope.value_nodes = set(own.get_column("node_id"))
    kinds = registry.kinds()
    for node_id, node_type, value in own.iter_rows():
        scope.targets.append(Target("node", node_id))
        kind = kinds.get(node_type)
        if kind in ("email", "phone") and value:
            scope.targets.append(Target(kind, value))
            scope.identifiers.add((kind, value))
    # As landed: the raw forms of the scope's own e-mails and phones.
    raw = (changes.filter(pl.col("record_node_id").is_in(records.implode()))
           .select("attribute", "raw_value", "value").collect())
    own_values = set(own.get_column("value"))
    for attribute, raw_value, value in raw.iter_rows():
        kind = kinds.get(attribute)
        if kind in ("email", "phone") and value in own_values and raw_value:
            text = raw_value.strip()
            if len(text) >= MIN_RAW:
                scope.targets.append(Target(kind, text))
    # (last name, birth date) pairs of one person (a name from one of their records and
    # a birth date from another still name them), not across the batch's persons.
    person_of = scope.person_of or {r: r for r in scope.records}
    held: dict[str, tuple[set[str], set[str]]] = {}
    for record, attribute, value in (changes.filter(
            pl.col("record_node_id").is_in(records.implode()))
            .select("record_node_id", "attribute", "value").collect().iter_rows()):
        if not value:
            continue
        names, dates = held.setdefault(person_of.get(record, record), (set(), set()))
        if attribute == "lastName":
            names.add(value)
        elif kinds.get(attribute) == "date" and attribute.lower().startswith("birth"):
            dates.add(value)
    pairs = {(n.lower(), d) for names, dates in held.values() for n in names for d in dates}
    # A (last name, birth date) another record also holds, in any letter case and with
    # or without accents (the proof ignores case; identity's features fold accents:
    # Hernández is hernandez there), is another person's too.
    values_ = list({_fold(v) for pair in pairs for v in pair})
    wanted = ["lastName"] + [a for a, k in kinds.items()
                             if k == "date" and a.lower().startswith("birth")]
    others = (changes.filter(pl.col("attribute").is_in(wanted)
                             & ~pl.col("record_node_id").is_in(records.implode()))
              .select("record_node_id", "attribute", _folded(pl.col("value")).alias("value"))
              .filter(pl.col("value").is_in(values_)).unique().collect())
    names = others.filter(pl.col("attribute") == "lastName").select(
        "record_node_id", pl.col("value").alias("n"))
    dates = others.filter(pl.col("attribute") != "lastName").select(
        "record_node_id", pl.col("value").alias("b"))
    taken = set(names.join(dates, on="record_node_id").select("n", "b").iter_rows())
    scope.targets += [Target("name+birth_date", n, d) for n, d in sorted(pairs)
                      if (_fold(n), d) not in taken]
    scope.targets = ordered(scope.targets)
