"""Shared fixtures: small generated worlds and temporary lakes.

Expensive fixtures (a generated world, a built lake) are session-scoped, also where only
one module uses them: pytest tears a module-scoped fixture down whenever a worker's next
test comes from another module, and under `pytest -n 2` a worker may run other modules'
tests between two of one module (two `xdist_group`s of one module, ungrouped tests), so
a lake built "once per module" could be built two or three times per run. Tests that
share such a fixture share an `xdist_group` so they also share a worker.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.generator import generate

WORLD_START = dt.date(2026, 1, 1)
# A first name a page must show as text, never run (served_lake).
HOSTILE_NAME = '<img src=x onerror="document.title=\'pwned\'">Eve'


def _quiet(_: str) -> None:
    return None


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-person, 6-day world in the default format mix (read-only: copy to modify)."""
    out = tmp_path_factory.mktemp("world") / "landing"
    generate(300, 6, 11, out, start=WORLD_START, progress=_quiet)
    return out


@pytest.fixture(scope="session")
def worlds_by_format(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same world written three times: all CSV, all JSONL, all Parquet."""
    base = tmp_path_factory.mktemp("formats")
    out = {}
    for fmt in ("csv", "jsonl", "parquet"):
        out[fmt] = base / fmt
        generate(120, 4, 5, out[fmt], start=WORLD_START, fmt=fmt, progress=_quiet)
    return out


@pytest.fixture()
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as inst:
        yield inst


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item (fixtures use it to save evidence on failure)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def served_lake(small_world: Path, tmp_path_factory: pytest.TempPathFactory):
    """`small_world` through the pipeline twice, the serving store built each time. The
    second run lands one day of Salesforce changes: contact X merged into contact Y
    (two persons become one), the only record of another person deleted, and a third
    person's city changed and its first name made hostile (markup). Tests using it share the `small_world` xdist group; the
    erasure test runs last in its module (it changes the lake)."""
    import shutil
    from types import SimpleNamespace

    import polars as pl

    from c360_assets.plan import materialize
    from c360_assets.runner import instance_for
    from c360_assets.serving.store import read_meta, store_path
    from tests.serving_helpers import land_contacts, latest_contacts

    root = tmp_path_factory.mktemp("served")
    landing, lake = root / "landing", root / "lake"
    shutil.copytree(small_world, landing)
    quiet = {"instance": instance_for(lake), "log_level": "ERROR", "echo": _quiet}
    assert materialize(landing, lake, **quiet).ok
    first = read_meta(store_path(lake))
    gold_before = pl.read_delta(str(lake / "gold" / "customer_profile_v2"))
    lone = gold_before.filter(pl.col("source_record_count") == 1).with_columns(
        pl.col("extensions").map.get("sfdc_contact_id").alias("contact"))
    lone = lone.drop_nulls("contact").sort("customer_id")
    (x, px), (y, py), (z, pz), (w, pw) = lone.select("contact", "customer_id").head(4).rows()
    contacts = latest_contacts(lake)
    day = WORLD_START + dt.timedelta(days=6)
    when = dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC)
    changes = pl.concat([
        contacts.filter(pl.col("id") == x).with_columns(
            pl.lit(True).alias("is_deleted"), pl.lit(y).alias("master_record_id")),
        contacts.filter(pl.col("id") == z).with_columns(pl.lit(True).alias("is_deleted")),
        contacts.filter(pl.col("id") == w).with_columns(
            pl.lit("Testville").alias("mailing_city"), pl.lit(HOSTILE_NAME).alias("first_name")),
    ])
    land_contacts(landing, day, "part-changes.csv", changes, when)
    assert materialize(landing, lake, **quiet).ok
    return SimpleNamespace(landing=landing, lake=lake, first=first, gold_before=gold_before,
                           merged=(px, py), deleted=pz, changed=pw, contacts=(x, y, z, w))
