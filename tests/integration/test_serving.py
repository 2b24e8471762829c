"""The profile API against a running `c360 serve` over a real socket (issue 19).

The lake (`served_lake`): a small world through the pipeline, then a day of Salesforce
changes - a merge of two persons, the only record of a third deleted, a fourth's city
changed. Every endpoint, normalised lookups, the merged-id answer, deleted persons,
auth on and off, malformed input, exports, the log, an atomic rebuild under a lookup
loop, and (last: it changes the lake) an erasure that reaches the store.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import threading
import time
import urllib.parse

import polars as pl
import pytest

from c360_assets.lib.registry import load_registry
from c360_assets.serving import reader
from c360_assets.serving.store import build_store, read_meta, store_path
from tests.serving_helpers import Server, land_contacts, latest_contacts

pytestmark = pytest.mark.xdist_group("small_world")
KEY = "k-" + "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def api(served_lake, tmp_path_factory):
    server = Server(served_lake.lake, tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def secured(served_lake, tmp_path_factory):
    server = Server(served_lake.lake, tmp_path_factory.mktemp("serve") / "secured.log",
                    env={"C360_API_KEYS": f"other-key-{'x' * 16},{KEY}"})
    yield server
    server.stop()


def gold(lake) -> pl.DataFrame:
    return pl.read_delta(str(lake / "gold" / "customer_profile_v2"))


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def q(**params: str) -> str:
    return "/v1/profiles?" + urllib.parse.urlencode(params)


def identifiers(lake, kind: str) -> pl.DataFrame:
    import sqlite3

    con = sqlite3.connect(store_path(lake))
    rows = con.execute("SELECT value, person_id, current FROM identifiers WHERE kind = ?",
                       (kind,)).fetchall()
    con.close()
    return pl.DataFrame(rows, schema=["value", "person_id", "current"], orient="row")


def test_a_profile_by_id_is_gold_field_by_field_with_source_and_time(served_lake, api):
    profiles = gold(served_lake.lake)
    columns = [c for _, c in load_registry().gold_columns()]
    consented = pl.read_delta(str(served_lake.lake / "gold" / "consent_status"))["customer_id"]
    sample = pl.concat([profiles.filter(pl.col("customer_id").is_in(consented.implode())).head(3),
                        profiles.sort("source_record_count", descending=True).head(3)])
    for row in sample.iter_rows(named=True):
        status, headers, body = api.get(f"/v1/profiles/{row['customer_id']}")
        assert status == 200, body
        got = json.loads(body)
        assert got["person_id"] == row["customer_id"]
        for c in columns:
            value = row[c]
            expected = value.isoformat() if isinstance(value, dt.date) else value
            assert got["fields"][c] == {"value": expected, "source": row[f"{c}_source"],
                                        "updated_at": iso(row[f"{c}_updated_at"])}, c
        assert got["source_record_count"] == row["source_record_count"]
        assert got["extensions"] == dict(row["extensions"] or {})
        assert headers["x-c360-store-version"] == got["store_version"]
        assert headers["content-type"] == "application/json"
    with_consent = sample.row(0, named=True)["customer_id"]
    assert api.json(f"/v1/profiles/{with_consent}")[1]["consent"][0]["purpose"] == "email_marketing"


def test_lookups_by_any_identifier_are_normalised_like_silver(served_lake, api):
    lake = served_lake.lake
    profiles = gold(lake)
    person = profiles.filter(pl.col("email").is_not_null() & pl.col("phone").is_not_null()
                             & (pl.col("country") == "DE")).row(0, named=True)
    messy = "  " + person["email"].upper() + " "
    status, found = api.json(q(email=messy))
    assert status == 200, found
    assert found["query"] == {"kind": "email", "value": person["email"]}
    assert person["customer_id"] in [p["person_id"] for p in found["profiles"]]
    assert found["profiles"][0]["match"]["golden"] is True
    # A German number in national form with its country, and with spaces and dashes.
    national = "0" + person["phone"][3:]
    for raw, params in ((national, {"country": "de"}), (person["phone"][:6] + " " +
                                                         person["phone"][6:], {})):
        status, found = api.json(q(phone=raw, **params))
        assert status == 200, (raw, found)
        assert person["customer_id"] in [p["person_id"] for p in found["profiles"]]
    # Source record ids: Salesforce in its 15-character form, SAP by number alone.
    sf = profiles.filter(pl.col("extensions").map.get("sfdc_contact_id").is_not_null()).row(0, named=True)
    contact = dict(sf["extensions"])["sfdc_contact_id"]
    for rid in (contact, contact[:15]):
        status, found = api.json(q(source="Salesforce", id=rid))
        assert status == 200 and found["profiles"][0]["person_id"] == sf["customer_id"], rid
    sap = profiles.filter(pl.col("extensions").map.get("sap_kunnr").is_not_null()).row(0, named=True)
    client, number = dict(sap["extensions"])["sap_kunnr"].split(":")
    for rid in (f"{client}:{number}", number, number.lstrip("0")):
        status, found = api.json(q(source="sap", id=rid))
        assert status == 200 and sap["customer_id"] in [p["person_id"] for p in found["profiles"]], rid
    anonymous = identifiers(lake, "anonymous_id").row(0, named=True)
    status, found = api.json(q(anonymous_id=f" {anonymous['value']} "))
    assert status == 200 and anonymous["person_id"] in [p["person_id"] for p in found["profiles"]]
    # Valid but unknown: 404, with the JSON error body.
    status, body = api.json(q(email="nobody.at.all@example.org"))
    assert status == 404 and body["error"]["code"] == "not_found" and body["request_id"]


def test_every_golden_identifier_and_every_record_finds_its_person(served_lake):
    """In process, over the whole store: each person's golden e-mail and phone, as a
    user might type them, and each of its records' ids find it."""
    from c360_assets.bronze import catalogue
    from c360_assets.lib.config import load_config

    lake = served_lake.lake
    store = reader.Store(store_path(lake))
    keys = {s.name: s.lookup_key for s in catalogue(load_config())}
    profiles = gold(lake)
    missed = []
    for row in profiles.iter_rows(named=True):
        typed = [({"email": f" {row['email'].upper()} "}, row["email"])] if row["email"] else []
        typed += [({"phone": row["phone"]}, row["phone"])] if row["phone"] else []
        for params, _ in typed:
            kind, value = reader.identifier(params, keys)
            if row["customer_id"] not in {m.person_id for m in store.lookup(kind, value)}:
                missed.append((row["customer_id"], kind))
    identity = pl.read_delta(str(lake / "silver" / "identity")).filter(
        pl.col("person_id").is_in(profiles["customer_id"].implode()))
    for node, person in identity.select("node_id", "person_id").iter_rows():
        source, record = node.split(":", 2)[1:]
        kind, value = reader.identifier({"source": source, "id": record}, keys)
        if person not in {m.person_id for m in store.lookup(kind, value)}:
            missed.append((person, node))
    store.close()
    assert not missed, missed[:10]
    assert identity.height > profiles.height  # persons with several records were checked


