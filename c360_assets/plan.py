"""`c360 materialize`: what there is to do, decided before Dagster is loaded.

A plain run (no `--select`, `--partitions` or `--full`) first takes the lake's lock and
asks, stage by stage, whether anything is new: landing days bronze has not ingested as
they are now (the ingest ledger), silver and identity behind bronze, gold behind silver,
config or the dbt project. With nothing new it says so per stage and returns: no Dagster
instance, no definitions, no run (Dagster and its storage take seconds to import). With
work, or after a writer that died holding the lock (whose Dagster runs must be marked
failed first), `runner.run_stages` takes over under the same lock.

Nothing here imports Dagster; `tests/integration/test_lean_lake.py` holds it to that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c360_assets.bronze import catalogue, record_tables, watch
from c360_assets.bronze.contract import SourceSpec
from c360_assets.bronze.landing import LandingProblem, landed_days
from c360_assets.gold import publish
from c360_assets.gold.inputs import gold_inputs
from c360_assets.gold.settings import dbt_vars_json
from c360_assets.lib.config import C360Config, load_config
from c360_assets.lib.lock import lake_lock
from c360_assets.lib.registry import load_registry
from c360_assets.privacy import inbox
from c360_assets.serving import store as serving_store
from c360_assets.silver import build as silver_build
from c360_assets.silver import identity_build


class SelectionError(ValueError):
    """`--select` names nothing, or something unknown."""


@dataclass
class TableSummary:
    key: str
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_suppressed: int = 0  # dropped at bronze: an erased customer's (privacy)
    table_rows: int = 0
    checks: dict[str, bool] = field(default_factory=dict)
    warn_only: set[str] = field(default_factory=set)  # checks whose failure is a warning
    notes: dict[str, str] = field(default_factory=dict)  # a failed check's description

    def check_status(self, name: str) -> str:
        if self.checks[name]:
            return "PASS"
        return "WARN" if name in self.warn_only else "FAIL"


@dataclass
class RunSummary:
    ok: bool = True
    runs: list[tuple[str, str, bool]] = field(default_factory=list)  # (what, run id, success)
    seconds: dict[str, float] = field(default_factory=dict)  # run id -> wall time
    tables: dict[str, TableSummary] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # layout errors (fail the command)
    warnings: list[str] = field(default_factory=list)  # file/row problems (quarantined)
    receipts: list[dict] = field(default_factory=list)  # erasures proven by this run


def parse_partitions(text: str) -> tuple[dt.date, dt.date]:
    """`2026-03-01...2026-03-31` (or a single day) -> (first, last)."""
    try:
        if "..." in text:
            a, b = text.split("...", 1)
            first, last = dt.date.fromisoformat(a.strip()), dt.date.fromisoformat(b.strip())
        else:
            first = last = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--partitions {text!r}: expected YYYY-MM-DD or START...END") from None
    if last < first:
        raise ValueError(f"--partitions {text!r}: end is before start")
    return first, last


def materialize(landing: Path, lake: Path, select: str | None = None,
                partitions: tuple[dt.date, dt.date] | None = None,
                config: C360Config | None = None, instance: Any = None,
                log_level: str = "INFO", echo: Callable[[str], None] = print,
                force: bool = False, wait_for_lock_s: float = 0.0) -> RunSummary:
    """Materialise the selected assets over every landed partition (or `partitions`).

    Holds the lake's lock throughout (raises `LakeLocked` when another writer has it for
    longer than `wait_for_lock_s`). Landing days whose files are unchanged since bronze
    ingested them are not re-read, and gold re-resolves only the persons silver changed
    (`force`: re-ingest every day of the range and rebuild gold whole). A plain run with
    nothing new returns without loading Dagster; `instance` (a `DagsterInstance`) records
    the runs, by default the one at `runner.dagster_home(lake)`.
    """
    command = "c360 materialize" + (f" --select {select}" if select else "")
    plain = select is None and partitions is None and not force
    with lake_lock(lake, command, wait_s=wait_for_lock_s, echo=echo) as took_over:
        config = config or load_config()
        landing, lake = Path(landing).absolute(), Path(lake).absolute()
        # After a writer that died holding the lock, its runs are recovered first (runner).
        if plain and not took_over:
            quick = RunSummary()
            if nothing_new(landing, lake, config, quick.problems, echo):
                quick.ok = not quick.problems
                return quick
        from c360_assets import runner  # Dagster: only now that there is work

        return runner.run_stages(landing, lake, select, partitions, config, instance,
                                 log_level, echo, force, check_first=plain and took_over)


def nothing_new(landing: Path, lake: Path, config: C360Config, problems: list[str],
                echo: Callable[[str], None]) -> bool:
    """Whether a plain run has nothing to do: every source's landing days as bronze
    ingested them, silver, identity and gold up to date. Says so per stage and returns
    True; False at the first stage with work (nothing said). Landing layout problems go
    to `problems`."""
    if inbox.has_pending(landing):  # erasure requests wait
        return False
    said = []
    for source in catalogue(config):
        days, why_none = bronze_days(source, landing, lake, config, None, problems,
                                     whole_window=False)
        if days:
            return False
        said.append(why_none)
    if not silver_current(lake, config):
        return False
    said.append("silver: graph and identity up to date with bronze: nothing to do")
    if not gold_current(lake, config):
        return False
    said.append("gold: silver, config and the dbt project unchanged since the last "
                "publish: nothing built or published")
    if not serving_store.current(lake):
        return False
    said.append("serving: the store is up to date with gold: nothing to do")
    for line in said:
        echo(line)
    return True


def silver_current(lake: Path, config: C360Config) -> bool:
    """Whether silver's graph and identity are up to date with bronze, model and config
    (a run now would be a no-op)."""
    from c360_assets.silver.identity import Inputs
    from c360_assets.silver.identity_model import load_model

    sources = catalogue(config)
    registry = load_registry(sources=tuple(s.name for s in sources))
    return (silver_build.up_to_date(lake, record_tables(sources))
            and identity_build.up_to_date(lake, config.identity, load_model(lake=lake),
                                          Inputs.of(registry)))


def gold_current(lake: Path, config: C360Config) -> bool:
    """Whether every gold table was last published, completely, from the silver, config
    and dbt project there are now (a build now would publish nothing new)."""
    sources = catalogue(config)
    registry = load_registry(sources=tuple(s.name for s in sources))
    tables = sorted(publish.published_versions(lake))
    return bool(tables) and publish.up_to_date(
        lake, tables, gold_inputs(lake, dbt_vars_json(config, registry, sources)))


def bronze_days(source: SourceSpec, landing: Path, lake: Path, config: C360Config,
                partitions: tuple[dt.date, dt.date] | None, problems: list[str], *,
                whole_window: bool) -> tuple[list[dt.date], str]:
    """The landing days of `source` bronze should ingest ([] when none) and, when none,
    what to say. Without `whole_window`, only the days whose files are new or changed
    (the ingest ledger, as the landing sensor reads it; within `partitions` the whole
    range once any day of it is); with it (`--full`, or only some of the source's
    tables selected), every day of the window."""
    window = _days_to_run(source, landing, config, partitions, problems)
    if window is None:
        return [], f"{source.name}: nothing landed under {landing / source.name}"
    first, last = window
    days = all_days(first, last)
    if whole_window:
        return days, ""
    stale = watch.stale_days(lake, source, config.bronze,
                             watch.day_fingerprints(landing, source, days), source.tables)
    if not stale:
        return [], (f"{source.name}: landing days {first}...{last} unchanged since bronze "
                    f"ingested them: nothing to do (--full re-ingests them)")
    return (stale if partitions is None else days), ""


def _days_to_run(source: SourceSpec, landing: Path, config: C360Config,
                 window: tuple[dt.date, dt.date] | None, problems: list[str]
                 ) -> tuple[dt.date, dt.date] | None:
    start = config.source(source.name).start_date
    newest_allowed = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    days, layout = landed_days(landing, source)
    problems += [str(p) for p in layout]
    early = [d for d in days if d < start]
    late = [d for d in days if d > newest_allowed]
    if early:
        problems.append(str(LandingProblem(
            str(landing / source.name),
            f"{len(early)} landing day(s) before the source's start date {start} "
            f"(first {early[0]}): not ingested; fix the folder or sources.{source.name}.start_date")))
    if late:
        problems.append(str(LandingProblem(
            str(landing / source.name),
            f"{len(late)} landing day(s) in the future (first {late[0]}): not ingested")))
    if window is not None:
        first, last = window
        if first < start:
            problems.append(f"{source.name}: --partitions starts before the source's start "
                            f"date {start}; running from {start}")
            first = start
        return (first, last) if first <= last else None
    valid = [d for d in days if start <= d <= newest_allowed]
    return (valid[0], valid[-1]) if valid else None


def all_days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
