"""Activation scenarios against running destinations: a throwaway PostgreSQL cluster, a
Salesforce-like REST server and signed-webhook receivers on 127.0.0.1.

Gold is written by hand here (gold's own schemas, tests/activation_helpers.py) so each
scenario states exactly what the model holds; tests/scenarios/test_activation_loop.py
runs the real pipeline around the syncs.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import psycopg
import pytest

from c360_assets.activation import state as st
from c360_assets.activation.destinations import DestinationError
from c360_assets.activation.engine import SyncRefused, run_sync
from c360_assets.activation.spec import load_syncs
from c360_assets.lib.config import C360Config
from tests.activation_helpers import (
    SALESFORCE_SYNC,
    T0,
    person,
    sync_spec,
    write_consent,
    write_merges,
    write_profiles,
)
from tests.servers.postgres import PostgresCluster, PostgresUnavailable
from tests.servers.salesforce_like import SalesforceLike
from tests.servers.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.xdist_group("postgres")
CONFIG = C360Config()
SECRET = "s3cret-signing-key"


def no_sleep(_: float) -> None:
    return None


@pytest.fixture(scope="session")
def pg():
    try:
        with PostgresCluster() as cluster:
            yield cluster
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")


@pytest.fixture()
def pg_dsn(pg, monkeypatch, request):
    """A fresh database per test."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}"')
        conn.execute(f'create database "{name}"')
    dsn = pg.dsn.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("PG_DSN", dsn)
    return dsn


def pg_rows(dsn: str, table: str = "profiles") -> dict[str, dict]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(f"select * from {table}")
        return {r["customer_id"]: r for r in cur.fetchall()}


PG_SYNC = {
    "model": "customer_profile_v2",
    "destination": {"type": "postgres", "dsn_env": "PG_DSN", "table": "profiles",
                    "batch_rows": 3},
    "match_on": [{"field": "customer_id", "from": "customer_id"}],
    "fields": {"email": {"from": "email", "null_policy": "clear"},
               "first_name": "first_name",
               "phone": {"from": "phone", "null_policy": "set_if_empty"},
               "city": {"from": "city", "null_policy": "clear"},
               "city_source": {"from": "city_source", "null_policy": "clear"}},
    "mode": "mirror",
    "limits": {"max_delete_pct": 30},
    "merges": {"loser": "delete"},
}


def five() -> list[dict]:
    return [person(f"p{i}", email=f"u{i}@example.org", first_name=f"N{i}", city="Berlin")
            for i in range(5)]


# -- Postgres: diffs, mirror, limits ---------------------------------------------------

def test_postgres_mirror_sends_only_what_changed_and_a_second_run_nothing(tmp_path, pg_dsn):
    lake = tmp_path / "lake"
    spec = sync_spec(tmp_path / "syncs", "mirror", PG_SYNC)
    rows = five()
    write_profiles(lake, rows)
    first = run_sync(lake, spec, CONFIG)
    assert (first.planned["create"], first.acknowledged, first.rejected) == (5, 5, 0)
    assert pg_rows(pg_dsn)["p3"]["city"] == "Berlin"
    assert run_sync(lake, spec, CONFIG).operations == 0

    rows[3] = person("p3", email="u3@example.org", first_name="N3", city="Hamburg")
    rows.append(person("p9", email="u9@example.org", first_name="N9"))
    write_profiles(lake, [r for r in rows if r["customer_id"] != "p0"])
    third = run_sync(lake, spec, CONFIG)
    assert (third.planned["update"], third.planned["create"], third.planned["delete"]) == (1, 1, 1)
    assert third.changed_fields["city"] == 1 and third.changed_fields["first_name"] == 0
    table = pg_rows(pg_dsn)
    assert set(table) == {"p1", "p2", "p3", "p4", "p9"} and table["p3"]["city"] == "Hamburg"
    log = pl.read_delta(str(st.log_table(lake, "changelog")))
    city = log.filter((pl.col("person_id") == "p3") & (pl.col("field") == "city"))
    assert city.select("before", "after", "status").row(0) == ("Berlin", "Hamburg", "acknowledged")
    assert run_sync(lake, spec, CONFIG).operations == 0


