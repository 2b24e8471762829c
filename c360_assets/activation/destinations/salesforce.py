"""Salesforce REST API (and APIs that behave like it): sObject Collections.

* create: `PATCH /services/data/<v>/composite/sobjects/<Object>/<key field>` - an upsert
  on the match key as external id, 200 records per call, `allOrNone: false`: each
  record answers on its own (`success`, `created`, `errors`). A key that matches several
  records is that record's error (Salesforce's single-record upsert answers HTTP 300),
  never a pick.
* update, repoint, flag: `PATCH /composite/sobjects` by record `Id`, with only the
  changed fields (and the key when it moved).
* delete: `DELETE /composite/sobjects?ids=...&allOrNone=false`.
* lookup: `GET /sobjects/<Object>/<key field>/<value>`: 200 (one record), 404, or 300
  (several: not unique, treated as not found and reported).

The instance URL and the bearer token come from `url_env` and `token_env`. 429 answers
with `Retry-After` pause the token bucket; 5xx, timeouts and dropped connections are
transient (a create's outcome is then unknown: the engine looks it up before resending).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import polars as pl
import requests
from pydantic import Field

from c360_assets.activation.destinations.base import (
    NOT_FOUND,
    OK,
    REJECTED,
    BatchRejected,
    Destination,
    DestinationConfig,
    DestinationError,
    Outcome,
    RateLimited,
    TokenBucket,
    Transient,
    sent_fields,
)


def _json_value(value):  # noqa: ANN001, ANN202
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def retry_after(response: requests.Response, default: float = 1.0) -> float:
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = dt.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC)
        except ValueError:
            return default
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _answer(response: requests.Response):  # noqa: ANN202
    """The JSON of a 2xx answer; an unreadable one leaves the outcome unknown."""
    try:
        return response.json()
    except ValueError as exc:
        raise Transient(f"HTTP {response.status_code} with an unreadable body: "
                        f"{response.text[:100]!r}", uncertain=True) from exc


def check(response: requests.Response, what: str) -> None:
    """Raise the engine's exception for a failed answer."""
    code = response.status_code
    if code == 429:
        raise RateLimited(retry_after(response), f"{what}: HTTP 429")
    if code >= 500:
        raise Transient(f"{what}: HTTP {code}", uncertain=True)
    if code in (401, 403):
        raise DestinationError(f"{what}: HTTP {code} (check the token): {response.text[:200]}")
    if code >= 400:
        raise BatchRejected(f"{what}: HTTP {code}: {response.text[:300]}")


class Config(DestinationConfig):
    type: Literal["salesforce"]
    url_env: str = "C360_SALESFORCE_URL"
    token_env: str = "C360_SALESFORCE_TOKEN"
    object: str = "Contact"
    api_version: str = "v60.0"
    batch_rows: int = Field(200, ge=1, le=200)  # sObject Collections take 200 at most
    rate_per_s: float = Field(20.0, gt=0)  # requests per second (token bucket)
    burst: int = Field(5, ge=1)
    timeout_s: float = Field(30.0, gt=0)