def test_a_shared_e_mail_answers_every_person_golden_holder_first(served_lake, api):
    emails = identifiers(served_lake.lake, "email")
    shared = emails.group_by("value").len().filter(pl.col("len") > 1)
    if shared.is_empty():
        pytest.skip("the world has no e-mail two persons hold")
    value = shared.sort("value")["value"][0]
    status, found = api.json(q(email=value))
    assert status == 200 and found["count"] == emails.filter(pl.col("value") == value).height
    golden = [p["match"]["golden"] for p in found["profiles"]]
    assert golden == sorted(golden, reverse=True)


def test_a_merged_id_answers_with_the_survivor_and_says_so(served_lake, api):
    events = pl.read_delta(str(served_lake.lake / "silver" / "identity_events"))
    merged = events.filter(pl.col("event_type") == "MERGED_INTO").row(0, named=True)
    old, survivor = merged["from_person_id"], merged["to_person_id"]
    assert {old, survivor} == set(served_lake.merged)
    for path in (f"/v1/profiles/{old}", f"/v1/profiles/{old}/sources"):
        status, got = api.json(path)
        assert status == 200, got
        assert got["person_id"] == survivor and got["requested_id"] == old
        assert got["merged_into"] == survivor
    status, got = api.json(f"/v1/profiles/{survivor}/sources")
    assert {r["id"] for r in got["records"]} >= set(served_lake.contacts[:2])
    held = {r["id"]: r["held_by"]["rule"] for r in got["records"]}
    assert held[served_lake.contacts[1]] == "salesforce_merge"


def test_a_deleted_person_is_404(served_lake, api):
    status, body = api.json(f"/v1/profiles/{served_lake.deleted}")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert "deleted" in body["error"]["message"]
    status, _ = api.json(f"/v1/profiles/{served_lake.deleted}/sources")
    assert status == 404
    status, _ = api.json(q(source="salesforce", id=served_lake.contacts[2]))
    assert status == 404


