"""Alerts: failed and recovered asset checks and failed runs, to a log and a webhook.

The alert sensor reads each check's evaluations after the last one it saw, and run
failures after its position in that stream, and keeps the last known state of every check
in its cursor, so it alerts on
*state changes* only: a check that keeps failing is one alert, its recovery is one
more. A failed run is one alert. On its very first tick the sensor takes the history
as its baseline: checks failing at that moment are reported once, older transitions and
run failures are not (no storm when the sensor is turned on over a long history).

Sinks (`alerts:` in config):
* always: a JSONL log under the lake (`<lake>/_ops/alerts.jsonl`), one line per alert;
* when the environment variable named by `alerts.webhook_env` (default
  `C360_ALERT_WEBHOOK_URL`) holds a URL: a POST of Slack-compatible JSON (`{"text": ...}`)
  with a timeout and retries with backoff. A webhook that stays down is written to the
  log line (`webhook: failed ...`), never retried forever.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg

from c360_assets.lib import layout
from c360_assets.lib.config import AlertsConfig, C360Config
from c360_assets.ops import dagster_storage
from c360_assets.resources import C360Paths

ALERT_SENSOR = "alert_sensor"
BATCH = 1000
PASSED, FAILED = "passed", "failed"


@dataclass
class Alert:
    kind: str  # check_failed | check_recovered | run_failed
    subject: str  # "<asset key>:<check name>" or the job name
    severity: str  # ERROR | WARN
    message: str
    run_id: str | None = None
    at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    details: dict[str, object] = field(default_factory=dict)

    def slack_text(self) -> str:
        icon = {"check_failed": ":red_circle:", "check_recovered": ":large_green_circle:",
                "run_failed": ":x:"}.get(self.kind, ":bell:")
        lines = [f"{icon} *c360 {self.kind.replace('_', ' ')}* `{self.subject}` ({self.severity})",
                 self.message]
        if self.run_id:
            lines.append(f"run `{self.run_id}`")
        lines += [f"• {k}: {v}" for k, v in list(self.details.items())[:8]]
        return "\n".join(lines)


class AlertSink:
    """Writes alerts to the JSONL log and, if configured, a webhook."""

    def __init__(self, log_path: Path, webhook_url: str | None, timeout_s: float = 10.0,
                 retries: int = 3, backoff_s: float = 1.0) -> None:
        self.log_path = log_path
        self.webhook_url = webhook_url or None
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    @classmethod
    def from_config(cls, config: AlertsConfig, lake: Path) -> AlertSink:
        return cls(layout.under(lake, config.log_path), os.environ.get(config.webhook_env, "").strip() or None,
                   config.webhook_timeout_s, config.webhook_retries)

    def post(self, alert: Alert) -> str:
        """POST to the webhook with retries; returns 'sent', 'failed: ...' or 'not configured'."""
        if not self.webhook_url:
            return "not configured"
        body = json.dumps({"text": alert.slack_text()}).encode()
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.webhook_url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        return "sent"
                    error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
                if 400 <= exc.code < 500 and exc.code != 429:
                    break  # the request is wrong; retrying will not help
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                error = str(getattr(exc, "reason", exc))
        return f"failed after {attempt + 1} attempt(s): {error}"

    def send(self, alert: Alert) -> str:
        delivery = self.post(alert)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({**asdict(alert), "webhook": delivery}, default=str) + "\n")
        return delivery


def _metadata_summary(metadata: dict) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in metadata.items():
        raw = getattr(value, "value", value)
        if isinstance(raw, int | float | str | bool) and len(str(raw)) <= 300:
            out[key] = raw
    return out


def check_alert(evaluation, state: str, run_id: str | None) -> Alert:  # noqa: ANN001
    subject = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
    details = _metadata_summary(dict(evaluation.metadata or {}))
    if state == FAILED:
        message = evaluation.description or f"check {evaluation.check_name} failed"
        kind = "check_failed"
    else:
        message = f"check {evaluation.check_name} passes again"
        kind = "check_recovered"
    return Alert(kind=kind, subject=subject, severity=evaluation.severity.value, message=message,
                 run_id=run_id, details=details)


def _check_records(instance: dg.DagsterInstance, key: dg.AssetCheckKey, after: int) -> list:
    """Completed evaluations of one check with ids after `after`, oldest first."""
    found = []
    cursor = None
    while True:  # the history is newest first; page back until `after`
        page = dagster_storage.check_history(instance, key, BATCH, cursor)
        found += [r for r in page if r.id > after]
        if len(page) < BATCH or page[-1].id <= after:
            break
        cursor = page[-1].id
    done = [r for r in found if dagster_storage.completed(r)]
    return sorted(done, key=lambda r: r.id)


def _run_failures(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list, str | None]:
    records = []
    while True:
        result = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=BATCH,
                                                   cursor=cursor, ascending=True)
        records += result.records
        cursor = result.cursor or cursor
        if not result.has_more:
            return records, cursor


def evaluate_alerts(instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey],
                    cursor: dict) -> tuple[list[Alert], dict]:
    """Alerts for what happened after `cursor`, and the new cursor (no side effects).

    The cursor holds, per check, the id of the last evaluation seen and its state, and the
    position in the run-failure stream.
    """
    baseline = not cursor
    checks: dict[str, dict] = {k: dict(v) for k, v in cursor.get("checks", {}).items()}
    alerts: list[Alert] = []
    for key in sorted(check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        subject = f"{key.asset_key.to_user_string()}:{key.name}"
        seen = checks.get(subject, {"id": 0, "state": PASSED})  # unknown = healthy
        records = _check_records(instance, key, seen["id"])
        for record in records:
            evaluation = record.event.dagster_event.event_specific_data
            state = PASSED if evaluation.passed else FAILED
            if not baseline and state != seen["state"]:
                alerts.append(check_alert(evaluation, state, record.run_id))
            seen = {"id": record.id, "state": state}
        if baseline and seen["state"] == FAILED:  # failing right now: once
            alerts.append(check_alert(records[-1].event.dagster_event.event_specific_data,
                                      FAILED, records[-1].run_id))
        checks[subject] = seen
    failures, runs_cursor = _run_failures(instance, cursor.get("runs"))
    if not baseline:
        for record in failures:
            entry = record.event_log_entry
            data = entry.get_dagster_event().event_specific_data
            error = getattr(data, "error", None)
            message = entry.message or "run failed"
            if error is not None and getattr(error, "message", None):
                message = f"{message} {error.message.strip().splitlines()[0]}"
            alerts.append(Alert(kind="run_failed", subject=entry.job_name or "run",
                                severity="ERROR", message=message, run_id=entry.run_id))
    return alerts, {"checks": checks, "runs": runs_cursor}


def build_alert_sensor(config: C360Config) -> dg.SensorDefinition:
    auto = config.automation

    @dg.sensor(
        name=ALERT_SENSOR,
        minimum_interval_seconds=auto.alert_sensor_interval_s,
        default_status=(dg.DefaultSensorStatus.RUNNING if auto.running_by_default
                        else dg.DefaultSensorStatus.STOPPED),
        description=(f"Reports failed and recovered asset checks (one alert per state "
                     f"change) and failed runs to <lake>/{config.alerts.log_path} and, when "
                     f"${config.alerts.webhook_env} is set, to that webhook (Slack JSON)."),
    )
    def alert_sensor(context: dg.SensorEvaluationContext, c360: C360Paths) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        check_keys = list(context.repository_def.asset_graph.asset_check_keys)
        alerts, new_cursor = evaluate_alerts(context.instance, check_keys, cursor)
        sink = AlertSink.from_config(config.alerts, c360.lake)
        for alert in alerts:
            delivery = sink.send(alert)
            log = context.log.warning if delivery.startswith("failed") else context.log.info
            log(f"alert {alert.kind} {alert.subject}: webhook {delivery}")
        return dg.SensorResult(
            skip_reason=None if alerts else "no check changed state and no run failed",
            cursor=json.dumps(new_cursor, sort_keys=True))

    return alert_sensor