class SalesforceDestination(Destination):
    supports_lookup = True

    def __init__(self, spec):  # noqa: ANN001
        super().__init__(spec)
        d = spec.destination
        url, token = os.environ.get(d.url_env), os.environ.get(d.token_env)
        if not url or not token:
            raise DestinationError(f"{spec.origin}: destination: set ${d.url_env} (instance URL) "
                                   f"and ${d.token_env} (bearer token)")
        self.base = url.rstrip("/") + f"/services/data/{d.api_version}"
        self.object = d.object
        self.timeout = d.timeout_s
        self.batch_rows = d.batch_rows
        self.bucket = TokenBucket(d.rate_per_s, d.burst)
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/json"})

    def _call(self, method: str, url: str, what: str, answers: tuple[int, ...] = (),
              **kwargs) -> requests.Response:
        """`answers`: status codes that are answers here, not failures (a lookup's 300,
        404)."""
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise Transient(f"{what}: {type(exc).__name__}", uncertain=True) from exc
        if response.status_code in answers:
            return response
        check(response, what)
        return response

    def _record(self, row: dict, fields: list[str]) -> dict:
        body = {"attributes": {"type": self.object}}
        body.update({f: _json_value(v) for f, v in sent_fields(row, fields).items()})
        return body

    def write(self, op: str, rows: pl.DataFrame, fields: list[str], *,
              update_only: bool = False) -> list[Outcome]:
        dicts = rows.to_dicts()
        if op == "delete":
            ids = [r["_dest_id"] for r in dicts]
            response = self._call("DELETE", f"{self.base}/composite/sobjects",
                                  "delete", params={"ids": ",".join(ids), "allOrNone": "false"})
            return self._outcomes(_answer(response), ids)
        if op == "create" and update_only:
            found = self.lookup(dicts[0]["_key_field"], [r["_key"] for r in dicts])
            hits = [dict(r, _dest_id=found[r["_key"]]) for r in dicts if r["_key"] in found]
            done = dict(zip([r["_person"] for r in hits],
                            self.write("update", pl.DataFrame(hits, schema=rows.schema), fields),
                            strict=True)) if hits else {}
            return [done.get(r["_person"], Outcome(NOT_FOUND)) for r in dicts]
        if op == "create":
            key_field = dicts[0]["_key_field"]
            records = [{**self._record(r, fields), key_field: r["_key"]} for r in dicts]
            response = self._call(
                "PATCH", f"{self.base}/composite/sobjects/{self.object}/{quote(key_field)}",
                "upsert", json={"allOrNone": False, "records": records})
            return self._outcomes(_answer(response), [None] * len(dicts))
        records = []
        for r in dicts:
            body = {**self._record(r, fields), "id": r["_dest_id"]}
            if op == "flag":
                body[self.spec.merges.flag_field] = r["_merged_into"]
            elif r["_key"] != r.get("_old_key") or r["_key_field"] != r.get("_old_key_field"):
                body[r["_key_field"]] = r["_key"]
            records.append(body)
        response = self._call("PATCH", f"{self.base}/composite/sobjects", "update",
                              json={"allOrNone": False, "records": records})
        return self._outcomes(_answer(response), [r["_dest_id"] for r in dicts])

    @staticmethod
    def _outcomes(results: list[dict], ids: list[str | None]) -> list[Outcome]:
        if not isinstance(results, list) or len(results) != len(ids):
            raise BatchRejected(f"unexpected answer: {str(results)[:200]}")
        out = []
        for result, known in zip(results, ids, strict=True):
            if result.get("success"):
                out.append(Outcome(OK, result.get("id") or known))
                continue
            errors = result.get("errors") or [{}]
            codes = {e.get("statusCode") for e in errors}
            message = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
            if codes & {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"}:
                out.append(Outcome(NOT_FOUND, known, message))
            else:
                out.append(Outcome(REJECTED, known, message))
        return out

    def lookup(self, key_field: str, keys: list[str]) -> dict[str, str]:
        found = {}
        for key in keys:
            if self.bucket:
                self.bucket.take()
            url = f"{self.base}/sobjects/{self.object}/{quote(key_field)}/{quote(key, safe='')}"
            response = self._call("GET", url, "lookup", (300, 404), params={"fields": "Id"})
            if response.status_code == 200:
                record = _answer(response)
                if not isinstance(record, dict) or not record.get("Id"):
                    raise Transient(f"lookup: an answer without Id: {str(record)[:100]}",
                                    uncertain=False)
                found[key] = record["Id"]
            # 404: not there; 300: several records hold the key - not one to pick.
        return found

    def describe(self) -> str:
        return f"salesforce {self.object} at {self.base}"

    def close(self) -> None:
        self.session.close()


def connect(spec, lake: Path) -> SalesforceDestination:  # noqa: ANN001
    """The destination of `spec` (the engine's entry point to this module)."""
    return SalesforceDestination(spec)
