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
