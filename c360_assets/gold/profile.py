"""`c360 profile EMAIL|PERSON_ID`: the golden record, field by field, with the losers.

Per field: the winning value, source and field time, then every other current value of
the person's records - `lost` (a different value) or `same` (the winner's value held by
another record) - newest first.

Reads what consumers read: the published `<lake>/gold/customer_profile_v2` for each
field's winning value, source and field time; the person's other current values (the
candidates that lost) come from silver: the current edges of the person's records.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from c360_assets.gold.publish import read_version
from c360_assets.lib import delta, layout
from c360_assets.lib.registry import load_registry

PROFILE = "customer_profile_v2"


class ProfileError(ValueError):
    """Nothing to show: no gold yet, or no person with that e-mail or id."""


def _scan(path: Path, what: str, version: int | None = None) -> pl.LazyFrame:
    if not delta.table_exists(path):
        raise ProfileError(f"{path} missing: {what} (run `c360 materialize`)")
    return pl.scan_delta(str(path), version=version)


def find_profiles(lake: Path, key: str) -> pl.DataFrame:
    """Profiles for a person id (`p_…`) or an e-mail (the golden e-mail, else any current
    e-mail of one of the person's records)."""
    # The last complete publish, also while one is under way or was interrupted.
    profiles = _scan(layout.gold_table(lake, PROFILE), "gold is not built yet",
                     read_version(lake, PROFILE))
    key = key.strip()
    if key.startswith("p_"):
        found = profiles.filter(pl.col("customer_id") == key).collect()
        if found.is_empty():
            raise ProfileError(f"no profile {key} (a person whose records were all deleted "
                               f"has none; `c360 explain {key}` shows its records)")
        return found
    email = key.lower()
    found = profiles.filter(pl.col("email") == email).collect()
    if found.height:
        return found
    persons = _holders(lake, "email", email)
    found = profiles.filter(pl.col("customer_id").is_in(persons)).collect()
    if found.is_empty():
        raise ProfileError(f"no profile with e-mail {email}")
    return found


def example_email(lake: Path) -> str | None:
    """The golden e-mail of a person with the most live records and a disagreement
    resolved (for the demo's hint), or None before gold exists."""
    path = layout.gold_table(lake, PROFILE)
    if not delta.table_exists(path):
        return None
    top = (pl.scan_delta(str(path)).filter(pl.col("email").is_not_null()
                                           & (pl.col("phone_source") != pl.col("email_source")))
           .sort(["source_record_count", "customer_id"], descending=[True, False])
           .select("email").head(1).collect())
    return top.item() if top.height else None


def _holders(lake: Path, attribute: str, value: str) -> list[str]:
    """Persons with a record currently holding `attribute` = `value`."""
    nodes = _scan(layout.silver_table(lake, "nodes"), "silver is not built yet")
    targets = (nodes.filter((pl.col("node_type") == attribute) & (pl.col("value") == value))
               .select("node_id").collect().to_series().to_list())
    if not targets:
        return []
    records = (_scan(layout.silver_table(lake, "relationships"), "silver is not built yet")
               .filter(pl.col("is_current") & pl.col("target_node_id").is_in(targets))
               .select("source_node_id").collect().to_series().to_list())
    return (_scan(layout.silver_table(lake, "identity"), "identity is not built yet")
            .filter(pl.col("node_id").is_in(records)).select("person_id").unique()
            .collect().to_series().to_list())


def candidates(lake: Path, person_id: str) -> pl.DataFrame:
    """Every current attribute value of the person's records: attribute, value, source,
    record, field time, confidence; newest first."""
    records = (_scan(layout.silver_table(lake, "identity"), "identity is not built yet")
               .filter(pl.col("person_id") == person_id).select("node_id")
               .collect().to_series().to_list())
    edges = (_scan(layout.silver_table(lake, "relationships"), "silver is not built yet")
             .filter(pl.col("is_current") & pl.col("source_node_id").is_in(records)
                     & pl.col("rel_type").str.starts_with("HAS_"))
             .select("source_node_id", "target_node_id", "source_system", "updated_at",
                     "confidence").collect())
    values = (_scan(layout.silver_table(lake, "nodes"), "silver is not built yet")
              .filter(pl.col("node_id").is_in(edges.get_column("target_node_id").unique().to_list()))
              .select("node_id", pl.col("node_type").alias("attribute"), "value").collect())
    priority = load_registry().priorities
    return (edges.join(values, left_on="target_node_id", right_on="node_id")
            .with_columns(pl.col("source_system").replace_strict(priority, default=999)
                          .alias("_priority"))
            .sort(["attribute", "updated_at", "confidence", "_priority"],
                  descending=[False, True, True, False])
            .select("attribute", "value", "source_system",
                    pl.col("source_node_id").alias("record"),
                    pl.col("updated_at").alias("field_time"), "confidence"))


def _time(value: object) -> str:
    return "-" if value is None else str(value).replace("+00:00", "Z")


def render(lake: Path, profile: dict) -> str:
    person = profile["customer_id"]
    lines = [f"person {person}: {profile['source_record_count']} live source record(s)"]
    extensions = profile.get("extensions") or []
    pairs = extensions.items() if isinstance(extensions, dict) else (
        (e["key"], e["value"]) for e in extensions)
    lines += [f"  {key}: {value}" for key, value in sorted(pairs)]
    lines.append(f"resolved at {_time(profile['profile_resolved_at'])}")
    lines.append("")
    others = candidates(lake, person)
    attributes = load_registry().gold_columns()
    width = max(len(c) for _, c in attributes)
    for attribute, column in attributes:
        value, source = profile.get(column), profile.get(f"{column}_source")
        if value is None:
            lines.append(f"{column:<{width}}  -")
            continue
        lines.append(f"{column:<{width}}  {value}   [{source}, field time "
                     f"{_time(profile.get(f'{column}_updated_at'))}]")
        losers = others.filter((pl.col("attribute") == attribute)
                               & ~((pl.col("value") == str(value))
                                   & (pl.col("source_system") == source)))
        for row in losers.iter_rows(named=True):
            verdict = "same" if row["value"] == str(value) else "lost"
            lines.append(f"{'':<{width}}    {verdict}: {row['value']}   [{row['source_system']} "
                         f"{row['record'].split(':', 2)[-1]}, field time "
                         f"{_time(row['field_time'])}, confidence {row['confidence']:.1f}]")
    return "\n".join(lines)


def show(lake: Path, key: str) -> str:
    found = find_profiles(lake, key)
    return "\n\n".join(render(lake, row) for row in found.iter_rows(named=True))
