"""A backfill of one source's date range, out of order, gives the same lake as landing in
order: bronze, silver, identity and the gold profiles all catch up.

Lake A lands day by day in order (bronze and silver after each day, gold at the end).
Lake B first gets the later days of every source (gold built on them), then each source's
earlier days as one backfill run through the CLI (`--select bronze/<source> --partitions
START...END`), then silver and gold catch up.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from c360_assets.bronze import BUILTIN
from c360_assets.cli import main
from c360_assets.generator import generate
from c360_assets.lib import delta
from c360_assets.lib.config import load_config
from c360_assets.plan import materialize
from c360_assets.runner import instance_for
from tests.helpers import lake_tables as tables

START = dt.date(2026, 1, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(4)]


def run(landing: Path, lake: Path, select: str, days: tuple[dt.date, dt.date] | None = None):
    summary = materialize(landing, lake, select=select, partitions=days, config=load_config(),
                          instance=instance_for(lake), log_level="ERROR", echo=lambda _: None)
    assert summary.ok, summary.problems
    return summary


@pytest.fixture(scope="session")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("backfill") / "landing"
    generate(80, len(DAYS), 7, out, start=START, progress=lambda _: None)
    return out


def test_an_out_of_order_backfill_gives_the_same_lake_as_landing_in_order(landing, tmp_path, capsys):
    in_order = tmp_path / "a" / "lake"
    for day in DAYS:
        run(landing, in_order, "group:bronze,group:silver", (day, day))
    run(landing, in_order, "group:gold")

    backfilled = tmp_path / "b" / "lake"
    run(landing, backfilled, "group:bronze,group:silver,group:gold", (DAYS[2], DAYS[3]))
    profiles_before = delta.row_count(backfilled / "gold" / "customer_profile_v2")
    for source in BUILTIN:
        capsys.readouterr()
        code = main(["materialize", "--select", f"bronze/{source.name}", "--partitions",
                     f"{DAYS[0]}...{DAYS[1]}", "--landing", str(landing), "--lake", str(backfilled),
                     "--log-level", "ERROR"])
        out = capsys.readouterr().out
        assert code == 0, out
        # One run for the source's whole range.
        assert out.count(f"bronze/{source.name} {DAYS[0]}...{DAYS[1]}: SUCCESS") == 1
    run(landing, backfilled, "group:silver,group:gold")

    a, b = tables(in_order), tables(backfilled)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].equals(b[name]), f"{name} differs after the backfill"
    assert delta.row_count(backfilled / "gold" / "customer_profile_v2") > profiles_before
