"""`kill -9` of `c360 materialize` in every step, then a plain rerun: it completes, says
what it recovered, and the lake equals a clean build (issue 13).

Each case runs the real command as a child process and kills it exactly at a step
boundary (`C360_TEST_KILL_AT`, `lib/failpoints.py`): in bronze after the first table's
commit, in silver after a table's commit, in identity after its rows, inside dbt's build
(dbt dies with it), and in the middle of the gold publish. Cases start from an empty lake
(full builds) or from a lake holding the first two days (the incremental third day).
The reference is the same build uninterrupted: all three days from empty, or the third
day's run on the two-day lake (whose identity merge/split log must match too).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from c360_assets.generator import generate
from c360_assets.lib import delta
from c360_assets.lib.failpoints import ENV as KILL_AT
from tests.helpers import assert_same_lake

pytestmark = pytest.mark.slow

START = dt.date(2026, 1, 1)
REPO = Path(__file__).resolve().parents[2]


def c360(landing: Path, lake: Path, *args: str, kill_at: str | None = None
         ) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(lake.parent / "dagster_home")}
    env.pop(KILL_AT, None)
    if kill_at:
        env[KILL_AT] = kill_at
    return subprocess.run([sys.executable, "-m", "c360_assets.cli", "materialize", "--landing",
                           str(landing), "--lake", str(lake), "--log-level", "WARNING", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def ok(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def events(lake: Path) -> pl.DataFrame:
    frame = delta.read_table(lake / "silver" / "identity_events")
    return frame.drop("resolved_at").sort(frame.drop("resolved_at").columns)


def killed_then_rerun(landing: Path, lake: Path, point: str) -> str:
    killed = c360(landing, lake, kill_at=point)
    assert killed.returncode == -9, (killed.stdout + killed.stderr)[-3000:]
    out = ok(c360(landing, lake))  # a plain rerun, nothing by hand
    assert "recovered run" in out and "ended without finishing it" in out, out[-3000:]
    assert "ended without releasing it" in out  # the lake lock the dead process held
    return out


@pytest.fixture(scope="session")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crash-landing") / "landing"
    generate(60, 3, 21, out, start=START, progress=lambda _: None)
    return out


@pytest.fixture(scope="session")
def clean(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All three days from an empty lake, uninterrupted."""
    lake = tmp_path_factory.mktemp("crash-clean") / "lake"
    ok(c360(landing, lake))
    return lake


@pytest.fixture(scope="session")
def two_days(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A lake holding the first two days, and that lake after an uninterrupted run over the
    third (the clean build the incremental cases must equal)."""
    root = tmp_path_factory.mktemp("crash-incremental")
    base = root / "base" / "lake"
    ok(c360(landing, base, "--partitions", f"{START}...{START + dt.timedelta(days=1)}"))
    third = root / "third" / "lake"
    shutil.copytree(base.parent, third.parent)
    ok(c360(landing, third))
    return base, third


@pytest.mark.xdist_group("crash-full")
@pytest.mark.parametrize("point", ["bronze.table_written", "silver.table_written"])
def test_killed_in_a_full_build_then_a_plain_rerun_equals_a_clean_build(landing, clean,
                                                                        tmp_path, point):
    lake = tmp_path / "lake"
    killed_then_rerun(landing, lake, point)
    assert_same_lake(lake, clean)


@pytest.mark.xdist_group("crash-full")
def test_killed_mid_publish_the_journal_keeps_readers_on_the_last_complete_gold(
        landing, clean, tmp_path):
    from c360_assets.gold.publish import PUBLISH_THREADS, interrupted, published_versions

    lake = tmp_path / "lake"
    killed = c360(landing, lake, kill_at="gold.published:3")
    assert killed.returncode == -9
    assert interrupted(lake) and published_versions(lake) == {}  # nothing complete yet
    # Killed at the third commit; the tables publish two at a time, so the other thread
    # may have committed one more.
    tables = [p for p in (lake / "gold").iterdir() if (p / "_delta_log").is_dir()]
    assert 3 <= len(tables) <= 2 + PUBLISH_THREADS
    out = ok(c360(landing, lake))
    assert "recovered run" in out
    assert not interrupted(lake)
    versions = published_versions(lake)
    assert len(versions) == 9
    assert all(v == delta.table_version(lake / "gold" / n) for n, v in versions.items())
    assert_same_lake(lake, clean)
    # Nothing is left for another run to do, and nothing is wedged.
    again = ok(c360(landing, lake))
    assert "recovered run" not in again and "nothing built or published" in again
    assert "unchanged since bronze ingested them" in again


INCREMENTAL = ["bronze.table_written", "silver.table_written:2", "identity.rows_written",
               "gold.dbt_event:8", "gold.published:2"]


@pytest.mark.xdist_group("crash-incremental")
@pytest.mark.parametrize("point", INCREMENTAL)
def test_killed_in_an_incremental_run_then_a_plain_rerun_equals_a_clean_run(two_days,
                                                                            landing, tmp_path,
                                                                            point):
    base, clean_third = two_days
    lake = tmp_path / "lake"
    shutil.copytree(base.parent, tmp_path, dirs_exist_ok=True)
    killed_then_rerun(landing, lake, point)
    assert_same_lake(lake, clean_third)
    # The merge/split log too: no event lost, none logged twice.
    assert events(lake).equals(events(clean_third))
