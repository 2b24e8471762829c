"""A Salesforce-like REST server on 127.0.0.1 for the activation tests: a real HTTP
server (threads, sockets) that behaves like the parts of Salesforce's REST API a sync
meets, including the ways it fails.

* `PATCH /services/data/<v>/composite/sobjects/<Object>/<ExtField>`: upsert of up to 200
  records on an external id; per-record results (`success`, `created`, `errors`); a key
  matching several records is that record's error (no write), as Salesforce's upsert
  answers 300 for it.
* `PATCH /services/data/<v>/composite/sobjects`: update by `id`; `DELETE ...?ids=`.
* `GET /services/data/<v>/sobjects/<Object>/<ExtField>/<value>`: 200, 404 or HTTP 300.
* Every write stamps `LastModifiedById` (the token's user) and `LastModifiedDate`.
* Faults, seeded: 429 with Retry-After, 503, "lost answers" (the write is committed,
  then the connection is closed without a response) and slow answers (committed, then
  answered after `slow_s`: past the client's timeout, a real timeout).
* `export_contacts`: the contacts as the Fivetran Salesforce connector lands them
  (`contact` table CSV), to close the loop through c360's own ingest.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import polars as pl

from tests.servers.http import JsonServer

# API field -> Fivetran column of the landed `contact` table.
LANDED = {"Id": "id", "AccountId": "account_id", "FirstName": "first_name",
          "LastName": "last_name", "Email": "email", "Phone": "phone",
          "MobilePhone": "mobile_phone", "MailingStreet": "mailing_street",
          "MailingCity": "mailing_city", "MailingPostalCode": "mailing_postal_code",
          "MailingCountry": "mailing_country", "Birthdate": "birthdate",
          "HasOptedOutOfEmail": "has_opted_out_of_email", "IsDeleted": "is_deleted",
          "MasterRecordId": "master_record_id", "CreatedDate": "created_date",
          "LastModifiedDate": "last_modified_date", "SystemModstamp": "system_modstamp"}
READ_ONLY = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "LastModifiedById",
             "IsDeleted"}


class SalesforceLike(JsonServer):
    methods = ("GET", "PATCH", "DELETE")

    def __init__(self, tokens: dict[str, str] | None = None, *, seed: int = 0,
                 rate_limit_p: float = 0.0, error_p: float = 0.0, lost_p: float = 0.0,
                 slow_p: float = 0.0, slow_s: float = 1.0, retry_after: float = 0.05,
                 clock=None):
        self.tokens = tokens or {"integration-token": "005INTEGRATION00001"}
        self.records: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.rate_limit_p, self.error_p, self.lost_p = rate_limit_p, error_p, lost_p
        # A write committed, then answered only after `slow_s` (past a client's timeout).
        self.slow_p, self.slow_s = slow_p, slow_s
        self.retry_after = retry_after
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.counter = 0
        self.requests = 0
        self.faults = {"429": 0, "503": 0, "lost": 0, "slow": 0}
        self.creates = 0
        super().__init__()

    # -- data -------------------------------------------------------------------------
    def _new_id(self) -> str:
        self.counter += 1
        return f"003C360{self.counter:011d}"

    def seed_landed(self, rows: list[dict]) -> None:
        """Preload contacts from landed `contact` rows (Fivetran column names): mapped
        columns become API fields, the others are kept under their landed names and
        exported as they came."""
        api = {col: name for name, col in LANDED.items()}

        def text(v):  # noqa: ANN001, ANN202
            if isinstance(v, dt.datetime):
                return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
            return v.isoformat() if isinstance(v, dt.date) else v

        self.seed([{api.get(k, k): text(v) for k, v in row.items() if k != "_fivetran_synced"}
                   for row in rows])

    def seed(self, records: list[dict]) -> None:
        """Preload contacts (API field names; `Id` given)."""
        now = self._stamp()
        for r in records:
            self.records[r["Id"]] = {"CreatedDate": now, "LastModifiedDate": now,
                                     "SystemModstamp": now, "IsDeleted": False,
                                     "LastModifiedById": "005ADMIN000000001", **r}

    def live(self) -> list[dict]:
        return [r for r in self.records.values() if not r.get("IsDeleted")]

    def matching(self, field: str, value: str) -> list[dict]:
        needle = str(value).lower()
        return [r for r in self.live() if r.get(field) is not None
                and str(r[field]).lower() == needle]

    def _stamp(self) -> str:
        return self.clock().strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    # -- HTTP ---------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        body = self.body(h)
        auth = h.headers.get("Authorization", "")
        user = self.tokens.get(auth.removeprefix("Bearer "))
        if user is None:
            return self.send(h, 401, [{"errorCode": "INVALID_SESSION_ID",
                                        "message": "Session expired or invalid"}])
        url = urlparse(h.path)
        with self.lock:
            self.requests += 1
            roll = self.rng.random()
            if roll < self.rate_limit_p:
                self.faults["429"] += 1
                return self.send(h, 429, [{"errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                                  {"Retry-After": f"{self.retry_after:g}"})
            if roll < self.rate_limit_p + self.error_p:
                self.faults["503"] += 1
                return self.send(h, 503, [{"errorCode": "SERVER_UNAVAILABLE"}])
            lose = method != "GET" and self.rng.random() < self.lost_p
            slow = method != "GET" and not lose and self.rng.random() < self.slow_p
            status, answer = self._route(method, url.path, parse_qs(url.query), body, user)
        if slow:  # committed; the answer comes after the client gave up
            self.faults["slow"] += 1
            time.sleep(self.slow_s)
        if lose:  # committed, but the answer never arrives
            self.faults["lost"] += 1
            return self.lose_answer(h)
        return self.send(h, status, answer)

    def _route(self, method: str, path: str, query: dict, body: bytes, user: str):  # noqa: ANN202
        m = re.fullmatch(r"/services/data/v[\d.]+/composite/sobjects/(\w+)/(\w+)", path)
        if method == "PATCH" and m:
            return 200, self._upsert(m[2], json.loads(body)["records"], user)
        if method == "PATCH" and re.fullmatch(r"/services/data/v[\d.]+/composite/sobjects", path):
            return 200, self._update(json.loads(body)["records"], user)
        if method == "DELETE" and re.fullmatch(r"/services/data/v[\d.]+/composite/sobjects", path):
            ids = query.get("ids", [""])[0].split(",")
            return 200, [self._delete(i) for i in ids]
        m = re.fullmatch(r"/services/data/v[\d.]+/sobjects/(\w+)/(\w+)/(.+)", path)
        if method == "GET" and m:
            hits = self.matching(m[2], unquote(m[3]))
            if not hits:
                return 404, [{"errorCode": "NOT_FOUND", "message": "not found"}]
            if len(hits) > 1:
                return 300, [f"/services/data/v60.0/sobjects/Contact/{r['Id']}" for r in hits]
            return 200, hits[0]
        return 404, [{"errorCode": "NOT_FOUND", "message": f"no route {method} {path}"}]

    def _write(self, record: dict, fields: dict, user: str) -> None:
        for k, v in fields.items():
            if k != "attributes" and k not in READ_ONLY:
                record[k] = v
        record["LastModifiedById"] = user
        record["LastModifiedDate"] = record["SystemModstamp"] = self._stamp()

    def _upsert(self, ext: str, records: list[dict], user: str) -> list[dict]:
        if len(records) > 200:
            return [{"success": False, "errors": [{"statusCode": "EXCEEDED_ID_LIMIT"}]}] * len(records)
        out = []
        for r in records:
            error = self._invalid(r)
            if error:
                out.append({"id": None, "success": False, "errors": [error]})
                continue
            hits = self.matching(ext, r.get(ext))
            if len(hits) > 1:
                out.append({"id": None, "success": False, "errors": [{
                    "statusCode": "DUPLICATE_EXTERNAL_ID", "fields": [ext],
                    "message": f"The external ID provided matches more than one record: "
                               f"{','.join(h['Id'] for h in hits)} (HTTP 300 on upsert)"}]})
                continue
            if hits:
                self._write(hits[0], r, user)
                out.append({"id": hits[0]["Id"], "success": True, "created": False, "errors": []})
                continue
            if not r.get("LastName"):
                out.append({"id": None, "success": False, "errors": [{
                    "statusCode": "REQUIRED_FIELD_MISSING", "message":
                    "Required fields are missing: [LastName]", "fields": ["LastName"]}]})
                continue
            new = {"Id": self._new_id(), "CreatedDate": self._stamp(), "IsDeleted": False}
            self._write(new, r, user)
            self.records[new["Id"]] = new
            self.creates += 1
            out.append({"id": new["Id"], "success": True, "created": True, "errors": []})
        return out

    @staticmethod
    def _invalid(r: dict) -> dict | None:
        email = r.get("Email")
        if email is not None and "@" not in str(email):
            return {"statusCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"],
                    "message": f"Email: invalid email address: {email}"}
        return None

    def _update(self, records: list[dict], user: str) -> list[dict]:
        out = []
        for r in records:
            record = self.records.get(r.get("id"))
            if record is None or record.get("IsDeleted"):
                out.append({"id": r.get("id"), "success": False, "errors": [{
                    "statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}]})
                continue
            error = self._invalid(r)
            if error:
                out.append({"id": r["id"], "success": False, "errors": [error]})
                continue
            self._write(record, {k: v for k, v in r.items() if k != "id"}, user)
            out.append({"id": r["id"], "success": True, "errors": []})
        return out

    def _delete(self, record_id: str) -> dict:
        record = self.records.get(record_id)
        if record is None or record.get("IsDeleted"):
            return {"id": record_id, "success": False, "errors": [{
                "statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}]}
        record["IsDeleted"] = True
        return {"id": record_id, "success": True, "errors": []}

    # -- the connector's view --------------------------------------------------------------
    def export_contacts(self, landing: Path, day: str, synced: dt.datetime) -> Path:
        """Every contact as the Fivetran connector lands `salesforce/contact` on `day`."""
        extra = sorted({k for r in self.records.values() for k in r
                        if k not in LANDED and k[:1].islower()})
        rows = []
        for r in self.records.values():
            row = {col: r.get(api) for api, col in LANDED.items()}
            row.update({k: r.get(k) for k in extra})
            row["_fivetran_synced"] = synced.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            rows.append({k: None if v is None else str(v).lower() if isinstance(v, bool)
                         else str(v) for k, v in row.items()})
        frame = pl.DataFrame(rows, schema={c: pl.String for c in [*LANDED.values(), *extra,
                                                                   "_fivetran_synced"]})
        frame = frame.with_columns(
            pl.col(c).str.replace(r"\+0000$", "Z")
            for c in ("created_date", "last_modified_date", "system_modstamp"))
        out = landing / "salesforce" / "contact" / day / "export_from_server.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.write_csv(out)
        return out
