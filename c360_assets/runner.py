"""Run the Dagster asset graph in-process over landed partitions (`c360 materialize`).

Bronze runs once, as one run over the range of landing days with work (the same
single-run backfill the UI launches), so a month of landing is one Delta commit
per table. Silver (unpartitioned, incremental) runs after bronze, in one run; gold (dbt,
scoped to the persons silver changed) after silver. A plain run launches no run for a
stage with nothing new, and with nothing new anywhere it loads no definitions at all.
The summary reads back what was written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from c360_assets.bronze import catalogue, record_tables, watch
from c360_assets.bronze.assets import FORCE_TAG, bronze_key, stale_days
from c360_assets.bronze.contract import SourceSpec
from c360_assets.bronze.landing import LandingProblem, landed_days
from c360_assets.gold import publish
from c360_assets.gold.dbt_child import warm_dbt
from c360_assets.gold.inputs import FULL_TAG, gold_inputs
from c360_assets.gold.settings import dbt_vars_json
from c360_assets.lib import delta, layout
from c360_assets.lib.config import C360Config, load_config
from c360_assets.lib.lock import lake_lock
from c360_assets.lib.registry import load_registry
from c360_assets.ops.checks import DUPLICATE_EDGES_CHECK
from c360_assets.ops.recovery import PoolWatch, process_tags, recover_dead_runs
from c360_assets.resources import C360Paths
from c360_assets.silver import build as silver_build
from c360_assets.silver import identity_build
from c360_assets.silver.assets import (
    FIELD_CHANGES_KEY,
    IDENTITY_EVENTS_KEY,
    IDENTITY_KEY,
    NODES_KEY,
    RELATIONSHIPS_KEY,
)

INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    # Delta writers of one table are serialised through pools named delta_*.
    default_limit: 1
run_monitoring:
  # Under `dagster dev`: fail runs stuck starting, and free the pool slots of runs that
  # ended (c360's dead_run_sensor marks CLI runs whose process died as failed).
  enabled: true
  start_timeout_seconds: 300
  free_slots_after_run_end_seconds: 60
"""
# Dagster's default event log files (history/runs/), written through a storage that keeps
# its database connections (ops/dagster_storage.py: seconds a run).
EVENT_LOG_YAML = """\
event_log_storage:
  module: c360_assets.ops.dagster_storage
  class: KeptEnginesSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""


SILVER_KEYS = {FIELD_CHANGES_KEY, NODES_KEY, RELATIONSHIPS_KEY}
IDENTITY_KEYS = {IDENTITY_KEY, IDENTITY_EVENTS_KEY}


class SelectionError(ValueError):
    """`--select` names nothing, or something unknown."""


@dataclass
class TableSummary:
    key: str
    rows_written: int = 0
    rows_quarantined: int = 0
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


def resolve_selection(defs: dg.Definitions, select: str | None,
                      sources: tuple[SourceSpec, ...]) -> set[dg.AssetKey]:
    """Asset keys for `--select`.

    Comma-separated terms; each is a source shorthand (`sap`, `bronze/sap`), an asset
    key (`bronze/sap_kna1`) or Dagster selection syntax (`group:bronze`, `tag:source=sap`,
    `key:"bronze/sap_*"`). None selects everything.
    """
    graph = defs.resolve_asset_graph()
    everything = set(graph.get_all_asset_keys())
    if not select:
        return everything
    keys: set[dg.AssetKey] = set()
    by_name = {s.name: s for s in sources}
    for term in (t.strip() for t in select.split(",") if t.strip()):
        source = term.removeprefix("bronze/")
        if source in by_name:
            keys |= {bronze_key(t) for t in by_name[source].tables}
            continue
        key = dg.AssetKey.from_user_string(term)
        if key in everything:
            keys.add(key)
            continue
        try:
            found = set(dg.AssetSelection.from_string(term).resolve(graph))
        except Exception:  # noqa: BLE001 - unparseable or unknown: the user's term
            found = set()
        if not found:
            raise SelectionError(
                f"--select {term!r} matches no asset (use a source: "
                f"{', '.join(by_name)}; an asset key such as bronze/sap_kna1; or "
                f"Dagster selection syntax such as group:bronze, tag:source=sap)")
        keys |= found
    return keys


def dagster_home(lake: Path) -> Path:
    """Where runs are recorded: $DAGSTER_HOME, else <lake>/../dagster_home."""
    return Path(os.environ.get("DAGSTER_HOME") or lake.parent / "dagster_home").absolute()


def instance_for(lake: Path) -> dg.DagsterInstance:
    """The Dagster instance at `dagster_home(lake)`, created on first use."""
    home = dagster_home(lake)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    # A home c360 made before the event log storage was named gets it too; a file
    # written by anyone else is left as it is.
    if not config.exists() or config.read_text() == INSTANCE_YAML:
        config.write_text(INSTANCE_YAML + EVENT_LOG_YAML.format(
            base_dir=json.dumps(str(home / "history" / "runs"))))
    return dg.DagsterInstance.from_config(str(home))


def _days_to_run(source: SourceSpec, paths: C360Paths, config: C360Config,
                 window: tuple[dt.date, dt.date] | None, summary: RunSummary
                 ) -> tuple[dt.date, dt.date] | None:
    start = config.source(source.name).start_date
    newest_allowed = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    days, layout = landed_days(paths.landing, source)
    summary.problems += [str(p) for p in layout]
    early = [d for d in days if d < start]
    late = [d for d in days if d > newest_allowed]
    if early:
        summary.problems.append(str(LandingProblem(
            str(paths.landing / source.name),
            f"{len(early)} landing day(s) before the source's start date {start} "
            f"(first {early[0]}): not ingested; fix the folder or sources.{source.name}.start_date")))
    if late:
        summary.problems.append(str(LandingProblem(
            str(paths.landing / source.name),
            f"{len(late)} landing day(s) in the future (first {late[0]}): not ingested")))
    if window is not None:
        first, last = window
        if first < start:
            summary.problems.append(f"{source.name}: --partitions starts before the source's start "
                                    f"date {start}; running from {start}")
            first = start
        return (first, last) if first <= last else None
    valid = [d for d in days if start <= d <= newest_allowed]
    return (valid[0], valid[-1]) if valid else None


def materialize(landing: Path, lake: Path, select: str | None = None,
                partitions: tuple[dt.date, dt.date] | None = None,
                config: C360Config | None = None, instance: dg.DagsterInstance | None = None,
                log_level: str = "INFO", echo: Callable[[str], None] = print,
                force: bool = False, wait_for_lock_s: float = 0.0) -> RunSummary:
    """Materialise the selected assets over every landed partition (or `partitions`).

    Holds the lake's lock throughout (raises `LakeLocked` when another writer has it for
    longer than `wait_for_lock_s`), first recovering runs a dead process left behind.
    Landing days whose files are unchanged since bronze ingested them are not re-read, and
    gold re-resolves only the persons silver changed (`force`: re-ingest every day of the
    range and rebuild gold whole).
    """
    command = "c360 materialize" + (f" --select {select}" if select else "")
    with lake_lock(lake, command, wait_s=wait_for_lock_s, echo=echo):
        instance = instance or instance_for(lake)
        recover_dead_runs(instance, lake, echo=echo)
        return _materialize(landing, lake, select, partitions, config or load_config(),
                            instance, log_level, echo, force)


def _silver_current(paths: C360Paths, config: C360Config) -> bool:
    """Whether silver's graph and identity are up to date with bronze, model and config
    (a run now would be a no-op)."""
    from c360_assets.silver.identity import Inputs
    from c360_assets.silver.identity_model import load_model

    sources = catalogue(config)
    registry = load_registry(sources=tuple(s.name for s in sources))
    return (silver_build.up_to_date(paths.lake, record_tables(sources))
            and identity_build.up_to_date(paths.lake, config.identity,
                                          load_model(lake=paths.lake), Inputs.of(registry)))


def _gold_current(paths: C360Paths, config: C360Config) -> bool:
    """Whether every gold table was last published, completely, from the silver, config
    and dbt project there are now (a build now would publish nothing new)."""
    sources = catalogue(config)
    registry = load_registry(sources=tuple(s.name for s in sources))
    tables = sorted(publish.published_versions(paths.lake))
    return bool(tables) and publish.up_to_date(
        paths.lake, tables, gold_inputs(paths.lake, dbt_vars_json(config, registry, sources)))


def _bronze_days(source: SourceSpec, paths: C360Paths, config: C360Config,
                 partitions: tuple[dt.date, dt.date] | None, summary: RunSummary, *,
                 whole_window: bool) -> tuple[list[dt.date], str]:
    """The landing days of `source` bronze should ingest ([] when none) and, when none,
    what to say. Without `whole_window`, only the days whose files are new or changed
    (the ingest ledger, as the landing sensor reads it; within `partitions` the whole
    range once any day of it is); with it (`--full`, or only some of the source's
    tables selected), every day of the window."""
    window = _days_to_run(source, paths, config, partitions, summary)
    if window is None:
        return [], f"{source.name}: nothing landed under {paths.landing / source.name}"
    first, last = window
    days = _days(first, last)
    if whole_window:
        return days, ""
    stale = stale_days(paths, source, config, watch.day_fingerprints(
        paths.landing, source, days), source.tables)
    if not stale:
        return [], (f"{source.name}: landing days {first}...{last} unchanged since bronze "
                    f"ingested them: nothing to do (--full re-ingests them)")
    return (stale if partitions is None else days), ""


def _nothing_new(paths: C360Paths, config: C360Config, summary: RunSummary,
                 echo: Callable[[str], None]) -> bool:
    """Plain `c360 materialize` with nothing new anywhere: every source's landing days
    as bronze ingested them, silver, identity and gold up to date. Says so per stage and
    returns True (no run is launched, the Dagster definitions are never loaded); False
    at the first stage with work (nothing said)."""
    said = []
    for source in catalogue(config):
        days, why_none = _bronze_days(source, paths, config, None, summary, whole_window=False)
        if days:
            return False
        said.append(why_none)
    if not _silver_current(paths, config):
        return False
    said.append("silver: graph and identity up to date with bronze: nothing to do")
    if not _gold_current(paths, config):
        return False
    said.append("gold: silver, config and the dbt project unchanged since the last "
                "publish: nothing built or published")
    for line in said:
        echo(line)
    return True


def _materialize(landing: Path, lake: Path, select: str | None,
                 partitions: tuple[dt.date, dt.date] | None, config: C360Config,
                 instance: dg.DagsterInstance, log_level: str, echo: Callable[[str], None],
                 force: bool) -> RunSummary:
    paths = C360Paths.at(landing, lake, config)
    if select is None and partitions is None and not force:
        quick = RunSummary()
        if _nothing_new(paths, config, quick, echo):
            quick.ok = not quick.problems
            return quick
    with contextlib.ExitStack() as stack:
        # A plain run that has work ends with gold: dbt imports itself meanwhile.
        stack.enter_context(warm_dbt(enabled=select is None))
        return _run_stages(paths, select, partitions, config, instance, log_level, echo,
                           force, stack)


def _run_stages(paths: C360Paths, select: str | None,
                partitions: tuple[dt.date, dt.date] | None, config: C360Config,
                instance: dg.DagsterInstance, log_level: str, echo: Callable[[str], None],
                force: bool, stack: contextlib.ExitStack) -> RunSummary:
    lake = paths.lake
    # Loaded only when there is work: the gold assets bring dbt and dagster-dbt (seconds).
    # A plain run runs bronze and silver from definitions without gold, and imports them on
    # a thread while silver runs (mostly outside Python: the bronze run, mostly inside,
    # would slow by as much); `--select` resolves against the whole graph.
    from c360_assets.assemble import build_definitions, upstream_definitions

    if select is None:
        defs = upstream_definitions(config, paths)
    else:
        defs = build_definitions(config, paths)
    keys = resolve_selection(defs, select, catalogue(config))
    if select is not None and any(k.path[0] == "gold" for k in keys):
        stack.enter_context(warm_dbt())
    summary = RunSummary()
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    tags = {"c360/launched_by": "cli", **process_tags(lake)}

    def run(selection: dg.AssetSelection, stage: str, extra: dict[str, str] | None = None
            ) -> dg.ExecuteInProcessResult:
        t0 = time.perf_counter()
        with PoolWatch(instance, lake, echo):
            result = dg.materialize(
                [*(defs.assets or []), *(defs.asset_checks or [])], instance=instance,
                resources=dict(defs.resources or {}), selection=selection,
                tags={**tags, "c360/stage": stage, **(extra or {})},
                run_config=run_config, raise_on_error=False)
        summary.seconds[result.run_id] = time.perf_counter() - t0
        return result

    # Bronze: one run per stretch of days with work, for every source with work in it
    # (all bronze assets share one partitions definition; each source's asset skips the
    # days of the stretch it has not landed anew, and the days before its start date).
    work: dict[str, tuple[set[dg.AssetKey], list[dt.date]]] = {}
    for source in catalogue(config):
        source_keys = {bronze_key(t) for t in source.tables} & keys
        if not source_keys:
            continue
        days, why_none = _bronze_days(
            source, paths, config, partitions, summary,
            whole_window=force or source_keys != {bronze_key(t) for t in source.tables})
        if not days:
            echo(why_none)
            continue
        echo(f"{source.name}: materialising {len(source_keys)} table(s) for "
             f"{len(days)} landing day(s) {days[0]}...{days[-1]}")
        work[source.name] = (source_keys, days)
    # An explicit --partitions range is one run, as asked; else stretches of work a
    # little apart share a run and distant ones do not (`stretches`).
    spans = ([partitions] if partitions is not None
             else stretches({d for _, days in work.values() for d in days}))
    for first, last in spans if work else []:
        names = [n for n, (_, days) in work.items() if any(first <= d <= last for d in days)]
        label = f"bronze/{','.join(names)}"
        result = run(dg.AssetSelection.assets(*set().union(*(work[n][0] for n in names))),
                     label,
                     {"dagster/asset_partition_range_start": first.isoformat(),
                      "dagster/asset_partition_range_end": last.isoformat(),
                      **({FORCE_TAG: "true"} if force else {})})
        summary.runs.append((f"{label} {first}...{last}", result.run_id, result.success))
        summary.ok &= result.success
        _collect(result, summary)
    # Each silver multi-asset builds its tables together (with their checks); identity
    # follows the graph.
    silver = ((SILVER_KEYS if keys & SILVER_KEYS else set())
              | (IDENTITY_KEYS if keys & IDENTITY_KEYS else set()))
    plain = select is None and not force  # stages with nothing new launch no run
    if silver and plain and _silver_current(paths, config):
        echo("silver: graph and identity up to date with bronze: nothing to do")
        silver = set()
    if silver:
        if select is None:
            _import_in_background("c360_assets.gold.assets")
        echo("silver: materialising " + " and ".join(
            what for what, ks in (("field changes and the graph", SILVER_KEYS),
                                  ("identity", IDENTITY_KEYS)) if silver & ks))
        result = run(dg.AssetSelection.assets(*silver), "silver")
        summary.runs.append(("silver", result.run_id, result.success))
        summary.ok &= result.success
        _collect(result, summary)
    # Gold (dbt) after silver, in one run: dbt builds the selected models in order.
    if select is None:
        defs = build_definitions(config, paths)  # waits for the import begun above
        keys = resolve_selection(defs, None, catalogue(config))
    gold = {k for k in keys if k.path[0] == "gold"}
    if gold and summary.ok and plain and _gold_current(paths, config):
        echo("gold: silver, config and the dbt project unchanged since the last publish: "
             "nothing built or published")
    elif gold and summary.ok:
        echo(f"gold: dbt build of {len(gold)} model(s), then publishing to {layout.layer(paths.lake, layout.GOLD)}")
        # Gold is never built from a graph that breaks the SCD-2 invariant: a gold run
        # checks it first (blocking), unless this run's silver just built and checked it.
        guard = (dg.AssetSelection.checks(dg.AssetCheckKey(RELATIONSHIPS_KEY,
                                                           DUPLICATE_EDGES_CHECK))
                 if RELATIONSHIPS_KEY not in silver else dg.AssetSelection.checks())
        result = run(dg.AssetSelection.assets(*gold) | guard, "gold",
                     {FULL_TAG: "true"} if force else None)
        summary.runs.append(("gold", result.run_id, result.success))
        summary.ok &= result.success
        _collect(result, summary)
        if result.success and not result.get_asset_materialization_events():
            echo("gold: silver, config and the dbt project unchanged since the last publish: "
                 "nothing built or published")
    elif gold:
        echo("gold: skipped (an earlier run failed)")
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        name = key.to_user_string()
        path = layout.asset_table(paths.lake, key.path)  # gold/<relation>: published Delta
        if name not in summary.tables and delta.table_exists(path):  # selected, nothing new
            summary.tables[name] = TableSummary(name)
        table = summary.tables.get(name)
        if table is not None and not table.table_rows and delta.table_exists(path):
            table.table_rows = delta.row_count(path)
    summary.ok &= not summary.problems
    return summary


# A ranged run records one materialisation per asset and landing day of its range, day
# with work or not (tens of milliseconds each, about 0.15 s a day for ten tables), and a
# run costs about a second to start: two stretches of work up to this many days apart
# share a run, farther ones get their own (ten files over two years: ten short runs, not
# one over 730 days).
BRIDGE_DAYS = 6


def stretches(days: set[dt.date], bridge: int = BRIDGE_DAYS) -> list[tuple[dt.date, dt.date]]:
    """`days` as (first, last) ranges: consecutive days join, and so do two runs of days
    with at most `bridge` days between them."""
    out: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if out and (day - out[-1][1]).days - 1 <= bridge:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def _import_in_background(module: str) -> None:
    """Start importing `module` on a daemon thread. Whoever imports it next waits for that
    import to finish (Python's per-module import lock) instead of doing it again. A failure
    here is left to that later import, which raises it where it is needed."""
    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    threading.Thread(target=load, name=f"c360-import-{module}", daemon=True).start()


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _collect(result: dg.ExecuteInProcessResult, summary: RunSummary) -> None:
    # A run over a range of partitions reports the asset's one result once per partition.
    seen: set[str] = set()
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        assert mat is not None
        name = mat.asset_key.to_user_string()
        if name in seen:
            continue
        seen.add(name)
        table = summary.tables.setdefault(name, TableSummary(name))
        md = mat.metadata
        table.rows_written += int(md["rows_written"].value) if "rows_written" in md else 0
        # Gold: the rebuilt table's rows (also if not published). A partitioned asset's
        # row count is its partition's (bronze): the table's is read from Delta below.
        if "dagster/row_count" in md and mat.partition is None:
            table.table_rows = int(md["dagster/row_count"].value)
        table.rows_quarantined += int(md["rows_quarantined"].value) if "rows_quarantined" in md else 0
        if "problems" in md:
            summary.warnings += [line.removeprefix("* ") for line in str(md["problems"].value).splitlines()]
    for event in result.get_asset_check_evaluations():
        name = event.asset_key.to_user_string()
        table = summary.tables.setdefault(name, TableSummary(name))
        table.checks[event.check_name] = table.checks.get(event.check_name, True) and event.passed
        if event.severity == dg.AssetCheckSeverity.WARN:
            table.warn_only.add(event.check_name)
        if not event.passed and event.description:
            table.notes[event.check_name] = event.description
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data is not None:
                err = event.step_failure_data.error
                while err is not None and err.cause is not None:  # the root cause, not the wrapper
                    err = err.cause
                message = err.message.strip() if err is not None else "unknown error"
                summary.problems.append(f"step {event.step_key} failed: {message}")