def test_an_empty_model_never_wipes_a_mirror(tmp_path, pg_dsn):
    lake = tmp_path / "lake"
    spec = sync_spec(tmp_path / "syncs", "mirror", PG_SYNC)
    write_profiles(lake, five())
    run_sync(lake, spec, CONFIG)
    write_profiles(lake, [])  # a failed or filtered-out build
    with pytest.raises(SyncRefused, match="model is empty"):
        run_sync(lake, spec, CONFIG)
    write_profiles(lake, five()[:2])  # 3 of 5 deletes: 60% > max_delete_pct 30
    with pytest.raises(SyncRefused, match="max_delete_pct"):
        run_sync(lake, spec, CONFIG)
    assert len(pg_rows(pg_dsn)) == 5
    runs = pl.read_delta(str(st.log_table(lake, "runs"))).sort("started_at")
    assert runs["status"].to_list() == ["ok", "refused", "refused"]


def test_null_policies_skip_clear_and_set_if_empty(tmp_path, pg_dsn):
    lake = tmp_path / "lake"
    spec = sync_spec(tmp_path / "syncs", "mirror", PG_SYNC)
    write_profiles(lake, [person("p1", email="a@example.org", first_name="Ann", city="Berlin")])
    run_sync(lake, spec, CONFIG)
    with psycopg.connect(pg_dsn) as conn:  # someone fills the phone in the destination
        conn.execute("update profiles set phone = '+4930111' where customer_id = 'p1'")
    write_profiles(lake, [person("p1", email="a@example.org", first_name=None, city=None,
                                 phone="+4940222")])
    report = run_sync(lake, spec, CONFIG)
    row = pg_rows(pg_dsn)["p1"]
    assert row["first_name"] == "Ann"  # skip: a null never overwrites
    assert row["city"] is None and row["city_source"] is None  # clear: sent as null
    assert row["phone"] == "+4930111"  # set_if_empty: the destination's value stays
    assert report.changed_fields["first_name"] == 0
    assert run_sync(lake, spec, CONFIG).operations == 0


def test_a_bad_row_is_isolated_by_halving_and_retried_next_run(tmp_path, pg_dsn):
    lake = tmp_path / "lake"
    spec = sync_spec(tmp_path / "syncs", "mirror", {**PG_SYNC, "destination": {
        **PG_SYNC["destination"], "batch_rows": 8}})
    rows = [person(f"p{i}", email=f"u{i}@example.org", first_name="N") for i in range(8)]
    rows[5] = person("p5", email="x" * 80 + "@example.org", first_name="N")
    write_profiles(lake, rows)
    run_sync(lake, spec, CONFIG, dry_run=True)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("create table profiles (customer_id text primary key, email text "
                     "check (length(email) < 60), first_name text, phone text, city text, "
                     "city_source text)")
    report = run_sync(lake, spec, CONFIG)
    assert (report.acknowledged, report.rejected) == (7, 1)
    log = pl.read_delta(str(st.log_table(lake, "changelog"))).filter(pl.col("status") == "rejected")
    assert log["person_id"].to_list() == ["p5"] and "check constraint" in log["error"][0]
    # refused as it is: held back (not resent every run), and sent once it changes
    again = run_sync(lake, spec, CONFIG)
    assert (again.planned["create"], again.planned["held_rejected"]) == (0, 1)
    rows[5] = person("p5", email="fixed@example.org", first_name="N")
    write_profiles(lake, rows)
    fixed = run_sync(lake, spec, CONFIG)
    assert (fixed.acknowledged, fixed.rejected, len(pg_rows(pg_dsn))) == (1, 0, 8)
    assert pl.read_delta(str(st.rejected_table(lake, "mirror"))).is_empty()


# -- keys ------------------------------------------------------------------------------

