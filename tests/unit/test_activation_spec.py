"""Sync definitions: the shipped ones are valid against gold's contract; a mistake names
the file and the key. And the small pieces the engine leans on: the token bucket,
Retry-After, webhook signatures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import yaml

from c360_assets.activation.destinations import TokenBucket
from c360_assets.activation.destinations.http import retry_after
from c360_assets.activation.destinations.webhook import sign, verify_signature
from c360_assets.activation.spec import load_syncs, parse_sync
from c360_assets.lib.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"model": "customer_profile_v2",
        "destination": {"type": "file"},
        "match_on": [{"field": "email", "from": "email"}],
        "fields": {"name": "last_name"}}


def contract_columns() -> set[str]:
    models = yaml.safe_load((ROOT / "dbt_project/models/gold/_customer_profile.yml").read_text())
    profile = next(m for m in models["models"] if m["name"] == "customer_profile")
    return {c["name"] for c in profile["columns"]}


def test_the_shipped_syncs_are_valid_and_read_only_columns_gold_has():
    syncs = load_syncs(ROOT / "config" / "syncs")
    assert set(syncs) == {"profile_to_salesforce", "consent_to_marketing", "address_to_sap",
                          "profile_to_postgres"}
    columns = contract_columns()
    for name, spec in syncs.items():
        if spec.model != "customer_profile_v2":
            continue
        computed = set(spec.columns)
        assert spec.model_columns() - computed <= columns, name
    assert syncs["consent_to_marketing"].mappings()["unsubscribed"].invert
    assert syncs["address_to_sap"].mode == "update"
    assert syncs["profile_to_postgres"].limits.refuse_empty


@pytest.mark.parametrize("change, where", [
    ({"fields": {"Phone": {"from": "phone", "null_policy": "sometimes"}}}, "fields.Phone"),
    ({"fields": {"Phone": {"from": "phone", "value": "x"}}}, "exactly one of"),
    ({"mode": "replace"}, "mode"),
    ({"destination": {"type": "ftp"}}, "destination"),
    ({"match_on": []}, "match_on"),
    ({"schedule": "every hour"}, "not a cron expression"),
    ({"merges": {"loser": "flag"}}, "flag_field"),
    ({"merges": {"loser": "delete"}}, "mode: mirror"),
    ({"fields": {}}, "explicit"),
    ({"unknown_key": 1}, "unknown_key"),
])
def test_a_mistake_names_the_file_and_the_key(change, where):
    body = yaml.safe_dump({**GOOD, **change})
    with pytest.raises(ConfigError) as err:
        parse_sync(body, "config/syncs/mine.yaml", "mine")
    assert str(err.value).startswith("config/syncs/mine.yaml: ")
    assert where in str(err.value)


def test_a_bad_file_name_or_yaml_is_reported():
    with pytest.raises(ConfigError, match="not a sync name"):
        parse_sync(yaml.safe_dump(GOOD), "config/syncs/My Sync.yaml", "My Sync")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_sync("model: [", "config/syncs/x.yaml", "x")


def test_the_token_bucket_paces_and_holds():
    now = [0.0]
    slept = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(rate=2.0, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        bucket.take()
    assert now[0] == pytest.approx(2.0)  # 2 free, then 4 at 2 per second
    bucket.hold(10.0)  # a Retry-After holds everyone
    bucket.take()
    assert now[0] >= 12.0


def test_retry_after_in_seconds_or_as_a_date():
    def answer(value: str | None) -> requests.Response:
        r = requests.Response()
        r.status_code = 429
        if value is not None:
            r.headers["Retry-After"] = value
        return r

    assert retry_after(answer("7")) == 7.0
    assert retry_after(answer(None)) == 1.0
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after(answer(later)) <= 31


def test_webhook_signatures_verify_and_expire():
    body, secret = b'{"records": []}', b"k"
    stamp = str(int(time.time()))
    good = sign(secret, stamp, body)
    assert verify_signature(secret, stamp, body, good)
    assert not verify_signature(secret, stamp, body + b" ", good)
    assert not verify_signature(b"other", stamp, body, good)
    old = str(int(time.time()) - 3600)
    assert not verify_signature(secret, old, body, sign(secret, old, body))
