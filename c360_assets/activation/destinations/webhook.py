"""A generic webhook: batches of JSON records, signed.

    POST <url>
    Content-Type: application/json
    X-C360-Timestamp: <unix seconds>
    X-C360-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>
    Idempotency-Key: <sync>:<batch id>
    {"sync": ..., "batch_id": ..., "op": "upsert|delete|flag",
     "records": [{"key_field", "key", "person_id", "fields": {...}, "merged_into"}]}

A 2xx acknowledges the batch; its body may name rejected records
(`{"rejected": [{"index": 3, "error": "..."}]}`). 429 + Retry-After, 5xx and timeouts
are handled by the engine; other 4xx reject the batch (halved to find the bad records).
Receivers treat records as upserts on `key`, so a batch resent after a lost answer
changes nothing more (the Idempotency-Key lets them drop it). Verify with
`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from pathlib import Path
from typing import Literal

import orjson
import polars as pl
from pydantic import Field

from c360_assets.activation.destinations.base import (
    OK,
    REJECTED,
    DestinationConfig,
    DestinationError,
    Outcome,
    sent_fields,
)
from c360_assets.activation.destinations.http import HttpDestination

MAX_SKEW_S = 300


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str,
                     now: float | None = None) -> bool:
    """What a receiver checks: the signature, and a timestamp within 5 minutes."""
    try:
        fresh = abs((now or time.time()) - int(timestamp)) <= MAX_SKEW_S
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class Config(DestinationConfig):
    type: Literal["webhook"]
    url_env: str
    secret_env: str  # HMAC-SHA256 key: X-C360-Signature: sha256=<hex> over ts + "." + body
    batch_rows: int = Field(500, ge=1, le=100_000)
    rate_per_s: float = Field(10.0, gt=0)
    burst: int = Field(5, ge=1)
    timeout_s: float = Field(30.0, gt=0)


class WebhookDestination(HttpDestination):
    def __init__(self, spec):  # noqa: ANN001
        super().__init__(spec)
        d = spec.destination
        url, secret = os.environ.get(d.url_env), os.environ.get(d.secret_env)
        if not url or not secret:
            raise DestinationError(f"{spec.origin}: destination: set ${d.url_env} (the URL) and "
                                   f"${d.secret_env} (the signing secret)")
        self.url, self.secret = url, secret.encode()

    def write(self, op: str, rows: pl.DataFrame, fields: list[str], *,
              update_only: bool = False) -> list[Outcome]:
        dicts = rows.to_dicts()
        kind = {"create": "upsert", "update": "upsert", "repoint": "upsert"}.get(op, op)
        records = [{"key_field": r["_key_field"], "key": r["_key"], "person_id": r["_person"],
                    "previous_key": r.get("_old_key"),
                    "fields": sent_fields(r, fields), "merged_into": r.get("_merged_into")}
                   for r in dicts]
        body = orjson.dumps({"sync": self.spec.name, "batch_id": uuid.uuid4().hex, "op": kind,
                             "update_only": update_only, "records": records},
                            option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-C360-Timestamp": stamp,
                   "X-C360-Signature": sign(self.secret, stamp, body),
                   "Idempotency-Key": f"{self.spec.name}:{hashlib.sha256(body).hexdigest()[:32]}"}
        response = self.call("POST", self.url, "webhook", data=body, headers=headers)
        rejected = {}
        if response.content:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            for item in (answer.get("rejected") or []) if isinstance(answer, dict) else []:
                rejected[int(item.get("index", -1))] = str(item.get("error", "rejected"))
        return [Outcome(REJECTED, r["_key"], rejected[i]) if i in rejected
                else Outcome(OK, r["_key"]) for i, r in enumerate(dicts)]

    def describe(self) -> str:
        return f"webhook {self.url}"


def connect(spec, lake: Path) -> WebhookDestination:  # noqa: ANN001
    """The destination of `spec` (the engine's entry point to this module)."""
    return WebhookDestination(spec)
