"""What a user sees: the Dagster UI over `workspace.yaml`, rendered by headless Chromium.

Starts `dagster-webserver -w workspace.yaml` on 127.0.0.1 over a lake where one source
(Zendesk) was materialised, opens the global asset lineage with every group expanded and
checks the page shows the whole graph; then opens a bronze asset and checks its
description, partitions, freshness policy and check results are there. Screenshots go
to `tests/artifacts/ui/` (or `$C360_TEST_ARTIFACTS/ui/`). Skipped without Chromium
(`.ci/run` installs it where it can).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from c360_assets.definitions import build_definitions
from c360_assets.lib.config import load_config
from c360_assets.plan import materialize
from c360_assets.resources import C360Paths
from tests.helpers import land, zendesk_users_csv
from tests.ui.cdp import Browser, find_chromium, recording

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("C360_TEST_ARTIFACTS", REPO / "tests" / "artifacts")) / "ui"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed "
                                                       "(apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory):
    for stale in ARTIFACTS.glob("FAILED-*.png"):
        stale.unlink()
    root = tmp_path_factory.mktemp("ui")
    home, landing, lake = root / "dagster_home", root / "landing", root / "lake"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    now = dt.datetime.now(dt.UTC)
    land(landing, "zendesk", "user", now.date().isoformat(), "users.csv",
         zendesk_users_csv(range(1, 30), now - dt.timedelta(hours=1)))
    instance = dg.DagsterInstance.from_config(str(home))
    assert materialize(landing, lake, select="zendesk", instance=instance, log_level="ERROR",
                       echo=lambda _: None).ok
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "C360_LANDING": str(landing),
           "C360_LAKE": str(lake)}
    log = (root / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail("webserver did not start:\n"
                            + (root / "webserver.log").read_text()[-3000:])
            time.sleep(0.5)
    yield url, landing, lake
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture()
def browser(request: pytest.FixtureRequest):
    with recording(request, 2400, 2000, ARTIFACTS) as b:  # what the user saw, kept on failure
        yield b


def asset_graph(landing: Path, lake: Path) -> tuple[list[str], list[str]]:
    """Every asset key and every group the workspace defines (what the page must show)."""
    defs = build_definitions(load_config(), C360Paths(landing_root=str(landing), lake_root=str(lake)))
    graph = defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    groups = sorted({n.group_name for n in graph.asset_nodes if not n.is_external})
    return keys, groups


def open_lineage(browser: Browser, url: str, groups: list[str]) -> None:
    browser.goto(f"{url}/asset-groups")
    browser.wait_for("document.body && document.body.innerText.includes('Global asset lineage')")
    expanded = ",".join(f"global@global:{g}" for g in groups)
    browser.js("localStorage.setItem('communityNux', '1');"  # the newsletter pop-up: seen
               "localStorage.setItem('large-screen-nav-open', 'false');"
               "localStorage.setItem('asset-graph-open-graph-nodes-global-__GLOBAL__', "
               f"JSON.stringify({{expanded: '{expanded}'}}))")
    browser.goto(f"{url}/asset-groups")


def test_the_asset_graph_shows_bronze_silver_and_gold_as_one_lineage(webserver, browser) -> None:
    url, landing, lake = webserver
    keys, groups = asset_graph(landing, lake)
    assert {"bronze", "silver", "gold"} <= set(groups), groups
    open_lineage(browser, url, groups)
    browser.wait_for("document.querySelectorAll('foreignObject.group').length > 0", timeout_s=90)
    time.sleep(1)
    # Zoom out until every asset is drawn (off-screen nodes are not) and inside the window.
    fits = (f"document.querySelectorAll('foreignObject.group').length == {len(groups)} && "
            f"document.querySelectorAll('foreignObject:not(.group)').length >= {len(keys)} && "
            "[...document.querySelectorAll('foreignObject')].every(e => { "
            "const r = e.getBoundingClientRect(); return r.top >= 0 && r.left >= 0 && "
            "r.bottom <= innerHeight && r.right <= innerWidth; })")
    for _ in range(10):
        if browser.js(fits):
            break
        browser.js("document.querySelectorAll('[class*=SVGViewport_iconButton]')[1].click()")
        time.sleep(0.6)
    time.sleep(1.5)
    assert browser.js(fits), "the whole graph does not fit the window"
    text = browser.text()
    for group in groups:
        assert group in text
    for label in ("sap_kna1", "zendesk_user", "relationships", "identity", "field_changes",
                  "consent_log", "source_freshness"):
        assert label in text, label
    shot = browser.screenshot(ARTIFACTS / "asset-graph.png")
    assert shot.stat().st_size > 50_000

    # The catalog lists every asset by its full key.
    browser.goto(f"{url}/assets?view=flat")
    browser.wait_for("document.body.innerText.includes('zendesk_user')", timeout_s=60)
    time.sleep(1)
    catalog = browser.text()
    missing = [k for k in keys if k.split("/")[-1] not in catalog]
    browser.screenshot(ARTIFACTS / "catalog.png")
    assert not missing, missing


def test_a_bronze_asset_shows_description_partitions_freshness_and_checks(webserver, browser) -> None:
    url, _, _ = webserver
    browser.goto(f"{url}/assets/bronze/zendesk_user")
    browser.wait_for("document.body && document.body.innerText.includes('zendesk_user')")
    browser.js("localStorage.setItem('communityNux', '1')")
    browser.goto(f"{url}/assets/bronze/zendesk_user")
    text = browser.wait_for("document.body.innerText.includes('Fails if more than 4 hours') && "
                            "document.body.innerText", timeout_s=60)
    assert "Zendesk users as landed by Fivetran" in text  # the description
    assert "Freshness policy" in text and "Partitions" in text
    assert "landing_sensor" in text and "every 2 hours" in text  # what automates it
    browser.screenshot(ARTIFACTS / "asset-bronze-zendesk_user.png")

    browser.goto(f"{url}/assets/bronze/zendesk_user?view=checks")
    checks = browser.wait_for(
        "document.body.innerText.includes('quarantine_rate_below_threshold') && "
        "document.body.innerText.includes('newest_event_within_window') && "
        "document.body.innerText", timeout_s=60)
    assert "Catches a connector that syncs but delivers nothing new" in checks
    browser.screenshot(ARTIFACTS / "asset-bronze-zendesk_user-checks.png")
