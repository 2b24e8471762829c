"""Running a sync: recover, plan, send, acknowledge.

1. Recover what a dead run left: its journal is folded into the state; creates it sent
   without hearing back are looked up in the destination (by match key) and, where
   found, acknowledged - never sent blind a second time.
2. Plan (`plan.build_plan`) from the model at a pinned gold version and the acknowledged
   state; safety limits can refuse the run here, before anything is sent.
3. Send, in the order deletes, flags, updates, repoints, creates, in batches of the
   destination's size, through its token bucket:
   * 429 + Retry-After: the bucket holds everyone for that long and the batch is resent
     (a rate limit is never a row failure; `limits.max_wait_s` bounds the total wait);
   * 5xx, timeouts: retried with backoff (`limits.retries`); a create whose outcome is
     unknown is looked up before it is resent; then the batch is halved, down to
     single rows, which are rejected with the error; a destination failing every
     attempt (3 batches' worth in a row) stops the run (`SyncAborted`);
   * a batch refused as a whole (HTTP 400, a failing statement) is halved at once;
   * per-row rejections are logged and held back until the row's content changes;
     rows that failed on transient errors are retried by the next run (the state still
     holds what was acknowledged before, so the row still differs).
   After every batch its outcome is journaled (fsync'd) before the next one is sent.
4. Fold the journal into the state, the changelog and the echoes; log the run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from c360_assets.activation import model as model_rows
from c360_assets.activation import state as st
from c360_assets.activation.destinations import (
    NOT_FOUND,
    OK,
    BatchRejected,
    Destination,
    DestinationError,
    Outcome,
    RateLimited,
    Transient,
    open_destination,
)
from c360_assets.activation.plan import OPS_ORDER, Plan, build_plan
from c360_assets.activation.spec import SyncSpec
from c360_assets.lib import failpoints
from c360_assets.lib.config import C360Config
from c360_assets.lib.lock import lake_lock
from c360_assets.silver.identity_build import merged_survivors

BACKOFF_S = (0.5, 2.0, 5.0, 10.0, 20.0)
# Transient failures in a row (in units of a batch's attempts) after which the run stops.
MAX_FAILURES_IN_A_ROW = 3


class SyncRefused(RuntimeError):
    """A safety limit refused the run; nothing was sent."""


class SyncAborted(RuntimeError):
    """The run stopped part-way (rate-limit budget spent, destination unusable); what was
    acknowledged is kept, the rest is sent by the next run."""


@dataclass
class SyncReport:
    sync: str
    run_id: str
    dry_run: bool
    status: str = "ok"
    message: str = ""
    gold_version: int = -1
    model_rows: int = 0
    planned: dict[str, int] = field(default_factory=dict)
    rejected_model: dict[str, int] = field(default_factory=dict)
    skipped_filter: int = 0
    skipped_guard: int = 0
    skipped_consent: int = 0
    acknowledged: int = 0
    rejected: int = 0
    not_found: int = 0
    recovered: int = 0
    requests: int = 0
    rate_limited_s: float = 0.0
    seconds: float = 0.0
    changed_fields: dict[str, int] = field(default_factory=dict)
    plan: Plan | None = None

    def counts(self) -> dict[str, object]:
        """What the run did, as `activation/runs` and the asset's metadata name it."""
        p = self.planned
        return {"status": self.status, "gold_version": self.gold_version,
                "model_rows": self.model_rows, "planned_creates": p.get("create", 0),
                "planned_updates": p.get("update", 0) + p.get("repoint", 0),
                "planned_deletes": p.get("delete", 0), "planned_flags": p.get("flag", 0),
                "acknowledged": self.acknowledged, "rejected": self.rejected,
                "rejected_model": sum(self.rejected_model.values()),
                "skipped_consent": self.skipped_consent, "skipped_guard": self.skipped_guard,
                "skipped_filter": self.skipped_filter, "not_found": self.not_found,
                "recovered": self.recovered, "rate_limited_s": self.rate_limited_s,
                "requests": self.requests, "message": self.message}

    @property
    def operations(self) -> int:
        return sum(self.planned.get(op, 0) for op in OPS_ORDER)

    @property
    def reject_rate(self) -> float:
        return self.rejected / max(1, self.acknowledged + self.rejected)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Sender:
    def __init__(self, spec: SyncSpec, dest: Destination, journal: st.Journal,
                 fields: list[str], report: SyncReport,
                 sleep: Callable[[float], None] = time.sleep):
        self.spec, self.dest, self.journal = spec, dest, journal
        self.fields, self.report, self.sleep = fields, report, sleep
        self.failing = 0  # transient failures in a row, across batches

    def _failed(self, exc: Exception) -> None:
        """A destination that fails every attempt (down, unreachable) stops the run
        instead of being halved row by row; what it acknowledged is kept."""
        self.failing += 1
        if self.failing > MAX_FAILURES_IN_A_ROW * (self.spec.limits.retries + 1):
            raise SyncAborted(f"{self.failing} attempts in a row failed (last: {exc}): the "
                              "destination looks down; stopping, the next run sends the rest")

    def _values(self, rows: pl.DataFrame) -> pl.DataFrame:
        return rows.with_columns(
            model_rows._as_string(pl.col(f), rows.schema[f]).alias(st.value_column(f))
            for f in self.fields)

    def _wait(self, seconds: float) -> None:
        self.report.rate_limited_s += seconds
        if self.report.rate_limited_s > self.spec.limits.max_wait_s:
            raise SyncAborted(f"waited {self.report.rate_limited_s:.0f}s on rate limits "
                              f"(limits.max_wait_s {self.spec.limits.max_wait_s:g}): stopping; "
                              "the next run sends the rest")
        if self.dest.bucket is not None:
            self.dest.bucket.hold(seconds)
        else:
            self.sleep(seconds)

    def _take(self) -> None:
        if self.dest.bucket is not None:
            self.dest.bucket.take()
        self.report.requests += 1

    def _record(self, rows: pl.DataFrame, outcomes: list[Outcome]) -> None:
        status = pl.Series([o.status for o in outcomes], dtype=pl.String)
        ids = pl.Series([o.dest_id for o in outcomes], dtype=pl.String)
        errors = pl.Series([o.error for o in outcomes], dtype=pl.String)
        rows = rows.with_columns(status.alias("_status"), pl.coalesce(ids, pl.col("_dest_id"))
                                 .alias("_dest_id"), errors.alias("_error"))
        ok = rows.filter(pl.col("_status") == OK)
        if ok.height:  # the journal keeps values as text (`v:`), not the typed fields
            self.journal.write("ack", self._values(ok).drop("_status", "_error", *self.fields))
            self.report.acknowledged += ok.height
        missing = rows.filter(pl.col("_status") == NOT_FOUND)
        if missing.height:
            self.journal.write("ack", missing.with_columns(pl.lit("not_found").alias("_op"))
                               .drop("_status", "_error", *self.fields))
            self.report.not_found += missing.height
        bad = rows.filter(~pl.col("_status").is_in([OK, NOT_FOUND]))
        if bad.height:
            self._reject(bad.drop("_status"), None, permanent=True)

    def _reject(self, rows: pl.DataFrame, error: str | None, *, permanent: bool) -> None:
        """`permanent`: the destination refused these rows as they are (held back until
        they change); else it could not be reached (retried by the next run)."""
        if error is not None:
            rows = rows.with_columns(pl.lit(error).alias("_error"))
        self.journal.write("reject", rows.with_columns(pl.lit(permanent).alias("_permanent"))
                           .drop([f for f in self.fields if f in rows.columns]))
        self.report.rejected += rows.height

    def _verify(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Creates whose outcome is unknown: acknowledge those the destination has, return
        the rest (safe to send)."""
        ids = _look_up(self.dest, rows)
        hit = ids.is_not_null()
        done = rows.filter(hit)
        self._record(done, [Outcome(OK, i) for i in ids.filter(hit).to_list()])
        return rows.filter(~hit)

    def _halve(self, op: str, rows: pl.DataFrame) -> None:
        half = rows.height // 2
        self.send(op, rows.head(half))
        self.send(op, rows.tail(rows.height - half))

    def send(self, op: str, rows: pl.DataFrame) -> None:
        attempts, verify = 0, False
        update_only = op == "create" and self.spec.mode == "update"
        while rows.height:
            try:
                self._take()
                if verify:
                    rows = self._verify(rows)
                    verify = False
                    if not rows.height:
                        return
                    self._take()
                if op == "create" and self.dest.supports_lookup:
                    self.journal.write("intent", rows.select(
                        "_op", "_person", "_key_field", "_key"))
                failpoints.reached("activation.batch_sent")
                outcomes = self.dest.write(op, rows, self.fields, update_only=update_only)
                failpoints.reached("activation.batch_answered")
            except RateLimited as exc:
                self._wait(exc.retry_after)
                continue
            except Transient as exc:
                attempts += 1
                self._failed(exc)
                # A create (never an update-only attempt: resending that is harmless)
                # whose answer was lost may have been committed: look before resending.
                verify = verify or (exc.uncertain and op == "create" and not update_only
                                    and self.dest.supports_lookup)
                if attempts > self.spec.limits.retries:
                    if rows.height > 1 and not verify:
                        return self._halve(op, rows)
                    if not verify or attempts > 2 * self.spec.limits.retries + 2:
                        self._reject(rows, f"gave up after {attempts} attempts: {exc}",
                                     permanent=False)
                        return
                self.sleep(BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1])
                continue
            except BatchRejected as exc:
                if rows.height > 1:
                    return self._halve(op, rows)
                return self._reject(rows, str(exc), permanent=True)
            self.failing = 0
            self._record(rows, outcomes)
            return


def _look_up(dest: Destination, rows: pl.DataFrame) -> pl.Series:
    """The destination id of each row's record, looked up by its match key (null where
    the destination has none, or several)."""
    found: dict[tuple[str, str], str] = {}
    for (key_field,), part in rows.group_by("_key_field", maintain_order=True):
        found |= {(key_field, k): v
                  for k, v in dest.lookup(key_field, part["_key"].to_list()).items()}
    return pl.Series("_dest_id", [found.get(k) for k in zip(rows["_key_field"], rows["_key"],
                                                            strict=True)], dtype=pl.String)


def _recover(lake: Path, spec: SyncSpec, fields: list[str], dest_factory,  # noqa: ANN001
             attributes: dict[str, str], report: SyncReport, echo: Callable[[str], None]
             ) -> pl.DataFrame:
    """Fold a dead run's journal; resolve the creates it sent without hearing back. They
    stay in the journal (as this recovery's intents) until resolved: found in the
    destination (acknowledged) or not there (`not_found`: the plan creates them again).
    A recovery that dies too leaves them for the next one."""
    journal = st.Journal(lake, spec.name, st.new_run_id(_now()))
    state, uncertain = _fold(lake, spec, fields, attributes, residual=journal)
    if not uncertain.height:
        return state
    dest = dest_factory()
    try:
        if dest.supports_lookup:
            echo(f"{spec.name}: a previous run sent {uncertain.height} create(s) without "
                 "hearing back: looking them up before anything is resent")
            ids = _look_up(dest, uncertain)
        else:
            ids = pl.Series("_dest_id", [None] * uncertain.height, dtype=pl.String)
        resolved = uncertain.with_columns(
            ids.alias("_dest_id"), pl.lit(None, pl.String).alias("_prev_person"),
            pl.lit(None, pl.String).alias("_merged_into"),
            *[pl.lit(False).alias(f"s:{f}") for f in fields])
        hits = resolved.filter(pl.col("_dest_id").is_not_null())
        if hits.height:  # committed before the answer was lost: acknowledged, not resent
            journal.write("ack", hits.with_columns(pl.lit("create").alias("_op")))
        missing = resolved.filter(pl.col("_dest_id").is_null())
        if missing.height:  # never arrived (or nothing to look in): the plan sends them
            journal.write("ack", missing.with_columns(pl.lit("not_found").alias("_op")))
        report.recovered = hits.height
        state, _ = _fold(lake, spec, fields, attributes)
    finally:
        dest.close()
    return state


def echo_attributes(spec: SyncSpec, config: C360Config) -> dict[str, str]:
    """Destination field -> the canonical attribute it carries (a customer_profile
    column, sent as it is): what silver checks a landed change against for echoes."""
    if spec.echo is None:
        return {}
    from c360_assets.bronze import catalogue
    from c360_assets.lib.registry import load_registry

    registry = load_registry(sources=tuple(s.name for s in catalogue(config)))
    by_column = {column: attribute for attribute, column in registry.gold_columns()}
    fields = {f: by_column[m.source] for f, m in spec.mappings().items()
              if m.source in by_column and not m.invert}
    keys = {f"key:{k.field}": by_column[k.source] for k in spec.match_on
            if k.source in by_column}
    return {**fields, **keys}


def _fold(lake: Path, spec: SyncSpec, fields: list[str], attributes: dict[str, str],  # noqa: ANN202
          state: pl.DataFrame | None = None, residual: st.Journal | None = None):
    return st.fold(lake, spec.name, fields, echo_source=spec.echo and spec.echo.source,
                   attributes=attributes,
                   echo_window_h=spec.echo.window_hours if spec.echo else 0.0, state=state,
                   residual=residual)


def run_sync(lake: Path, spec: SyncSpec, config: C360Config, *, dry_run: bool = False,
             echo: Callable[[str], None] = print, wait_s: float = 0.0,
             dest_factory: Callable[[], Destination] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> SyncReport:
    """Run one sync (`dry_run`: plan only, send and write nothing)."""
    lake = Path(lake)
    started = _now()
    report = SyncReport(sync=spec.name, run_id=st.new_run_id(started), dry_run=dry_run)
    fields = list(spec.mappings())
    factory = dest_factory or (lambda: open_destination(spec, lake))
    clock = time.monotonic()
    st.sync_dir(lake, spec.name).mkdir(parents=True, exist_ok=True)
    with lake_lock(st.sync_dir(lake, spec.name), f"c360 sync {spec.name}", wait_s=wait_s,
                   echo=echo):
        rows = model_rows.load_desired(lake, spec, config, now=started)
        attrs = echo_attributes(spec, config)
        if dry_run:
            state = st.read_state(lake, spec.name, fields)
        else:
            state = _recover(lake, spec, fields, factory, attrs, report, echo)
        plan = build_plan(spec, rows, state, merged_survivors(lake), st.read_rejected(lake, spec.name))
        report.plan = plan
        report.gold_version, report.model_rows = rows.gold_version, rows.model_rows
        report.planned = dict(plan.counts)
        report.rejected_model = {r: n for r, n in plan.rejected.group_by("reason")
                                 .len().iter_rows()} if plan.rejected.height else {}
        report.skipped_filter, report.skipped_guard = rows.skipped_filter, rows.skipped_guard
        report.skipped_consent = rows.skipped_consent
        report.changed_fields = {f: int(plan.ops.filter(pl.col("_op") != "create")[f"s:{f}"].sum())
                                 for f in fields} if plan.ops.height else {}
        if dry_run:
            report.status = "dry_run" if not plan.refused else "refused"
            report.message = plan.refused or ""
            report.seconds = time.monotonic() - clock
            return report
        if plan.refused:
            report.status, report.message = "refused", plan.refused
            _log_run(lake, spec, report, started)
            raise SyncRefused(f"sync {spec.name}: {plan.refused}")
        dest = factory()
        journal = st.Journal(lake, spec.name, report.run_id)
        try:
            if plan.ops.height:
                dest.prepare({f: plan.ops.schema[f] for f in fields})
                sender = _Sender(spec, dest, journal, fields, report, sleep)
                total, done, last = plan.ops.height, 0, time.monotonic()
                for op in OPS_ORDER:
                    part = plan.ops.filter(pl.col("_op") == op)
                    for (_,), group in part.group_by("_key_field", maintain_order=True):
                        for batch in group.iter_slices(dest.batch_rows):
                            sender.send(op, batch)
                            done += batch.height
                            if time.monotonic() - last > 10:
                                echo(f"{spec.name}: {done:,} of {total:,} operations sent "
                                     f"({report.acknowledged:,} acknowledged, "
                                     f"{report.rejected:,} rejected)")
                                last = time.monotonic()
                    del part
        except SyncAborted as exc:
            report.status, report.message = "aborted", str(exc)
        except DestinationError as exc:
            report.status, report.message = "failed", str(exc)
        finally:
            dest.close()
            # Only a sample of the plan is printed: let the rest go before the fold.
            rejected = plan.rejected
            report.plan = Plan(ops=plan.ops.head(10), rejected=rejected, counts=plan.counts)
            del plan, rows
            _fold(lake, spec, fields, attrs, state)
        if rejected.height:
            _log_model_rejects(lake, spec, report, rejected)
        report.seconds = time.monotonic() - clock
        _log_run(lake, spec, report, started)
        if report.status == "aborted":
            raise SyncAborted(f"sync {spec.name}: {report.message}")
        if report.status == "failed":
            raise DestinationError(f"sync {spec.name}: {report.message}")
        return report


def _log_model_rejects(lake: Path, spec: SyncSpec, report: SyncReport,
                       rejected: pl.DataFrame) -> None:
    st.append(lake, "changelog", rejected.select(
        pl.lit(report.run_id).alias("run_id"), pl.lit(spec.name).alias("sync"),
        pl.lit(_now()).cast(st.UTC).alias("at"), pl.col("_person").alias("person_id"),
        pl.col("_key_field").alias("key_field"), pl.col("_key").alias("key"),
        pl.lit(None, pl.String).alias("dest_id"), pl.lit("none").alias("op"),
        pl.lit(None, pl.String).alias("field"), pl.lit(None, pl.String).alias("before"),
        pl.lit(None, pl.String).alias("after"), pl.lit("rejected").alias("status"),
        pl.col("reason").alias("error")), st.CHANGELOG_SCHEMA)


def _log_run(lake: Path, spec: SyncSpec, report: SyncReport, started: dt.datetime) -> None:
    st.append(lake, "runs", pl.DataFrame([{
        "run_id": report.run_id, "sync": spec.name, "started_at": started,
        "finished_at": _now(), "dry_run": report.dry_run, "mode": spec.mode,
        **report.counts()}], schema=st.RUNS_SCHEMA), st.RUNS_SCHEMA)