def test_sources_show_records_links_and_why_values_lost(served_lake, api):
    profiles = gold(served_lake.lake)
    person = profiles.sort("source_record_count", "customer_id",
                           descending=[True, False]).row(0, named=True)
    status, got = api.json(f"/v1/profiles/{person['customer_id']}/sources")
    assert status == 200
    assert len(got["records"]) == person["source_record_count"]
    assert len(got["links"]) >= len(got["records"]) - 1  # a connected person
    members = {r["record"] for r in got["records"]}
    assert all(link["a"] in members and link["b"] in members for link in got["links"])
    assert all(link["status"] in ("linked", "accepted") for link in got["links"])
    fields = got["fields"]
    for column, field in fields.items():
        if person[column] is None:
            continue
        winner = field["winner"]
        assert winner["source"] == person[f"{column}_source"]
        for other in field["others"]:
            assert other["verdict"] in ("same", "lost") and other["why"]
            assert (other["verdict"] == "same") == (other["value"] == winner["value"])
    lost = [o for f in fields.values() for o in f["others"] if o["verdict"] == "lost"]
    assert any(o["why"].startswith("older") for o in lost) or not lost


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/profiles/not-a-person", "person_id"),
    ("/v1/profiles/p_0123", "person_id"),
    ("/v1/profiles?email=", "email"),
    ("/v1/profiles?email=not-an-email", "email"),
    ("/v1/profiles?email=a%40b%1B.com", "email"),
    ("/v1/profiles?email=a%40b.com&phone=%2B4930123456", "query"),
    ("/v1/profiles", "query"),
    ("/v1/profiles?emial=a%40b.com", "emial"),
    ("/v1/profiles?phone=12", "phone"),
    ("/v1/profiles?phone=030123456", "phone"),
    ("/v1/profiles?email=a%40b.com&country=DE", "country"),
    ("/v1/profiles?source=hubspot&id=1", "source"),
    ("/v1/profiles?source=salesforce", "id"),
    ("/v1/profiles?source=salesforce&id=003%01x", "id"),
    ("/v1/profiles?email=" + "a" * 1200 + "%40b.com", "email"),
    ("/v1/export?format=xml", "format"),
    ("/v1/export?changed_since=yesterday", "changed_since"),
    ("/v1/export?limit=0", "limit"),
    ("/v1/export?limit=ten", "limit"),
    ("/v1/export?limit=%C2%B2", "limit"),  # a superscript two: a digit, not a number
    ("/v1/export?since=2026-01-01", "since"),
])
def test_malformed_input_gets_422_and_nothing_else(api, path, field):
    status, headers, body = api.get(path)
    assert status == 422, body
    got = json.loads(body)
    assert set(got) == {"error", "request_id"}
    assert got["error"]["code"] == "invalid" and got["error"]["field"] == field
    assert got["error"]["message"]
    assert headers["x-request-id"] == got["request_id"]


def test_other_methods_and_paths_get_json_errors(api):
    status, _, body = api.get("/v1/nothing-here")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    import http.client

    con = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    con.request("DELETE", "/v1/profiles/p_0123456789abcdef")
    r = con.getresponse()
    assert r.status == 405 and json.loads(r.read())["error"]["code"] == "method_not_allowed"
    con.close()