def test_null_shared_and_ambiguous_keys_are_rejected_never_picked(tmp_path):
    lake = tmp_path / "lake"
    write_profiles(lake, [
        person("p1", email="same@example.org", last_name="A"),
        person("p2", email="same@example.org", last_name="B"),
        person("p3", email=None, last_name="C", extensions={"sap_kunnr": "0000100001"}),
        person("p4", email="d@example.org", last_name="D",
               extensions={"sap_kunnr": "0000100002,0000100003"}),
        person("p5", email="e@example.org", last_name="E", extensions={"sap_kunnr": "0000100004"})])
    spec = sync_spec(tmp_path / "syncs", "keys", {
        "model": "customer_profile_v2", "columns": {"kunnr": "extensions['sap_kunnr']"},
        "destination": {"type": "file", "path": str(tmp_path / "out")},
        "match_on": [{"field": "kunnr", "from": "kunnr", "separator": ","},
                     {"field": "email", "from": "email"}],
        "fields": {"name": "last_name"}})
    report = run_sync(lake, spec, CONFIG)
    assert report.rejected_model == {"duplicate_match_key": 2, "ambiguous_match_key": 1}
    sent = pl.concat([pl.read_parquet(p) for p in (tmp_path / "out" / "keys").glob("*.parquet")])
    assert sorted(zip(sent["person_id"], sent["key_field"], sent["key"], strict=True)) == [
        ("p3", "kunnr", "0000100001"), ("p5", "kunnr", "0000100004")]


# -- consent -----------------------------------------------------------------------------

def marketing_sync(tmp_path: Path, url_env: str = "MKT_URL") -> dict:
    return {"model": "consent_status", "join": {"customer_profile_v2": ["email"]},
            "filter": "purpose = 'email_marketing' and email is not null",
            "destination": {"type": "webhook", "url_env": url_env, "secret_env": "MKT_SECRET",
                            "rate_per_s": 1000, "burst": 50, "timeout_s": 5},
            "match_on": [{"field": "email", "from": "email"}],
            "fields": {"unsubscribed": {"from": "allowed", "invert": True},
                       "status": "status"}}


