"""The settings gold's dbt models read, built from config/ (pure, Dagster-free).

dbt gets them as one var, `c360`: source priorities (`source_priority.csv`),
survivorship rules per attribute and the profile recency window (`c360.yaml` gold:),
the freshness window per source (`c360.yaml` freshness:) and each source's key in
`customer_profile.extensions` (its `SourceSpec.profile_key`). Business decisions stay
in config; the SQL only reads this var (`dbt_project/macros/c360_config.sql`).
"""

from __future__ import annotations

import json
from typing import Any

from c360_assets.bronze.contract import SourceSpec
from c360_assets.lib.config import C360Config, ConfigError
from c360_assets.lib.registry import Registry
from c360_assets.silver.graph import IMPLAUSIBLE_CONFIDENCE
from c360_assets.silver.identity import Inputs
from c360_assets.silver.sources import ENTITY_TARGETS


def dbt_vars(config: C360Config, registry: Registry, sources: tuple[SourceSpec, ...]
             ) -> dict[str, Any]:
    """The `c360` dbt var. Raises ConfigError for a survivorship rule on an attribute the
    registry does not know."""
    # Attributes pointing at entity nodes (company, owner, mergedInto) are not values.
    known = {m.canonical_name for m in registry.mappings} - set(ENTITY_TARGETS)
    unknown = sorted(set(config.gold.survivorship) - known)
    if unknown:
        raise ConfigError(
            f"c360.yaml: gold.survivorship.{unknown[0]}: not a canonical attribute of the "
            f"registry (known: {', '.join(sorted(known))})")
    purposes = []
    for purpose, spec in sorted(config.privacy.consent.items()):
        if spec.attribute not in known or registry.kind(spec.attribute) != "consent":
            consent = sorted(a for a in known if registry.kind(a) == "consent")
            raise ConfigError(
                f"c360.yaml: privacy.consent.{purpose}.attribute: {spec.attribute!r} is not "
                f"a consent attribute of the registry (known: {', '.join(consent) or 'none'})")
        purposes.append([purpose, spec.attribute, spec.expires_after_months])
    return {"c360": {
        # [purpose, attribute, months a grant lasts (0: no expiry)] (c360.yaml privacy:).
        "consent_purposes": purposes,
        "source_priority": dict(sorted(registry.priorities.items(), key=lambda kv: kv[1])),
        "survivorship": {name: {"rule": rule.rule, "sources": rule.sources}
                         for name, rule in sorted(config.gold.survivorship.items())},
        "placeholders": placeholders(config, Inputs.of(registry).link_kinds),
        # customer_profile's [attribute, column, kind], in order (canonical_attributes.csv).
        "profile_attributes": [[a, column, registry.kind(a)]
                               for a, column in registry.gold_columns()],
        "demote_implausible": config.gold.demote_implausible,
        # The confidence silver gives an edge to an implausible value (stg_attribute_candidates).
        "implausible_confidence": IMPLAUSIBLE_CONFIDENCE,
        "profile_recency_hours": config.gold.profile_recency_hours,
        "stale_after_hours": {s.name: config.freshness.stale_after(s.name) for s in sources},
        # customer_profile.extensions: source -> [key, record id prefix that is no id].
        "extension_keys": {s.name: [s.profile_key, s.profile_key_skips] for s in sources
                           if s.profile_key},
    }}


def dbt_vars_json(config: C360Config, registry: Registry, sources: tuple[SourceSpec, ...]
                  ) -> str:
    return json.dumps(dbt_vars(config, registry, sources), separators=(",", ":"))


def placeholders(config: C360Config, link_kinds: dict[str, str]) -> dict[str, list[str]]:
    """Attribute -> the identity blocklist patterns of its kind (gold.demote_placeholders);
    `link_kinds`: identifying attribute -> its link kind (`Inputs.link_kinds`)."""
    if not config.gold.demote_placeholders:
        return {}
    found = {attribute: config.identity.blocklist.get(kind, [])
             for attribute, kind in sorted(link_kinds.items())}
    for attribute, patterns in found.items():
        for pattern in patterns:
            if "'" in pattern:
                raise ConfigError(f"c360.yaml: identity.blocklist: pattern {pattern!r} for "
                                  f"{attribute}: a quote cannot be passed to SQL")
    return {attribute: patterns for attribute, patterns in found.items() if patterns}