def test_api_keys_when_configured(served_lake, api, secured):
    person = gold(served_lake.lake)["customer_id"][0]
    path = f"/v1/profiles/{person}"
    status, headers, body = secured.get(path)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert secured.get(path, {"Authorization": "Bearer wrong-key-0000000000"})[0] == 401
    assert secured.get(q(email="x@example.org"))[0] == 401  # checked before the input
    assert secured.get(path, {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert secured.get(path, {"X-API-Key": KEY})[0] == 200
    assert secured.get("/v1/export?limit=1", {"X-API-Key": KEY})[0] == 200
    # No customer data outside /v1/: open.
    assert secured.get("/openapi.json")[0] == 200 and secured.get("/")[0] == 200
    doc = json.loads(secured.get("/openapi.json")[2])
    assert doc["paths"]["/v1/profiles/{person_id}"]["get"]["security"]
    # Auth off: no key needed.
    assert api.get(path)[0] == 200


def test_store_and_health_say_what_is_served(served_lake, api):
    status, info = api.json("/v1/store")
    meta = read_meta(store_path(served_lake.lake))
    assert status == 200 and info["version"] == meta["version"] == info["store_version"]
    assert info["persons"] == gold(served_lake.lake).height
    assert info["sources"] == ["salesforce", "sap", "segment", "shopify", "zendesk"]
    assert info["gold_versions"]["customer_profile_v2"] >= 1
    status, health = api.json("/healthz")
    assert status == 200 and health == {"status": "ok", "store_version": meta["version"]}


def test_before_the_first_store_the_api_says_so(tmp_path):
    empty = Server(tmp_path / "lake", tmp_path / "serve.log")
    try:
        assert empty.get("/healthz")[0] == 503
        status, body = empty.json("/v1/profiles/p_0123456789abcdef")
        assert status == 503 and body["error"]["code"] == "no_store"
        assert "c360 materialize" in body["error"]["message"]
        assert empty.get("/")[0] == 200  # the page loads, and will say so
    finally:
        empty.stop()


def test_openapi_describes_every_route(api):
    from c360_assets.serving import api as app_module

    doc = api.json("/openapi.json")[1]
    assert doc["openapi"].startswith("3.")
    app = app_module.create_app(api.log.parent, app_module.Keys([])).app
    assert {r.path for r in app.routes} == set(doc["paths"])


def test_export_streams_every_profile_as_ndjson_and_parquet(served_lake, api):
    profiles = gold(served_lake.lake)
    status, headers, body = api.get("/v1/export?format=ndjson")
    assert status == 200 and headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in body.splitlines()]
    assert sorted(x["customer_id"] for x in lines) == sorted(profiles["customer_id"])
    row = profiles.row(0, named=True)
    line = next(x for x in lines if x["customer_id"] == row["customer_id"])
    assert line["email"] == row["email"] and line["changed_at"]
    status, headers, body = api.get("/v1/export?format=parquet")
    assert status == 200
    table = pl.read_parquet(io.BytesIO(body))
    assert table.height == profiles.height
    assert table.schema["email_updated_at"] == pl.Datetime("us", "UTC")
    assert table.schema["birth_date"] == pl.Date
    back = table.filter(pl.col("customer_id") == row["customer_id"]).row(0, named=True)
    assert back["email_updated_at"] == row["email_updated_at"]
    assert json.loads(back["extensions"]) == dict(row["extensions"] or {})
    assert api.get("/v1/export?format=parquet&limit=5")[0] == 200
    assert pl.read_parquet(io.BytesIO(api.get("/v1/export?format=parquet&limit=5")[2])).height == 5


def test_changed_since_exports_what_changed_and_who_went(served_lake, api):
    since = served_lake.first["built_at"]
    status, _, body = api.get("/v1/export?" + urllib.parse.urlencode({"changed_since": since}))
    assert status == 200
    lines = [json.loads(x) for x in body.splitlines()]
    changed = {x["customer_id"] for x in lines if not x.get("deleted")}
    gone = {x["customer_id"]: x for x in lines if x.get("deleted")}
    old, survivor = (served_lake.merged if served_lake.merged[1] in changed
                     else reversed(served_lake.merged))
    assert served_lake.changed in changed and survivor in changed
    assert served_lake.deleted in gone and gone[served_lake.deleted]["merged_into"] is None
    assert gone[old]["merged_into"] == survivor
    assert len(changed) < gold(served_lake.lake).height / 4  # only what changed
    status, _, body = api.get("/v1/export?changed_since=2999-01-01T00:00:00Z&format=parquet")
    assert status == 200 and pl.read_parquet(io.BytesIO(body)).height == 0


def test_the_log_has_request_ids_and_no_values(served_lake, api):
    profiles = gold(served_lake.lake)
    row = profiles.filter(pl.col("email").is_not_null() & pl.col("phone").is_not_null()).row(0, named=True)
    api.get(q(email=row["email"]), {"X-Request-ID": "trace-abc-123"})
    api.get(q(phone=row["phone"]))
    api.get(f"/v1/profiles/{row['customer_id']}")
    status, headers, _ = api.get(q(email="bad@@x"))
    assert headers["x-request-id"]
    log = api.log.read_text()
    assert "trace-abc-123 GET /v1/profiles ?email 200" in log
    assert re.search(r"GET /v1/profiles/\{person_id\} 200", log)
    for value in (row["email"], row["phone"], row["customer_id"], "bad@@x", "bad%40%40x"):
        assert value not in log, value


def test_the_store_is_swapped_whole_while_lookups_run(served_lake, api):
    """A loop of lookups while gold is rebuilt (the changed city lands, the pipeline and
    the store run again, then two more store builds): every answer is a 200 from one
    whole store version, and the versions' answers differ only as gold did."""
    from c360_assets.plan import materialize
    from c360_assets.runner import instance_for

    lake, landing = served_lake.lake, served_lake.landing
    person = served_lake.changed
    email = gold(lake).filter(pl.col("customer_id") == person)["email"][0]
    seen: dict[str, set[str]] = {}
    errors: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        try:
            lookups()
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(repr(exc))

    def lookups() -> None:
        while not stop.is_set():
            for path in (f"/v1/profiles/{person}", q(email=email)):
                status, headers, body = api.get(path)
                if status != 200:
                    errors.append(f"{status} {body[:200]!r}")
                    continue
                got = json.loads(body)
                version = got["store_version"]
                if version != headers["x-c360-store-version"]:
                    errors.append(f"header {headers['x-c360-store-version']}, body {version}")
                got = got["profiles"][0] if "profiles" in got else got
                seen.setdefault(version, set()).add(json.dumps(got["fields"]["city"]))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        contact = served_lake.contacts[3]
        rows = latest_contacts(lake).filter(pl.col("id") == contact).with_columns(
            pl.lit("Otherton").alias("mailing_city"))
        day = dt.date(2026, 1, 8)
        land_contacts(landing, day, "part-city.csv", rows,
                      dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC))
        assert materialize(landing, lake, instance=instance_for(lake), log_level="ERROR",
                           echo=lambda _: None).ok
        for _ in range(2):
            build_store(lake, echo=lambda _: None)
        latest = read_meta(store_path(lake))["version"]
        deadline = time.monotonic() + 20
        while latest not in seen and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors[:5]
    assert len(seen) >= 3, seen.keys()
    cities = set()
    for version, answers in seen.items():
        assert len(answers) == 1, (version, answers)  # one version, one answer
        cities.add(json.loads(next(iter(answers)))["value"])
    assert {"Testville", "Otherton"} <= cities
    assert latest in seen  # the last build is served


