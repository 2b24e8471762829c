"""The profile explorer (`c360 serve`'s page) in headless Chromium, over `served_lake`.

Searches by a messy e-mail, shows a merged person's golden record with each field's
source, field time, rule and the values that lost (and why), its records, links and
consent; shows a hostile first name as text; asks for an API key when the API wants
one. Screenshots go to `tests/artifacts/ui/explorer-*.png`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import HOSTILE_NAME
from tests.serving_helpers import Server
from tests.ui.cdp import Browser, find_chromium, recording

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("C360_TEST_ARTIFACTS", REPO / "tests" / "artifacts")) / "ui"
KEY = "explorer-key-" + "9" * 20

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("small_world"),
    pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed "
                                                       "(apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def servers(served_lake, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorer")
    open_api = Server(served_lake.lake, folder / "open.log")
    keyed = Server(served_lake.lake, folder / "keyed.log", env={"C360_API_KEYS": KEY})
    yield open_api, keyed
    open_api.stop()
    keyed.stop()


@pytest.fixture()
def browser(request: pytest.FixtureRequest):
    with recording(request, 1500, 1700, ARTIFACTS) as b:  # what the user saw, kept on failure
        yield b


def search(browser: Browser, kind: str, value: str) -> None:
    browser.wait_for("document.readyState === 'complete'", timeout_s=30)
    browser.js(f"document.getElementById('kind').value = {json.dumps(kind)};"
               f"document.getElementById('q').value = {json.dumps(value)};"
               "document.getElementById('search').requestSubmit()")


def test_search_by_e_mail_shows_the_golden_record_and_why(served_lake, servers, browser):
    api, _ = servers
    events = pl.read_delta(str(served_lake.lake / "silver" / "identity_events"))
    old, survivor = events.filter(pl.col("event_type") == "MERGED_INTO").select(
        "from_person_id", "to_person_id").row(0)
    email = pl.read_delta(str(served_lake.lake / "gold" / "customer_profile_v2")).filter(
        pl.col("customer_id").is_in([old, survivor]))["email"].drop_nulls()[0]
    browser.goto(api.url + "/")
    search(browser, "email", "  " + email.upper() + " ")
    browser.wait_for("document.getElementById('records') !== null", timeout_s=30)
    text = browser.text()
    assert "Golden record p_" in text
    for label in ("field time", "values that did not win", "Records (", "Links holding",
                  "Consent", "salesforce_merge"):
        assert label in text, label
    assert email in text
    # The page's values are the API's.
    person = browser.js("location.hash.slice(1)")
    profile = api.json(f"/v1/profiles/{person}")[1]
    assert profile["fields"]["email"]["source"] in text
    shot = browser.screenshot(ARTIFACTS / "explorer-person.png")
    assert shot.stat().st_size > 30_000
    # The merged id, typed as a person id: the page says where it went.
    search(browser, "person", old)
    browser.wait_for("document.getElementById('merged') !== null", timeout_s=30)
    assert f"{old} was merged into {survivor}" in browser.text()
    # A person whose records disagree: each losing value, where it came from and why.
    resolved = pl.read_delta(str(served_lake.lake / "gold" / "resolved_attributes"))
    torn = (resolved.group_by("customer_id").agg(pl.col("competing_values").sum())
            .sort("competing_values", "customer_id", descending=[True, False])["customer_id"][0])
    browser.goto(f"{api.url}/#{torn}")  # the hash alone changes: the page follows it
    browser.wait_for(f"document.body.innerText.includes('Golden record {torn}')", timeout_s=30)
    assert "lost: " in browser.text()
    browser.screenshot(ARTIFACTS / "explorer-values-that-lost.png")
    # Unknown: the API's 404, shown.
    search(browser, "email", "nobody.at.all@example.org")
    browser.wait_for("document.getElementById('error') !== null", timeout_s=30)
    assert "404 not_found" in browser.text()


def test_a_hostile_value_is_shown_as_text(served_lake, servers, browser):
    api, _ = servers
    browser.goto(f"{api.url}/#{served_lake.changed}")
    browser.wait_for("document.getElementById('fields') !== null", timeout_s=30)
    assert HOSTILE_NAME in browser.text()
    assert browser.js("document.querySelectorAll('main img').length") == 0
    assert browser.js("document.title") == "c360 profile explorer"
    browser.screenshot(ARTIFACTS / "explorer-hostile-value.png")


def test_the_page_asks_for_a_key_when_the_api_wants_one(served_lake, servers, browser):
    _, keyed = servers
    browser.goto(f"{keyed.url}/")
    search(browser, "person", served_lake.changed)
    browser.wait_for("document.getElementById('error') !== null && "
                     "getComputedStyle(document.getElementById('key-row')).display !== 'none'",
                     timeout_s=30)
    assert "401 unauthorized" in browser.text()
    browser.js(f"document.getElementById('key').value = {json.dumps(KEY)};"
               "document.getElementById('save-key').click()")
    browser.wait_for("document.getElementById('fields') !== null", timeout_s=30)
    assert HOSTILE_NAME in browser.text()
    browser.screenshot(ARTIFACTS / "explorer-with-key.png")
