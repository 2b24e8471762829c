"""`c360 explain`: why two records are (not) one person, and what holds a person together.

Reads the identity tables the last run wrote (`identity`, `identity_links`,
`identity_features`, `identity_shared_values`); a pair the run never scored is scored
now with the same model, so the Splink match weights are always shown.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import polars as pl

from c360_assets.lib import delta, layout
from c360_assets.silver import identity_build as ib
from c360_assets.silver.identity import ASSERTED_RULES

ASSERTED_WHY = {"salesforce_merge": "a Salesforce merge",
                "anonymous_id": "a Segment identify carrying both the anonymous id and "
                                "the user id"}

SHOWN = ("first_name", "last_name", "birth_date", "email", "phone", "street", "postal_code",
         "city", "country")


class ExplainError(ValueError):
    """The records or person asked about are not in the identity tables."""


def node_id(text: str) -> str:
    """`customer:<source>:<id>` from itself or `<source>:<id>`."""
    return text if text.startswith("customer:") else f"customer:{text}"


def _table(lake: Path, name: str) -> pl.LazyFrame:
    p = layout.silver_table(lake, name)
    if not delta.table_exists(p):
        raise ExplainError(f"{p} missing: run identity first (c360 materialize)")
    return pl.scan_delta(str(p))


def _record_line(row: dict) -> str:
    shown = ", ".join(f"{c}={row[c]}" for c in SHOWN if row.get(c) is not None)
    return shown or "(no attributes)"


def _weights(row: dict) -> str:
    if not row.get("weights"):
        return ""
    weights = json.loads(row["weights"])
    return ", ".join(f"{k} {v:+.1f}" for k, v in weights.items())


def _link_line(row: dict) -> str:
    if row["rule"] != "probabilistic":
        text = f"{row['status']}: shared {row['evidence']}"
        asserted = [r for r in ASSERTED_RULES if r in (row["evidence"] or "").split(",")]
        if asserted and row["status"] == "linked":
            text += (" (asserted by the source: "
                     + ", ".join(ASSERTED_WHY[r] for r in asserted) + "; no guard splits it)")
    else:
        text = (f"{row['status']}: Splink match weight {row['match_weight']:.1f} "
                f"(probability {row['match_probability']:.4f}); {_weights(row)}")
    if row.get("reason"):
        text += f" - {row['reason']}"
    return text


def explain_pair(lake: Path, a: str, b: str) -> str:
    a, b = node_id(a), node_id(b)
    if a == b:
        raise ExplainError("the same record twice")
    ident = _table(lake, ib.IDENTITY).filter(pl.col("node_id").is_in([a, b])).collect()
    feats = _table(lake, ib.FEATURES).filter(pl.col("node_id").is_in([a, b])).collect()
    for n in (a, b):
        if n not in ident["node_id"].to_list():
            raise ExplainError(f"{n}: no such customer record in {layout.silver_table(lake, ib.IDENTITY)}")
    person = dict(ident.select("node_id", "person_id").iter_rows())
    lines = []
    for n in (a, b):
        f = feats.filter(pl.col("node_id") == n).row(0, named=True)
        i = ident.filter(pl.col("node_id") == n).row(0, named=True)
        lines.append(f"{n}\n  {_record_line(f)}\n  person {i['person_id']} (held by "
                     f"{i['rule']}, confidence {i['confidence']:.3f}"
                     + (f", matched on {i['matched_on']}" if i["matched_on"] else "") + ")")
    same = person[a] == person[b]
    lines.append("")
    lines.append(f"SAME PERSON: {person[a]}" if same else
                 f"DIFFERENT PERSONS: {person[a]} / {person[b]}")

    ids = _identifiers(lake, [a, b])
    common = sorted(ids.get(a, set()) & ids.get(b, set()))
    lines.append("\nShared identifying values:" if common else
                 "\nShared identifying values: none")
    if common:
        kinds = [c.split("=", 1) for c in common]
        shared = (_table(lake, ib.SHARED)
                  .filter(pl.struct("kind", "value").is_in(
                      pl.DataFrame(kinds, schema=["kind", "value"], orient="row")
                      .to_struct().implode()))
                  .collect())
        for kind, value in kinds:
            row = shared.filter((pl.col("kind") == kind) & (pl.col("value") == value))
            guard = row["guard"][0] if row.height else None
            held = row["records"][0] if row.height else 2
            lines.append(f"  {kind} {value} (held by {held} records): "
                         + (f"does not link alone - {guard}" if guard else "links"))

    left, right = sorted((a, b))
    links = (_table(lake, ib.LINKS).filter((pl.col("node_l") == left)
                                           & (pl.col("node_r") == right))
             .collect())
    lines.append("\nDirect evidence between the two:")
    for row in links.iter_rows(named=True):
        lines.append(f"  {_link_line(row)}")
    if not links.filter(pl.col("rule") == "probabilistic").height:
        lines.append("  " + _score_now(lake, feats, left, right)
                     + " (not a candidate pair of the last run: scored now)")
    if same and not links.filter(pl.col("status").is_in(["linked", "accepted"])).height:
        lines.append("\nPath through the person's links:")
        lines += [f"  {x}" for x in _path(lake, person[a], a, b)]
    return "\n".join(lines)


def _identifiers(lake: Path, records: list[str]) -> dict[str, set[str]]:
    """Every valid identifying value (`kind=value`) each record ever held, from silver."""
    from c360_assets.lib.registry import load_registry
    from c360_assets.silver.build import NODES, RELATIONSHIPS
    from c360_assets.silver.identity import Inputs

    link_kinds = Inputs.of(load_registry()).link_kinds

    edges = (pl.scan_delta(str(layout.silver_table(lake, RELATIONSHIPS)))
             .filter(pl.col("source_node_id").is_in(records) & (pl.col("confidence") >= 1.0))
             .select("source_node_id", "target_node_id").collect())
    values = (pl.scan_delta(str(layout.silver_table(lake, NODES)))
              .filter(pl.col("node_id").is_in(edges["target_node_id"].implode())
                      & pl.col("node_type").is_in(list(link_kinds)))
              .select(pl.col("node_id").alias("target_node_id"), "node_type", "value").collect())
    out: dict[str, set[str]] = {r: set() for r in records}
    for node, attribute, value in (edges.join(values, on="target_node_id")
                                   .select("source_node_id", "node_type", "value").iter_rows()):
        out[node].add(f"{link_kinds[attribute]}={value}")
    return out


def _score_now(lake: Path, feats: pl.DataFrame, left: str, right: str) -> str:
    from c360_assets.silver.identity_model import load_model, score

    model = load_model(lake=lake)
    scored = score(feats, pl.DataFrame({"node_l": [left], "node_r": [right]}), model)
    row = scored.row(0, named=True)
    mw = {c[3:]: round(row[c], 1) for c in scored.columns if c.startswith("mw_")}
    return (f"Splink match weight {row['match_weight']:.1f} (probability "
            f"{row['match_probability']:.4f}, threshold {model.threshold:.1f}, model "
            f"v{model.version}); "
            + ", ".join(f"{k} {v:+.1f}" for k, v in mw.items()))


def _person_links(lake: Path, members: list[str]) -> pl.DataFrame:
    return (_table(lake, ib.LINKS)
            .filter(pl.col("node_l").is_in(members) | pl.col("node_r").is_in(members))
            .collect())


def _path(lake: Path, person: str, a: str, b: str) -> list[str]:
    members = (_table(lake, ib.IDENTITY).filter(pl.col("person_id") == person)
               .select("node_id").collect()["node_id"].to_list())
    links = _person_links(lake, members).filter(pl.col("status").is_in(["linked", "accepted"]))
    nbrs: dict[str, list[tuple[str, dict]]] = {}
    for row in links.iter_rows(named=True):
        nbrs.setdefault(row["node_l"], []).append((row["node_r"], row))
        nbrs.setdefault(row["node_r"], []).append((row["node_l"], row))
    prev: dict[str, tuple[str, dict] | None] = {a: None}
    queue = deque([a])
    while queue:
        x = queue.popleft()
        for y, row in nbrs.get(x, []):
            if y not in prev:
                prev[y] = (x, row)
                queue.append(y)
    if b not in prev:
        return ["(no path: the tables are from different runs?)"]
    out, x = [], b
    while prev[x] is not None:
        y, row = prev[x]  # type: ignore[misc]
        out.append(f"{y} -> {x}: {_link_line(row)}")
        x = y
    return list(reversed(out))


def explain_person(lake: Path, person: str) -> str:
    ident = _table(lake, ib.IDENTITY).filter(pl.col("person_id") == person).collect()
    if not ident.height:
        raise ExplainError(f"{person}: no such person in {layout.silver_table(lake, ib.IDENTITY)}")
    members = sorted(ident["node_id"].to_list())
    feats = _table(lake, ib.FEATURES).filter(pl.col("node_id").is_in(members)).collect()
    lines = [f"person {person}: {len(members)} record(s)", ""]
    for row in (ident.join(feats, on="node_id", how="left").sort("record_time", "node_id")
                .iter_rows(named=True)):
        since = f"{row['record_time']:%Y-%m-%d}" if row["record_time"] else "no record time"
        lines.append(f"  {row['node_id']} ({since}) held by {row['rule']}"
                     + (f" on {row['matched_on']}" if row["matched_on"] else "")
                     + f", confidence {row['confidence']:.3f}")
        lines.append(f"      {_record_line(row)}")
    links = _person_links(lake, members)
    inside = links.filter(pl.col("node_l").is_in(members) & pl.col("node_r").is_in(members)
                          & pl.col("status").is_in(["linked", "accepted"]))
    lines.append(f"\nLinks holding it together ({inside.height}):")
    for row in inside.sort("node_l", "node_r").iter_rows(named=True):
        lines.append(f"  {row['node_l']} - {row['node_r']}: {_link_line(row)}")
    kept_out = links.filter(pl.col("status").is_in(["held", "refused"]))
    if kept_out.height:
        lines.append(f"\nLinks kept out ({kept_out.height}):")
        for row in kept_out.sort("node_l", "node_r").head(20).iter_rows(named=True):
            lines.append(f"  {row['node_l']} - {row['node_r']}: {_link_line(row)}")
    return "\n".join(lines)