def test_a_build_killed_half_way_leaves_the_served_store_whole(served_lake, api):
    """kill -9 after the first table of a rebuild: the API still answers from the old
    store, the half-written file is left beside it, and the next build removes it."""
    import os
    import subprocess
    import sys

    lake = served_lake.lake
    before = read_meta(store_path(lake))["version"]
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from c360_assets.serving.store import build_store; build_store(Path(sys.argv[1]))",
         str(lake)], env={**os.environ, "C360_TEST_KILL_AT": "serving.table_written"},
        capture_output=True, timeout=120)
    assert child.returncode == -9, child.stderr[-2000:]
    left = list(store_path(lake).parent.glob(".profiles.sqlite.*.tmp"))
    assert len(left) == 1 and left[0].stat().st_size > 0
    assert read_meta(store_path(lake))["version"] == before
    person = gold(lake)["customer_id"][0]
    status, _, body = api.get(f"/v1/profiles/{person}")
    assert status == 200 and json.loads(body)["store_version"] == before
    build_store(lake, echo=lambda _: None)
    assert not list(store_path(lake).parent.glob(".profiles.sqlite.*.tmp"))
    assert read_meta(store_path(lake))["version"] != before


def test_an_erasure_reaches_the_store_and_is_proven(served_lake, api):
    """Last in this module: erases a person through the pipeline (c360 erase's path)."""
    from c360_assets.plan import materialize
    from c360_assets.privacy import inbox
    from c360_assets.runner import instance_for

    lake, landing = served_lake.lake, served_lake.landing
    profiles = gold(lake)
    row = profiles.filter(pl.col("email").is_not_null()
                          & (pl.col("source_record_count") >= 2)).row(0, named=True)
    assert api.get(q(email=row["email"]))[0] == 200
    inbox.submit(landing, "email", row["email"], "erasure-serving-1")
    summary = materialize(landing, lake, instance=instance_for(lake), log_level="ERROR",
                          echo=lambda _: None)
    assert summary.ok, summary.problems
    receipt = next(r for r in summary.receipts if "erasure-serving-1" in r["request_ids"])
    assert receipt["hits"] == 0  # the proof scanned the store too
    status, body = api.json(q(email=row["email"]))
    assert status == 404
    assert api.json(f"/v1/profiles/{row['customer_id']}")[0] == 404
    raw = store_path(lake).read_bytes()
    assert row["email"].encode() not in raw
    assert reader.Store(store_path(lake)).tombstone(row["customer_id"]) is not None
