"""A webhook receiver on 127.0.0.1 (a real HTTP server) for the activation tests: it
checks each batch's HMAC signature (401 when wrong), applies the records as upserts on
their key (deletes and flags too), and can fail the ways receivers do: 429 with
Retry-After, 503, lost answers (applied, then the connection closed), and per-record
rejections of records whose fields hold `reject_value`. The marketing tool (consent)
and the SAP-like endpoint (addresses) of the tests are two of these."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler

from c360_assets.activation.destinations.webhook import verify_signature
from tests.servers.http import JsonServer


class WebhookReceiver(JsonServer):
    methods = ("POST",)
    path = "/hook"

    def __init__(self, secret: str, *, seed: int = 0, rate_limit_p: float = 0.0,
                 error_p: float = 0.0, lost_p: float = 0.0, reject_value: str | None = None):
        self.secret = secret.encode()
        self.records: dict[str, dict] = {}
        self.batches: list[dict] = []
        self.idempotency_keys: set[str] = set()
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.rate_limit_p, self.error_p, self.lost_p = rate_limit_p, error_p, lost_p
        self.reject_value = reject_value
        self.bad_signatures = 0
        self.faults = {"429": 0, "503": 0, "lost": 0}
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        body = self.body(h)
        if not verify_signature(self.secret, h.headers.get("X-C360-Timestamp", ""), body,
                                h.headers.get("X-C360-Signature", "")):
            self.bad_signatures += 1
            return self.send(h, 401, {"error": "bad signature"})
        with self.lock:
            roll = self.rng.random()
            if roll < self.rate_limit_p:
                self.faults["429"] += 1
                return self.send(h, 429, {"error": "slow down"}, {"Retry-After": "0.05"})
            if roll < self.rate_limit_p + self.error_p:
                self.faults["503"] += 1
                return self.send(h, 503, {"error": "unavailable"})
            batch = json.loads(body)
            rejected = self._apply(batch, h.headers.get("Idempotency-Key", ""))
            lose = self.rng.random() < self.lost_p
        if lose:
            self.faults["lost"] += 1
            return self.lose_answer(h)
        return self.send(h, 200, {"rejected": rejected})

    def _apply(self, batch: dict, idempotency_key: str) -> list[dict]:
        self.batches.append(batch)
        rejected = []
        for i, r in enumerate(batch["records"]):
            if self.reject_value is not None and self.reject_value in map(str, r["fields"].values()):
                rejected.append({"index": i, "error": f"invalid value {self.reject_value!r}"})
                continue
            if batch["op"] == "delete":
                self.records.pop(r["key"], None)
            elif batch["op"] == "flag":
                self.records.setdefault(r["key"], {})["merged_into"] = r["merged_into"]
            else:
                if r.get("previous_key") and r["previous_key"] != r["key"]:
                    self.records[r["key"]] = self.records.pop(r["previous_key"], {})
                if batch.get("update_only") and r["key"] not in self.records:
                    continue
                self.records.setdefault(r["key"], {}).update(r["fields"])
        self.idempotency_keys.add(idempotency_key)
        return rejected
