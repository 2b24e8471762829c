"""Run the Dagster asset graph in-process over landed partitions (`c360 materialize`,
entered through `plan.materialize`, which decides first whether there is anything to do).

Bronze runs once, as one run over the range of landing days with work (the same
single-run backfill the UI launches), so a month of landing is one Delta commit
per table. Silver (unpartitioned, incremental) runs after bronze, in one run; gold (dbt,
scoped to the persons silver changed) after silver. A plain run launches no run for a
stage with nothing new (and with nothing new anywhere, `plan` never gets here).
The summary reads back what was written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from c360_assets.bronze import catalogue
from c360_assets.bronze.assets import FORCE_TAG, bronze_key
from c360_assets.bronze.contract import SourceSpec
from c360_assets.gold.dbt_child import warm_dbt
from c360_assets.gold.inputs import FULL_TAG
from c360_assets.lib import delta, layout
from c360_assets.lib.config import C360Config
from c360_assets.ops.checks import DUPLICATE_EDGES_CHECK
from c360_assets.ops.recovery import PoolWatch, process_tags, recover_dead_runs
from c360_assets.plan import (
    RunSummary,
    SelectionError,
    TableSummary,
    bronze_days,
    gold_current,
    nothing_new,
    silver_current,
)
from c360_assets.privacy import inbox, ledger
from c360_assets.privacy.assets import RECEIPTS_KEY, REQUESTS_KEY
from c360_assets.resources import C360Paths
from c360_assets.serving import store as serving_store
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


def run_stages(landing: Path, lake: Path, select: str | None,
               partitions: tuple[dt.date, dt.date] | None, config: C360Config,
               instance: dg.DagsterInstance | None, log_level: str,
               echo: Callable[[str], None], force: bool, *, check_first: bool = False
               ) -> RunSummary:
    """The Dagster side of `plan.materialize`, under the lake's lock it holds: recover the
    runs a dead process left behind, then (`check_first`: after a writer that died, once
    they are recovered, a plain run asks again whether anything is new) run the stages."""
    instance = instance or instance_for(lake)
    recover_dead_runs(instance, lake, echo=echo)
    if check_first:
        quick = RunSummary()
        if nothing_new(landing, lake, config, quick.problems, echo):
            quick.ok = not quick.problems
            return quick
    paths = C360Paths.at(landing, lake, config)
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
    # A plain run runs bronze and silver from definitions without gold, and builds gold's
    # (dagster-dbt and dbt: seconds to import) when it gets there; `--select` resolves
    # against the whole graph. (Importing them on a thread while silver ran saved those
    # seconds outside the runs and cost as many inside silver on 2 cores: not done.)
    from c360_assets.assemble import build_definitions, upstream_definitions

    if select is None:
        defs = upstream_definitions(config, paths)
    else:
        defs = build_definitions(config, paths)
    keys = resolve_selection(defs, select, catalogue(config))
    if select is not None and any(k.path[0] == "gold" for k in keys):
        stack.enter_context(warm_dbt())
    summary = RunSummary()
    started = ledger.now()
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

    # Privacy first: erasure requests waiting in the inbox delete the customers from bronze
    # (and keep them out of this run's ingest); the stages below carry the deletes down,
    # and the receipts step after gold purges and proves.
    erasing = False
    if select is None:
        requests, _, unreadable = inbox.pending(paths.landing)
        summary.problems += unreadable
        erasing = bool(requests)
    if erasing:
        echo("privacy: erasure requests in the inbox: deleting from bronze and quarantine")
        result = run(dg.AssetSelection.assets(REQUESTS_KEY), "privacy")
        summary.runs.append(("privacy/erasure_requests", result.run_id, result.success))
        summary.ok &= result.success
        _collect(result, summary)
        if not result.success:
            return summary
    # Bronze: one run per stretch of days with work, for every source with work in it
    # (all bronze assets share one partitions definition; each source's asset skips the
    # days of the stretch it has not landed anew, and the days before its start date).
    work: dict[str, tuple[set[dg.AssetKey], list[dt.date]]] = {}
    for source in catalogue(config):
        source_keys = {bronze_key(t) for t in source.tables} & keys
        if not source_keys:
            continue
        days, why_none = bronze_days(
            source, paths.landing, paths.lake, config, partitions, summary.problems,
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
    if silver and plain and silver_current(paths.lake, config):
        echo("silver: graph and identity up to date with bronze: nothing to do")
        silver = set()
    if silver:
        echo("silver: materialising " + " and ".join(
            what for what, ks in (("field changes and the graph", SILVER_KEYS),
                                  ("identity", IDENTITY_KEYS)) if silver & ks))
        result = run(dg.AssetSelection.assets(*silver), "silver")
        summary.runs.append(("silver", result.run_id, result.success))
        summary.ok &= result.success
        _collect(result, summary)
    # Gold (dbt) after silver, in one run: dbt builds the selected models in order.
    if select is None:
        defs = build_definitions(config, paths)
        keys = resolve_selection(defs, None, catalogue(config))
    gold = {k for k in keys if k.path[0] == "gold"}
    if gold and summary.ok and plain and gold_current(paths.lake, config):
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
    # The serving store after gold: rebuilt whenever gold published a new version.
    serving = {k for k in keys if k.path[0] == "serving"}
    if serving and summary.ok and plain and serving_store.current(paths.lake):
        echo("serving: the store is up to date with gold: nothing to do")
    elif serving and summary.ok:
        echo(f"serving: building the store ({serving_store.store_path(paths.lake)})")
        result = run(dg.AssetSelection.assets(*serving), "serving")
        summary.runs.append(("serving", result.run_id, result.success))
        summary.ok &= result.success
        _collect(result, summary)
    elif serving:
        echo("serving: skipped (an earlier run failed)")
    if erasing and summary.ok:
        echo("privacy: purging history and proving the erasure (every byte of the lake "
             "and of Dagster's storage scanned)")
        result = run(dg.AssetSelection.assets(RECEIPTS_KEY), "privacy")
        summary.runs.append(("privacy/erasure_receipts", result.run_id, result.success))
        summary.ok &= result.success
        _collect(result, summary)
        summary.receipts = ledger.latest_receipts(paths.lake, since=started)
    elif erasing:
        echo("privacy: erasure not proven (an earlier run failed); the requests stay in the "
             "inbox for the next run")
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
        table.rows_suppressed += int(md["rows_suppressed"].value) if "rows_suppressed" in md else 0
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
