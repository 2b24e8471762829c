"""The alert sensor: one alert per check state change, failed runs, the log and the webhook."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.definitions import build_definitions
from c360_assets.lib.config import C360Config
from c360_assets.ops.alerts import ALERT_SENSOR, Alert, AlertSink
from c360_assets.plan import materialize
from c360_assets.resources import C360Paths
from tests.helpers import land, zendesk_users_csv

QUARANTINE = "bronze/zendesk_user:quarantine_rate_below_threshold"


def users_csv(good: int, bad: int) -> str:
    # Events an hour old: the data-staleness check passes, only quarantine can fail.
    return zendesk_users_csv(range(1, good + 1), dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
                             bad=bad)


class Sensor:
    """The alert sensor as `dagster dev` runs it: ticks carrying the cursor forward."""

    def __init__(self, paths: C360Paths, instance: dg.DagsterInstance) -> None:
        self.paths, self.instance, self.cursor = paths, instance, None
        self.defs = build_definitions(C360Config(), paths)

    def tick(self) -> list[dict]:
        log = self.paths.lake / "_ops" / "alerts.jsonl"
        before = log.read_text().splitlines() if log.exists() else []
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                     resources={"c360": self.paths},
                                     definitions=self.defs) as context:
            result = self.defs.get_sensor_def(ALERT_SENSOR).evaluate_tick(context)
        self.cursor = result.cursor
        after = log.read_text().splitlines() if log.exists() else []
        return [json.loads(line) for line in after[len(before):]]


def run_zendesk(paths: C360Paths, instance: dg.DagsterInstance, good: int, bad: int) -> None:
    day = dt.datetime.now(dt.UTC).date().isoformat()
    land(paths.landing, "zendesk", "user", day, "users.csv", users_csv(good, bad))
    summary = materialize(paths.landing, paths.lake, select="bronze/zendesk_user",
                          instance=instance, log_level="ERROR", echo=lambda _: None)
    assert summary.ok


@pytest.fixture()
def lake(tmp_path: Path, monkeypatch) -> C360Paths:
    monkeypatch.delenv("C360_ALERT_WEBHOOK_URL", raising=False)
    return C360Paths(landing_root=str(tmp_path / "landing"), lake_root=str(tmp_path / "lake"))


def test_one_alert_per_check_state_change_and_none_on_healthy_runs(lake, instance) -> None:
    sensor = Sensor(lake, instance)
    assert sensor.tick() == []  # baseline on an empty instance

    run_zendesk(lake, instance, good=20, bad=0)  # healthy
    assert sensor.tick() == []

    run_zendesk(lake, instance, good=8, bad=2)  # 20% quarantined: fails
    [failed] = sensor.tick()
    assert (failed["kind"], failed["subject"], failed["severity"]) == ("check_failed", QUARANTINE, "WARN")
    assert failed["details"]["partitions_over_threshold"] == 1
    assert failed["webhook"] == "not configured"
    assert failed["run_id"]

    run_zendesk(lake, instance, good=8, bad=3)  # still failing: no storm
    run_zendesk(lake, instance, good=8, bad=4)
    assert sensor.tick() == []

    run_zendesk(lake, instance, good=20, bad=0)  # recovered
    [recovered] = sensor.tick()
    assert (recovered["kind"], recovered["subject"]) == ("check_recovered", QUARANTINE)
    assert sensor.tick() == []  # nothing new, nothing said


def test_a_failed_run_is_one_alert(lake, instance) -> None:
    sensor = Sensor(lake, instance)
    sensor.tick()

    @dg.asset
    def explodes() -> None:
        raise RuntimeError("the warehouse is on fire")

    assert not dg.materialize([explodes], instance=instance, raise_on_error=False).success
    [alert] = sensor.tick()
    assert alert["kind"] == "run_failed" and alert["severity"] == "ERROR"
    assert alert["subject"] == "__ephemeral_asset_job__"
    assert sensor.tick() == []


def test_first_tick_over_history_reports_checks_failing_now_once(lake, instance) -> None:
    run_zendesk(lake, instance, good=8, bad=2)  # failing ...
    run_zendesk(lake, instance, good=8, bad=3)  # ... twice, before the sensor ever ran
    sensor = Sensor(lake, instance)
    alerts = sensor.tick()
    assert [(a["kind"], a["subject"]) for a in alerts] == [("check_failed", QUARANTINE)]
    assert sensor.tick() == []


class Hook(BaseHTTPRequestHandler):
    bodies: list[dict] = []
    statuses: list[int] = []
    delay_s = 0.0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.bodies.append(body)
        time.sleep(Hook.delay_s)
        status = Hook.statuses.pop(0) if Hook.statuses else 200
        try:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")
        except BrokenPipeError:  # the client timed out and left
            pass

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture()
def webhook():
    Hook.bodies, Hook.statuses, Hook.delay_s = [], [], 0.0
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def alert() -> Alert:
    return Alert(kind="check_failed", subject="silver/relationships:no_duplicate_current_edges",
                 severity="ERROR", message="3 key(s) with more than one current edge",
                 run_id="abc", details={"duplicate_keys": 3})


def test_webhook_gets_slack_json_and_is_retried(tmp_path, webhook) -> None:
    Hook.statuses = [503, 200]  # down once, then up
    sink = AlertSink(tmp_path / "alerts.jsonl", webhook, timeout_s=2, retries=3, backoff_s=0.01)
    assert sink.send(alert()) == "sent"
    assert len(Hook.bodies) == 2
    text = Hook.bodies[-1]["text"]
    assert "check failed" in text and "silver/relationships:no_duplicate_current_edges" in text
    assert "duplicate_keys: 3" in text
    [line] = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert json.loads(line)["webhook"] == "sent"


def test_a_webhook_that_stays_down_is_logged_not_retried_forever(tmp_path, webhook) -> None:
    Hook.delay_s = 0.5  # slower than the timeout
    sink = AlertSink(tmp_path / "alerts.jsonl", webhook, timeout_s=0.1, retries=2, backoff_s=0.01)
    started = time.monotonic()
    delivery = sink.send(alert())
    assert delivery.startswith("failed after 3 attempt(s)")
    assert time.monotonic() - started < 5
    assert json.loads((tmp_path / "alerts.jsonl").read_text())["webhook"] == delivery


def test_a_rejected_webhook_request_is_not_retried(tmp_path, webhook) -> None:
    Hook.statuses = [400]
    assert AlertSink(tmp_path / "a.jsonl", webhook, retries=3, backoff_s=0.01).post(alert()) \
        == "failed after 1 attempt(s): HTTP 400"
    assert len(Hook.bodies) == 1


def test_webhook_url_comes_from_the_environment(lake, instance, webhook, monkeypatch) -> None:
    monkeypatch.setenv("C360_ALERT_WEBHOOK_URL", webhook)
    sensor = Sensor(lake, instance)
    sensor.tick()
    run_zendesk(lake, instance, good=8, bad=2)
    [failed] = sensor.tick()
    assert failed["webhook"] == "sent"
    assert QUARANTINE in Hook.bodies[-1]["text"]
