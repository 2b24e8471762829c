"""Bronze: every landed snapshot and event, typed, as Delta tables per source table.

The sources c360 reads are its catalogue: the five that ship (`BUILTIN`) and any source
module named in `c360.yaml` (`sources: {<name>: {module: <python module>}}`). A source
module declares `SOURCE`, a `contract.SourceSpec`; docs/adding-a-source.md shows how.
"""

from __future__ import annotations

import functools
import importlib

from c360_assets.bronze import salesforce, sap, segment, shopify, zendesk
from c360_assets.bronze.contract import SourceSpec, TableSpec
from c360_assets.lib.config import C360Config, ConfigError

BUILTIN: tuple[SourceSpec, ...] = (
    salesforce.SOURCE,
    sap.SOURCE,
    shopify.SOURCE,
    segment.SOURCE,
    zendesk.SOURCE,
)
BUILTIN_BY_NAME = {s.name: s for s in BUILTIN}


@functools.cache
def _module_source(name: str, module: str) -> SourceSpec:
    where = f"c360.yaml: sources.{name}.module"
    try:
        spec = importlib.import_module(module).SOURCE
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module!r} ({exc})") from exc
    except AttributeError:
        raise ConfigError(f"{where}: {module!r} declares no SOURCE (a SourceSpec)") from None
    if not isinstance(spec, SourceSpec) or spec.name != name:
        raise ConfigError(f"{where}: {module}.SOURCE must be the SourceSpec named {name!r}")
    problems = check_spec(spec)
    if problems:
        raise ConfigError(f"{where}: {module}.SOURCE: {'; '.join(problems)}")
    return spec


def check_spec(source: SourceSpec) -> list[str]:
    """What is wrong with a source's declaration (nothing: an empty list)."""
    problems = []
    by_name = {t.name: t for t in source.tables}
    if len(by_name) != len(source.tables):
        problems.append("two tables share a name")
    for t in source.tables:
        where = f"table {t.name}"
        if t.source != source.name:
            problems.append(f"{where} says source {t.source!r}")
        r = t.records
        if r is None:
            continue
        schema = t.schema()
        missing = [c for c in r.key_columns if c not in schema]
        if missing:
            problems.append(f"{where}: key_columns {missing} are not columns")
        if r.json_fields is not None and r.json_fields not in schema:
            problems.append(f"{where}: json_fields {r.json_fields!r} is not a column")
        if r.attachment is not None:
            main = by_name.get(r.attachment.main)
            if main is None or main.records is None or main.records.attachment is not None:
                problems.append(f"{where}: attaches to {r.attachment.main!r}, which is not a "
                                "main table of records in this source")
    return problems


def catalogue(config: C360Config) -> tuple[SourceSpec, ...]:
    """The sources this configuration reads: the built-in ones, then those `c360.yaml`
    names with a module, in file order."""
    extra = []
    for name, source in config.sources.items():
        if source.module is None:
            if name not in BUILTIN_BY_NAME:
                raise ConfigError(f"c360.yaml: sources.{name}: unknown source (known: "
                                  f"{', '.join(BUILTIN_BY_NAME)}; a new source names its "
                                  "`module`)")
        elif name in BUILTIN_BY_NAME:
            raise ConfigError(f"c360.yaml: sources.{name}.module: {name} ships with c360")
        else:
            extra.append(_module_source(name, source.module))
    keys: dict[str, str] = {}
    for spec in (*BUILTIN, *extra):
        if spec.profile_key is not None:
            other = keys.setdefault(spec.profile_key, spec.name)
            if other != spec.name:
                raise ConfigError(f"c360.yaml: sources.{spec.name}.module: profile_key "
                                  f"{spec.profile_key!r} is already {other}'s")
    return (*BUILTIN, *extra)


def source_names(config: C360Config) -> tuple[str, ...]:
    return tuple(s.name for s in catalogue(config))


def check_sources(config: C360Config) -> None:
    """Every source `c360.yaml` names is in the catalogue (raises ConfigError)."""
    known = source_names(config)
    named = [(f"freshness.sources.{n}", n) for n in config.freshness.sources]
    named += [(f"gold.survivorship.{a}.sources", n)
              for a, rule in config.gold.survivorship.items() for n in rule.sources or ()]
    for where, name in named:
        if name not in known:
            raise ConfigError(f"c360.yaml: {where}: unknown source {name!r} (known: "
                              f"{', '.join(known)})")


def record_tables(sources: tuple[SourceSpec, ...]) -> tuple[TableSpec, ...]:
    """The tables silver reads as source records, main tables before secondary ones."""
    tables = [t for s in sources for t in s.tables if t.records is not None]
    return tuple(sorted(tables, key=lambda t: t.main_ref is not None))
