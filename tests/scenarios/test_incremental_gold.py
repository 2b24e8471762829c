"""Incremental gold gives the gold of one full build, whatever the landing order.

Lake A gets a world's (source, day) partitions in a shuffled order (later days before
earlier ones included), a few at a time, with a plain `c360 materialize` after each
batch: bronze ingests the new days, silver and identity update what changed, and gold
re-resolves only the persons whose records changed (a scoped dbt build). Lake B lands
everything and builds once, in full. Every bronze, silver and gold table must be equal,
person ids included; the later gold builds of A must really have been scoped; and
`--full` on A rebuilds gold whole without changing a table.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.bronze import BUILTIN
from c360_assets.generator import generate
from c360_assets.gold.publish import last_build
from c360_assets.lib.config import load_config
from c360_assets.plan import materialize
from c360_assets.runner import instance_for
from tests.helpers import lake_tables

START = dt.date(2026, 1, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(5)]
PARTITIONS = [(s.name, d) for s in BUILTIN for d in DAYS]


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("incremental_gold") / "staging"
    generate(150, len(DAYS), 23, out, start=START, progress=lambda _: None)
    return out


def link(staging: Path, landing: Path, source: str, day: dt.date) -> None:
    for folder in staging.glob(f"{source}/*/{day.isoformat()}"):
        target = landing / folder.relative_to(staging)
        target.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            os.link(f, target / f.name)


def build(landing: Path, lake: Path, force: bool = False) -> dg.DagsterInstance:
    instance = instance_for(lake)
    summary = materialize(landing, lake, config=load_config(), instance=instance,
                          log_level="ERROR", echo=lambda _: None, force=force)
    assert summary.ok, summary.problems
    return instance


def gold_build(instance: dg.DagsterInstance) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey(["gold", "customer_profile_v2"]))
    assert event is not None and event.asset_materialization is not None
    return str(event.asset_materialization.metadata["gold_build"].value)


def test_shuffled_landings_with_incremental_gold_give_the_full_builds_gold(staging, tmp_path):
    order = PARTITIONS[:]
    random.Random(16).shuffle(order)
    landing_a, lake_a = tmp_path / "a" / "landing", tmp_path / "a" / "lake"
    builds = []
    for start in range(0, len(order), 7):
        for source, day in order[start:start + 7]:
            link(staging, landing_a, source, day)
        instance = build(landing_a, lake_a)
        builds.append(gold_build(instance))
    assert builds[0].startswith("full build")
    scoped = [b for b in builds[1:] if b.startswith("scoped build")]
    assert len(scoped) == len(builds) - 1, builds
    assert last_build(lake_a) is not None

    landing_b, lake_b = tmp_path / "b" / "landing", tmp_path / "b" / "lake"
    for source, day in PARTITIONS:
        link(staging, landing_b, source, day)
    assert gold_build(build(landing_b, lake_b)).startswith("full build")

    a, b = lake_tables(lake_a), lake_tables(lake_b)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].equals(b[name]), f"{name} differs between incremental and full gold"

    # `--full` rebuilds gold whole, and changes nothing.
    assert gold_build(build(landing_a, lake_a, force=True)) == "full build (--full asked for it)"
    again = lake_tables(lake_a)
    for name in a:
        assert again[name].equals(a[name]), f"{name} changed on a full rebuild"
