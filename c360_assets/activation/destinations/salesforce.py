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
from pydantic import Field

from c360_assets.activation.destinations.base import (
    NOT_FOUND,
    OK,
    REJECTED,
    BatchRejected,
    DestinationConfig,
    DestinationError,
    Outcome,
    Transient,
    sent_fields,
)
from c360_assets.activation.destinations.http import HttpDestination, answer


def _json_value(value):  # noqa: ANN001, ANN202
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


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


class SalesforceDestination(HttpDestination):
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
        self.session.headers.update({"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/json"})

    def _record(self, row: dict, fields: list[str]) -> dict:
        body = {"attributes": {"type": self.object}}
        body.update({f: _json_value(v) for f, v in sent_fields(row, fields).items()})
        return body

    def write(self, op: str, rows: pl.DataFrame, fields: list[str], *,
              update_only: bool = False) -> list[Outcome]:
        dicts = rows.to_dicts()
        if op == "delete":
            ids = [r["_dest_id"] for r in dicts]
            response = self.call("DELETE", f"{self.base}/composite/sobjects",
                                  "delete", params={"ids": ",".join(ids), "allOrNone": "false"})
            return self._outcomes(answer(response), ids)
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
            response = self.call(
                "PATCH", f"{self.base}/composite/sobjects/{self.object}/{quote(key_field)}",
                "upsert", json={"allOrNone": False, "records": records})
            return self._outcomes(answer(response), [None] * len(dicts))
        records = []
        for r in dicts:
            body = {**self._record(r, fields), "id": r["_dest_id"]}
            if op == "flag":
                body[self.spec.merges.flag_field] = r["_merged_into"]
            elif r["_key"] != r.get("_old_key") or r["_key_field"] != r.get("_old_key_field"):
                body[r["_key_field"]] = r["_key"]
            records.append(body)
        response = self.call("PATCH", f"{self.base}/composite/sobjects", "update",
                              json={"allOrNone": False, "records": records})
        return self._outcomes(answer(response), [r["_dest_id"] for r in dicts])

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
            response = self.call("GET", url, "lookup", (300, 404), params={"fields": "Id"})
            if response.status_code == 200:
                record = answer(response)
                if not isinstance(record, dict) or not record.get("Id"):
                    raise Transient(f"lookup: an answer without Id: {str(record)[:100]}",
                                    uncertain=False)
                found[key] = record["Id"]
            # 404: not there; 300: several records hold the key - not one to pick.
        return found

    def describe(self) -> str:
        return f"salesforce {self.object} at {self.base}"


def connect(spec, lake: Path) -> SalesforceDestination:  # noqa: ANN001
    """The destination of `spec` (the engine's entry point to this module)."""
    return SalesforceDestination(spec)