def test_consent_withdrawal_is_sent_as_an_explicit_opt_out(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    write_profiles(lake, [person("p1", email="a@example.org"), person("p2", email="b@example.org"),
                          person("p3", email="c@example.org")])
    now = dt.datetime.now(dt.UTC)
    write_consent(lake, [("p1", True, now - dt.timedelta(days=10)),
                         ("p2", True, now - dt.timedelta(days=800)),  # expired
                         ("p3", False, now - dt.timedelta(days=3))])
    spec = sync_spec(tmp_path / "syncs", "consent", marketing_sync(tmp_path))
    with WebhookReceiver(SECRET) as hook:
        monkeypatch.setenv("MKT_URL", hook.url)
        monkeypatch.setenv("MKT_SECRET", SECRET)
        run_sync(lake, spec, CONFIG)
        assert hook.records == {"a@example.org": {"unsubscribed": False, "status": "granted"},
                                "b@example.org": {"unsubscribed": True, "status": "expired"},
                                "c@example.org": {"unsubscribed": True, "status": "revoked"}}
        write_consent(lake, [("p1", False, now), ("p2", True, now - dt.timedelta(days=800)),
                             ("p3", False, now - dt.timedelta(days=3))])
        report = run_sync(lake, spec, CONFIG)
        assert report.planned["update"] == 1
        assert hook.records["a@example.org"] == {"unsubscribed": True, "status": "revoked"}
        assert hook.batches[-1]["records"][0]["fields"] == {"unsubscribed": True,
                                                            "status": "revoked"}
        assert hook.bad_signatures == 0


def test_a_bad_signature_is_refused_by_the_receiver(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    write_profiles(lake, [person("p1", email="a@example.org")])
    write_consent(lake, [("p1", True, dt.datetime.now(dt.UTC))])
    spec = sync_spec(tmp_path / "syncs", "consent", marketing_sync(tmp_path))
    with WebhookReceiver(SECRET) as hook:
        monkeypatch.setenv("MKT_URL", hook.url)
        monkeypatch.setenv("MKT_SECRET", "not-the-secret")
        with pytest.raises(DestinationError, match="HTTP 401"):
            run_sync(lake, spec, CONFIG)
        assert hook.records == {} and hook.bad_signatures == 1
    runs = pl.read_delta(str(st.log_table(lake, "runs")))
    assert runs.select("status", "acknowledged").row(0) == ("failed", 0)
    assert not st.journal_files(lake, "consent")


def test_a_consent_purpose_gates_a_profile_sync(tmp_path):
    lake = tmp_path / "lake"
    write_profiles(lake, [person(f"p{i}", email=f"u{i}@example.org") for i in range(4)])
    now = dt.datetime.now(dt.UTC)
    write_consent(lake, [("p0", True, now), ("p1", False, now),
                         ("p2", True, now - dt.timedelta(days=900))])  # p3: no decision
    spec = sync_spec(tmp_path / "syncs", "audience", {
        "model": "customer_profile_v2", "consent": "email_marketing",
        "destination": {"type": "file", "format": "ndjson", "path": str(tmp_path / "out")},
        "match_on": [{"field": "email", "from": "email"}], "fields": {"id": "customer_id"}})
    report = run_sync(lake, spec, CONFIG)
    assert (report.acknowledged, report.skipped_consent) == (1, 3)
    sent = pl.read_ndjson(next((tmp_path / "out" / "audience").glob("*.ndjson")))
    assert sent["person_id"].to_list() == ["p0"]


# -- provenance guards (SAP write-back) --------------------------------------------------------

def test_address_goes_to_sap_only_where_a_non_sap_source_won(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    write_profiles(lake, [
        person("p1", street="1 New Road", city="Leeds", street_source="shopify",
               city_source="sap", extensions={"sap_kunnr": "0000100001"}),
        person("p2", street="2 Old Road", city="York", source="sap",
               extensions={"sap_kunnr": "0000100002"}),
        person("p3", street="3 Any Road", city="Hull", extensions={})])
    spec = load_syncs(Path(__file__).parents[2] / "config" / "syncs")["address_to_sap"]
    with WebhookReceiver(SECRET) as sap:
        sap.records = {"0000100001": {"stras": "old"}, "0000100002": {"stras": "2 Old Road"}}
        monkeypatch.setenv("C360_SAP_WEBHOOK_URL", sap.url)
        monkeypatch.setenv("C360_SAP_WEBHOOK_SECRET", SECRET)
        report = run_sync(lake, spec, CONFIG)
        assert report.skipped_guard == 1 and report.skipped_filter == 1
        assert sap.records["0000100001"] == {"stras": "1 New Road"}  # not ort01: SAP won it
        assert sap.records["0000100002"] == {"stras": "2 Old Road"}
        assert sap.batches[0]["update_only"] is True


# -- Salesforce-like API: merges, splits, faults, crashes ---------------------------------------

@pytest.fixture()
def salesforce(monkeypatch):
    def start(**faults):  # noqa: ANN003
        server = SalesforceLike(**faults).__enter__()
        monkeypatch.setenv("SF_URL", server.url)
        monkeypatch.setenv("SF_TOKEN", "integration-token")
        started.append(server)
        return server

    started: list[SalesforceLike] = []
    yield start
    for server in started:
        server.__exit__(None, None, None)


def sf_spec(tmp_path: Path, **changes):  # noqa: ANN003
    return sync_spec(tmp_path / "syncs", "sf", {**SALESFORCE_SYNC, **changes})


def test_merged_persons_repoint_or_flag_and_never_delete(tmp_path, salesforce):
    lake = tmp_path / "lake"
    sf = salesforce()
    spec = sf_spec(tmp_path)
    rows = [person("pA", email="a@example.org", last_name="Able"),
            person("pB", email="b@example.org", last_name="Baker"),
            person("pC", email="c@example.org", last_name="Cole")]
    write_profiles(lake, rows)
    run_sync(lake, spec, CONFIG)
    ids = {r["C360_Id__c"]: r["Id"] for r in sf.live()}
    # pA merges into pB (both have records): pB updated, pA's record flagged.
    # pC merges into pD, new (no record): pC's record is re-pointed to pD, nothing created.
    write_merges(lake, [("pA", "pB"), ("pC", "pD")])
    write_profiles(lake, [person("pB", email="b@example.org", last_name="Baker", phone="+441"),
                          person("pD", email="c@example.org", last_name="Cole-Day")])
    report = run_sync(lake, spec, CONFIG)
    assert (report.planned["flag"], report.planned["repoint"], report.planned["create"]) == (1, 1, 0)
    live = {r["Id"]: r for r in sf.live()}
    assert live[ids["pA"]]["C360_Merged_Into__c"] == "pB"
    assert live[ids["pB"]]["Phone"] == "+441"
    assert live[ids["pC"]]["C360_Id__c"] == "pD" and live[ids["pC"]]["LastName"] == "Cole-Day"
    assert len(live) == 3 and sf.creates == 3
    state = pl.read_delta(str(st.state_table(lake, "sf")))
    assert state.filter(pl.col("_person") == "pD")["_dest_id"].to_list() == [ids["pC"]]
    assert run_sync(lake, spec, CONFIG).operations == 0


def test_a_split_never_leaves_two_persons_on_one_record(tmp_path, salesforce):
    lake = tmp_path / "lake"
    sf = salesforce()
    spec = sf_spec(tmp_path)
    write_profiles(lake, [person("pP", email="shared@example.org", last_name="Parr")])
    run_sync(lake, spec, CONFIG)
    # Identity splits pP: pQ now holds the e-mail pP's record was created with, and pP
    # keeps another. pP's record moves to its new e-mail first, then pQ gets its own.
    write_profiles(lake, [person("pP", email="p@example.org", last_name="Parr"),
                          person("pQ", email="shared@example.org", last_name="Quinn")])
    run_sync(lake, spec, CONFIG)
    live = {r["C360_Id__c"]: r for r in sf.live()}
    assert {k: v["Email"] for k, v in live.items()} == {"pP": "p@example.org",
                                                        "pQ": "shared@example.org"}
    assert live["pP"]["Id"] != live["pQ"]["Id"]
    # A split whose halves both keep the record's key: both rejected, none picked.
    write_profiles(lake, [person("pP", email="p@example.org", last_name="Parr"),
                          person("pQ", email="shared@example.org", last_name="Quinn"),
                          person("pR", email="p@example.org", last_name="Roe")])
    report = run_sync(lake, spec, CONFIG)
    assert report.rejected_model == {"duplicate_match_key": 2}
    assert len(sf.live()) == 2


def test_a_duplicated_email_in_salesforce_is_rejected_not_guessed(tmp_path, salesforce):
    lake = tmp_path / "lake"
    sf = salesforce()
    sf.seed([{"Id": "003X1", "Email": "dup@example.org", "LastName": "One"},
             {"Id": "003X2", "Email": "dup@example.org", "LastName": "Two"}])
    write_profiles(lake, [person("p1", email="dup@example.org", last_name="Real")])
    report = run_sync(lake, sf_spec(tmp_path), CONFIG)
    assert (report.acknowledged, report.rejected) == (0, 1)
    assert {r["LastName"] for r in sf.live()} == {"One", "Two"}
    log = pl.read_delta(str(st.log_table(lake, "changelog")))
    assert "DUPLICATE_EXTERNAL_ID" in log["error"][0]


def test_rate_limits_are_waited_out_not_counted_as_failures(tmp_path, salesforce):
    lake = tmp_path / "lake"
    sf = salesforce(rate_limit_p=0.5, seed=1, retry_after=0.01)
    write_profiles(lake, [person(f"p{i}", email=f"u{i}@example.org", last_name="L")
                          for i in range(30)])
    spec = sf_spec(tmp_path, destination={**SALESFORCE_SYNC["destination"], "batch_rows": 5})
    report = run_sync(lake, spec, CONFIG, sleep=no_sleep)
    assert sf.faults["429"] > 0 and report.rate_limited_s > 0
    assert (report.acknowledged, report.rejected) == (30, 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_under_429s_5xx_timeouts_and_lost_answers_the_destination_converges(
        tmp_path, salesforce, seed):
    """Property: whatever the faults, after the runs the destination holds the model,
    with one record per person (no create repeated), and another run sends nothing."""
    import random

    rng = random.Random(seed)
    lake = tmp_path / "lake"
    sf = salesforce(rate_limit_p=0.15, error_p=0.15, lost_p=0.15, slow_p=0.15, slow_s=0.6,
                    seed=seed, retry_after=0.01)
    spec = sf_spec(tmp_path, destination={**SALESFORCE_SYNC["destination"], "batch_rows": 7,
                                          "timeout_s": 0.3})
    model = {f"p{i}": person(f"p{i}", email=f"u{i}@example.org", last_name=f"L{i}",
                             city=rng.choice(["Leeds", "York", None])) for i in range(60)}
    for _ in range(3):
        write_profiles(lake, list(model.values()))
        for _attempt in range(4):  # rows given up on are retried by the next run
            run_sync(lake, spec, CONFIG, sleep=no_sleep)
        live = sf.live()
        assert len(live) == len({r["Email"] for r in live}) == len(model)
        for r in live:
            want = model[r["C360_Id__c"]]
            assert (r["Email"], r["LastName"], r.get("MailingCity")) == (
                want["email"], want["last_name"], want["city"] or r.get("MailingCity"))
        # the model moves on: changed cities and names, new persons
        for pid in rng.sample(sorted(model), 10):
            model[pid] = person(pid, email=model[pid]["email"], last_name=f"N{rng.random():.3f}",
                                city=rng.choice(["Bath", "Ely"]))
        for j in range(5):
            pid = f"n{len(model)}_{j}"
            model[pid] = person(pid, email=f"{pid}@example.org", last_name="New")
    assert sf.faults["slow"] + sf.faults["lost"] > 0 and sf.faults["429"] + sf.faults["503"] > 0
    sf.rate_limit_p = sf.error_p = sf.lost_p = sf.slow_p = 0.0
    write_profiles(lake, list(model.values()))
    assert run_sync(lake, spec, CONFIG).operations == 15
    assert run_sync(lake, spec, CONFIG).operations == 0
    assert sf.creates == len(model)


@pytest.mark.parametrize("point", ["activation.batch_sent:3", "activation.batch_answered:3"])
def test_a_sync_killed_mid_run_resumes_without_resending_or_duplicating(tmp_path, salesforce,
                                                                        point):
    lake = tmp_path / "lake"
    sf = salesforce()
    clean = salesforce()
    rows = [person(f"p{i:02d}", email=f"u{i}@example.org", last_name=f"L{i}") for i in range(40)]
    write_profiles(lake, rows)
    body = {**SALESFORCE_SYNC, "destination": {**SALESFORCE_SYNC["destination"], "batch_rows": 5}}
    spec = sync_spec(tmp_path / "syncs", "sf", body)
    env = {**os.environ, "C360_SYNCS_DIR": str(tmp_path / "syncs"), "C360_LAKE": str(lake),
           "SF_URL": sf.url, "SF_TOKEN": "integration-token", "C360_TEST_KILL_AT": point}
    cmd = [sys.executable, "-m", "c360_assets.cli", "sync", "sf"]
    died = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert died.returncode == -9, died.stderr
    assert 0 < sf.creates < 40
    del env["C360_TEST_KILL_AT"]
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    if point.startswith("activation.batch_answered"):
        assert "looking them up" in rerun.stdout + rerun.stderr
    # the clean sync, to compare with
    os.environ["SF_URL"] = clean.url
    clean_lake = tmp_path / "clean"
    write_profiles(clean_lake, rows)
    run_sync(clean_lake, spec, CONFIG)

    def content(server: SalesforceLike) -> list[tuple]:
        return sorted((r["C360_Id__c"], r["Email"], r["LastName"]) for r in server.live())

    assert content(sf) == content(clean) and sf.creates == 40
    assert run_sync(lake, sync_spec(tmp_path / "syncs", "sf", body), CONFIG).operations == 0


@pytest.mark.parametrize("fault", ["lost", "timeout"])
def test_a_timed_out_create_is_looked_up_before_it_is_sent_again(tmp_path, salesforce, fault):
    lake = tmp_path / "lake"
    # every write commits; every answer is lost (connection closed) or comes after the
    # client's timeout
    sf = (salesforce(lost_p=1.0, seed=4) if fault == "lost"
          else salesforce(slow_p=1.0, slow_s=1.5, seed=4))
    write_profiles(lake, [person("p1", email="a@example.org", last_name="A", at=T0)])
    spec = sf_spec(tmp_path, destination={**SALESFORCE_SYNC["destination"], "timeout_s": 0.5})
    report = run_sync(lake, spec, CONFIG, sleep=no_sleep)
    assert (report.acknowledged, sf.creates, len(sf.live())) == (1, 1, 1)
    assert sf.faults["lost" if fault == "lost" else "slow"] == 1
    state = pl.read_delta(str(st.state_table(lake, "sf")))
    assert state["_dest_id"].to_list() == [sf.live()[0]["Id"]]


# -- Dagster ---------------------------------------------------------------------------------

def test_a_sync_asset_reports_its_plan_and_checks(tmp_path, instance):
    import dagster as dg

    from c360_assets.activation.assets import build_sync_asset
    from c360_assets.resources import C360Paths

    lake = tmp_path / "lake"
    write_profiles(lake, [person("p1", email="a@example.org", last_name="A"),
                          person("p2", email="a@example.org", last_name="B"),
                          person("p3", email="c@example.org", last_name="C")])
    spec = sync_spec(tmp_path / "syncs", "files", {
        "model": "customer_profile_v2",
        "destination": {"type": "file", "path": str(tmp_path / "out")},
        "match_on": [{"field": "email", "from": "email"}], "fields": {"name": "last_name"},
        "limits": {"max_reject_pct": 10}})
    asset = build_sync_asset(spec, CONFIG)
    result = dg.materialize([asset], instance=instance, resources={
        "c360": C360Paths.at(tmp_path / "landing", lake, CONFIG)})
    assert result.success
    meta = result.asset_materializations_for_node(asset.op.name)[0].metadata
    assert (meta["planned_creates"].value, meta["acknowledged"].value,
            meta["rejected_model"].value) == (1, 1, 2)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"safety_limits": True, "rejection_rate": True}
    write_profiles(lake, [])  # an empty model: refused, the blocking check fails
    refused = dg.materialize([asset], instance=instance, raise_on_error=False, resources={
        "c360": C360Paths.at(tmp_path / "landing", lake, CONFIG)})
    checks = {c.check_name: c.passed for c in refused.get_asset_check_evaluations()}
    assert checks["safety_limits"] is False


# -- the shipped syncs, as configured ----------------------------------------------------------

def test_the_shipped_consent_and_postgres_syncs_run_against_their_destinations(
        tmp_path, pg_dsn, monkeypatch):
    shipped = load_syncs(Path(__file__).parents[2] / "config" / "syncs")
    lake = tmp_path / "lake"
    now = dt.datetime.now(dt.UTC)
    rows = [person("p1", email="a@example.org", last_name="Ames", city="Leeds",
                   email_consent="true", extensions={"shopify_id": "7001"}),
            person("p2", email="b@example.org", last_name="Burns", birth_date=dt.date(1980, 2, 3)),
            person("p3", email=None, last_name="Cole")]
    write_profiles(lake, rows)
    write_consent(lake, [("p1", True, now - dt.timedelta(days=2)), ("p2", False, now)])
    monkeypatch.setenv("C360_SYNC_POSTGRES_DSN", pg_dsn)
    with WebhookReceiver(SECRET) as hook:
        monkeypatch.setenv("C360_MARKETING_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("C360_MARKETING_WEBHOOK_SECRET", SECRET)
        consent = run_sync(lake, shipped["consent_to_marketing"], CONFIG)
        assert consent.acknowledged == 2
        assert hook.records["a@example.org"]["unsubscribed"] is False
        assert hook.records["b@example.org"]["unsubscribed"] is True
        assert hook.records["b@example.org"]["consent_status"] == "revoked"
    mirror = run_sync(lake, shipped["profile_to_postgres"], CONFIG)
    assert mirror.acknowledged == 3
    table = pg_rows(pg_dsn, "customer_profile_v2")
    assert table["p1"]["city"] == "Leeds" and table["p1"]["city_source"] == "shopify"
    assert table["p2"]["birth_date"] == dt.date(1980, 2, 3) and table["p3"]["email"] is None
    assert '"shopify_id":"7001"' in table["p1"]["extensions"].replace(" ", "")
    assert run_sync(lake, shipped["profile_to_postgres"], CONFIG).operations == 0


def test_the_dry_run_prints_the_plan_without_values_and_sends_nothing(tmp_path, monkeypatch,
                                                                       capsys):
    from c360_assets import cli

    lake = tmp_path / "lake"
    write_profiles(lake, [person("p1", email="secret.ann@example.org", last_name="Ames"),
                          person("p2", email="secret.ann@example.org", last_name="Bell"),
                          person("p3", email="cara@example.org", last_name="Cole")])
    sync_spec(tmp_path / "syncs", "files", {
        "model": "customer_profile_v2",
        "destination": {"type": "file", "path": str(tmp_path / "out")},
        "match_on": [{"field": "email", "from": "email"}], "fields": {"name": "last_name"}})
    monkeypatch.setenv("C360_SYNCS_DIR", str(tmp_path / "syncs"))
    assert cli.main(["sync", "--list"]) == 0
    assert "files" in capsys.readouterr().out
    assert cli.main(["sync", "files", "--dry-run", "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert "creates          1" in out and "duplicate_match_key" in out
    assert "dry run: nothing sent" in out
    assert "secret.ann" not in out and "Ames" not in out and "cara@" not in out
    assert not (tmp_path / "out").exists() and not st.log_table(lake, "runs").exists()
    assert cli.main(["sync", "nope", "--lake", str(lake)]) == 2
    assert "no sync named 'nope'" in capsys.readouterr().err


def test_a_destination_that_is_down_stops_the_run_instead_of_halving_forever(tmp_path,
                                                                            salesforce):
    from c360_assets.activation.engine import SyncAborted

    lake = tmp_path / "lake"
    sf = salesforce(error_p=1.0)  # every request answers 503
    write_profiles(lake, [person(f"p{i}", email=f"u{i}@example.org", last_name="L")
                          for i in range(50)])
    spec = sf_spec(tmp_path, destination={**SALESFORCE_SYNC["destination"], "batch_rows": 10})
    with pytest.raises(SyncAborted, match="looks down"):
        run_sync(lake, spec, CONFIG, sleep=no_sleep)
    assert sf.requests <= 3 * 4 + 1
    runs = pl.read_delta(str(st.log_table(lake, "runs")))
    assert runs.select("status", "acknowledged").row(0) == ("aborted", 0)
    sf.error_p = 0.0  # back up: the next run sends everything
    assert run_sync(lake, spec, CONFIG).acknowledged == 50


def test_hostile_values_reach_postgres_exactly(tmp_path, pg_dsn):
    """Quotes, commas, newlines, backslashes, the COPY null marker as text, non-Latin
    scripts, emoji and a long value all arrive exactly; a null stays a null."""
    lake = tmp_path / "lake"
    spec = sync_spec(tmp_path / "syncs", "mirror", PG_SYNC)
    hostile = ['O\'Brien, "Jr."', "line one\nline two\r\n", "back\\slash \\N", "\\N",
               "Zoë Ångström 王小明 Дмитрий 🙂", "x" * 5000, "", "NULL", "tab\there"]
    write_profiles(lake, [person(f"p{i}", email=f"u{i}@example.org", first_name=v,
                                 city=None if i % 2 else v) for i, v in enumerate(hostile)])
    report = run_sync(lake, spec, CONFIG)
    assert (report.acknowledged, report.rejected) == (len(hostile), 0)
    table = pg_rows(pg_dsn)
    for i, v in enumerate(hostile):
        assert table[f"p{i}"]["first_name"] == v
        assert table[f"p{i}"]["city"] == (None if i % 2 else v)
    assert run_sync(lake, spec, CONFIG).operations == 0


@pytest.mark.parametrize("change, where", [
    ({"filter": "no_such_column = 1"}, "filter"),
    ({"columns": {"k": "extensions['x'] +* 1"}}, "columns.k"),
    ({"when": "city_source !== 'sap'"}, "when"),
    ({"fields": {"name": {"from": "nope"}}}, "fields.name.from: column 'nope'"),
    ({"consent": "sms_marketing"}, "consent: 'sms_marketing' is not a purpose"),
    ({"model": "no_such_relation"}, "gold/no_such_relation is not built"),
    ({"join": {"consent_status": ["email"]}}, "join.consent_status"),
])
def test_a_sync_that_cannot_run_says_which_key_is_wrong(tmp_path, change, where):
    from c360_assets.lib.config import ConfigError

    lake = tmp_path / "lake"
    write_profiles(lake, [person("p1", email="a@example.org")])
    write_consent(lake, [("p1", True, dt.datetime.now(dt.UTC))])
    spec = sync_spec(tmp_path / "syncs", "bad", {
        "model": "customer_profile_v2",
        "destination": {"type": "file", "path": str(tmp_path / "out")},
        "match_on": [{"field": "email", "from": "email"}], "fields": {"name": "last_name"},
        **change})
    with pytest.raises(ConfigError) as err:
        run_sync(lake, spec, CONFIG)
    assert where in str(err.value)
    assert not (tmp_path / "out").exists()
