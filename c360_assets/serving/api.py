"""`c360 serve`: the profile API and the profile explorer over the serving store.

Starlette on uvicorn. Every answer is JSON (errors too: `{"error": {"status", "code",
"message", "field"}, "request_id"}`); every request gets an id (`X-Request-ID`, taken
from the request when it is a plain token, else made) that its log line and its answer
carry. Log lines name the route's template and the query parameters' names, never a
value: no e-mail, phone or id reaches the log.

With API keys configured (`serving.api_keys_env`, `serving.api_keys_file`), every
`/v1/` request needs one (`Authorization: Bearer <key>` or `X-API-Key: <key>`); keys
are read-only (the API has no write). The explorer page (`/`) and `/openapi.json` hold
no customer data and are open; the page asks for a key when the API answers 401.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from c360_assets.bronze import catalogue
from c360_assets.bronze.contract import SourceSpec
from c360_assets.lib.config import load_config
from c360_assets.serving import reader as rd
from c360_assets.serving.openapi import document as openapi_document
from c360_assets.serving.store import StoreError

log = logging.getLogger("c360.serve")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
EXPORT_LIMIT = 10_000_000


class Keys:
    """API keys, kept as SHA-256 digests and compared in constant time."""

    def __init__(self, keys: list[str]) -> None:
        self.digests = [hashlib.sha256(k.encode()).digest() for k in keys if k]

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def allows(self, key: str | None) -> bool:
        if not key:
            return False
        digest = hashlib.sha256(key.encode()).digest()
        ok = False
        for d in self.digests:  # no early exit: the time does not tell which matched
            ok |= hmac.compare_digest(d, digest)
        return ok


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error(status: int, code: str, message: str, request_id: str,
          field: str | None = None, headers: dict[str, str] | None = None) -> JSON:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field:
        body["field"] = field
    return JSON({"error": body, "request_id": request_id}, status_code=status,
                headers=headers)


def _rid(request: Request) -> str:
    return request.scope.get("c360.request_id", "")


def _store(request: Request) -> rd.Store:
    return request.app.state.stores.get()


def _headers(store_version: str) -> dict[str, str]:
    return {"X-C360-Store-Version": store_version, "Cache-Control": "no-store"}


def _answer(body: dict[str, Any], store: rd.Store) -> JSON:
    body["store_version"] = store.version
    return JSON(body, headers=_headers(store.version))


def _resolve(store: rd.Store, raw: str, request: Request
             ) -> tuple[str, dict[str, Any], str, dict[str, Any]] | JSON:
    """(person id, doc, changed_at, redirect note) for a person id, following a merged
    id to its survivor; or the 404 to answer."""
    person = rd.person_id(raw)
    note: dict[str, Any] = {}
    found = store.doc(person)
    if found is None:
        survivor = store.survivor(person)
        if survivor is not None:
            found = store.doc(survivor)
            note = {"requested_id": person, "merged_into": survivor,
                    "note": f"{person} was merged into {survivor}"}
            person = survivor
    if found is None:
        gone = store.tombstone(person)
        message = (f"no profile {person}: its records were deleted (it is no longer served "
                   f"since {gone['removed_at']})" if gone else f"no profile {person}")
        return error(404, "not_found", message, _rid(request))
    doc, changed_at = found
    return person, doc, changed_at, note


def _person_endpoint(render: Any) -> Any:
    """An endpoint answering for `{person_id}` (a merged id: its survivor) with
    `render(store, person, doc, changed_at)`."""

    async def endpoint(request: Request) -> Response:
        store = _store(request)
        got = _resolve(store, request.path_params["person_id"], request)
        if isinstance(got, Response):
            return got
        person, doc, changed_at, note = got
        return _answer({**render(store, person, doc, changed_at), **note}, store)

    return endpoint


get_profile = _person_endpoint(lambda store, _, doc, changed_at: rd.profile(store, doc, changed_at))
get_sources = _person_endpoint(lambda store, person, doc, _: rd.sources(store, person, doc))


async def find_profiles(request: Request) -> Response:
    store = _store(request)
    kind, value = rd.identifier(dict(request.query_params), request.app.state.lookup_keys)
    matches = store.lookup(kind, value)
    if not matches and kind == "record":  # a form of the id the source's users also quote
        source, _, record = value.partition(":")
        key = rd.record_key(source, record, request.app.state.lookup_keys[source])
        matches = store.lookup("record_key", key) if key else []
    profiles = []
    for m in matches:
        found = store.doc(m.person_id)
        if found is None:
            continue
        body = rd.profile(store, *found)
        golden = kind in ("email", "phone") and value in (
            body["fields"].get(kind, {}).get("value"),
            body["fields"].get("mobile_phone", {}).get("value") if kind == "phone" else None)
        body["match"] = {"current": m.current, "golden": bool(golden)}
        profiles.append(body)
    if not profiles:
        return error(404, "not_found", f"no profile with that {kind.replace('_', ' ')}",
                     _rid(request))
    profiles.sort(key=lambda p: (not p["match"]["golden"], not p["match"]["current"],
                                 p["person_id"]))
    return _answer({"query": {"kind": kind, "value": value}, "count": len(profiles),
                    "profiles": profiles}, store)


async def export(request: Request) -> Response:
    params = dict(request.query_params)
    unknown = sorted(set(params) - {"format", "changed_since", "limit"})
    if unknown:
        raise rd.BadInput(unknown[0], f"unknown parameter {unknown[0]!r} (format, "
                                      "changed_since, limit)")
    fmt = params.get("format", "ndjson")
    if fmt not in ("ndjson", "parquet"):
        raise rd.BadInput("format", "format is ndjson or parquet")
    changed_since = rd.since(params.get("changed_since"))
    limit = None
    if "limit" in params:
        if not (params["limit"].isascii() and params["limit"].isdigit()) \
                or not 0 < int(params["limit"]) <= EXPORT_LIMIT:
            raise rd.BadInput("limit", f"limit is a whole number from 1 to {EXPORT_LIMIT}")
        limit = int(params["limit"])
    path = _store(request).path
    job = await run_in_threadpool(rd.Export, path, changed_since, limit)
    body = _ndjson(job) if fmt == "ndjson" else _parquet(job)
    return StreamingResponse(
        body, media_type="application/x-ndjson" if fmt == "ndjson"
        else "application/vnd.apache.parquet",
        headers={**_headers(job.version), "Content-Disposition":
                 f'attachment; filename="profiles-{job.version}.{fmt}"'})


def _ndjson(job: rd.Export) -> Iterator[bytes]:
    try:
        for rows in job.batches():
            yield rd.ndjson_lines(rows)
        for person, removed_at, merged_into in job.tombstones():
            yield rd.tombstone_line(person, removed_at, merged_into)
    finally:
        job.close()


class _Sink:
    """A write-only file that hands over what was written so far."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _parquet(job: rd.Export) -> Iterator[bytes]:
    """Row groups of up to 10,000 profiles, each sent as soon as it is written."""
    sink = _Sink()
    stream = pa.PythonFile(sink, mode="w")
    writer = None
    try:
        for rows in job.batches(10_000):
            table = rd.parquet_table(rows, job.columns)
            if writer is None:
                writer = pq.ParquetWriter(stream, table.schema, compression="zstd")
            writer.write_table(table)
            yield sink.take()
        if writer is None:  # nothing changed: an empty file with the schema
            table = rd.parquet_table([], job.columns)
            writer = pq.ParquetWriter(stream, table.schema, compression="zstd")
        writer.close()
        yield sink.take()
    finally:
        job.close()


async def store_info(request: Request) -> Response:
    store = _store(request)
    meta = store.meta
    return _answer({"version": store.version, "built_at": meta.get("built_at"),
                    "profile_resolved_at": meta.get("profile_resolved_at") or None,
                    "persons": int(meta.get("persons", 0)),
                    "identifiers": int(meta.get("identifiers", 0)),
                    "gold_versions": orjson.loads(meta.get("gold_versions", "{}")),
                    "sources": store.sources}, store)


async def health(request: Request) -> Response:
    try:
        version = _store(request).version
    except StoreError:
        return JSON({"status": "no store"}, status_code=503)
    return JSON({"status": "ok", "store_version": version})


async def openapi(request: Request) -> Response:
    return JSON(openapi_document(request.app.state.keys.enabled))


async def explorer(request: Request) -> Response:
    page = resources.files("c360_assets.serving").joinpath("explorer.html").read_text("utf-8")
    return HTMLResponse(page, headers={
        "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; "
                                   "style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


class Context:
    """Request ids, API keys, JSON errors and one log line per request (no values)."""

    def __init__(self, app: Any, keys: Keys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope["c360.request_id"] = rid
        status = 500

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            if scope["path"].startswith("/v1/") and self.keys.enabled:
                headers = dict(scope.get("headers") or [])
                auth = headers.get(b"authorization", b"").decode("latin-1")
                key = (auth[7:].strip() if auth.lower().startswith("bearer ")
                       else headers.get(b"x-api-key", b"").decode("latin-1").strip())
                if not self.keys.allows(key):
                    response = error(401, "unauthorized",
                                     "a valid API key is needed (Authorization: Bearer <key> "
                                     "or X-API-Key: <key>)", rid,
                                     headers={"WWW-Authenticate": 'Bearer realm="c360"'})
                    await response(scope, receive, sending)
                    return
            try:
                await self.app(scope, receive, sending)
            except Exception as exc:  # noqa: BLE001 - answered (500, _crash) where it could
                # be; logged here by its class only: uvicorn would log its message, which
                # may hold a value.
                log.error("%s %s failed: %s", rid, scope.get("method"), type(exc).__name__)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(no route)"
            names = sorted({k.decode("latin-1") for k, _, _ in
                            (p.partition(b"=") for p in scope.get("query_string", b"").split(b"&"))
                            if k})
            log.info("%s %s %s%s %d %.2fms", rid, scope.get("method"), template,
                     f" ?{','.join(n for n in names if re.fullmatch(r'[a-z_]{1,20}', n))}"
                     if names else "", status, (time.perf_counter() - t0) * 1000)


def _bad_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, rd.BadInput)
    return error(422, "invalid", str(exc), _rid(request), exc.field)


def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    message = {404: "no such endpoint (see /openapi.json)",
               405: "the API is read-only: GET only"}.get(exc.status_code, str(exc.detail))
    return error(exc.status_code, code, message, _rid(request),
                 headers=getattr(exc, "headers", None))


def _no_store(request: Request, exc: Exception) -> Response:
    return error(503, "no_store", "no serving store yet: build it with c360 materialize",
                 _rid(request))


def _crash(request: Request, exc: Exception) -> Response:
    return error(500, "internal", "internal error (the server log has the request id)",
                 _rid(request))


def create_app(lake: Path, keys: Keys, sources: tuple[SourceSpec, ...] | None = None) -> Any:
    """The ASGI app over `lake`'s serving store; `sources`: the catalogue (default: the
    configured one), for lookups by source record id."""
    routes = [
        Route("/v1/profiles", find_profiles, methods=["GET"]),
        Route("/v1/profiles/{person_id}", get_profile, methods=["GET"]),
        Route("/v1/profiles/{person_id}/sources", get_sources, methods=["GET"]),
        Route("/v1/export", export, methods=["GET"]),
        Route("/v1/store", store_info, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/", explorer, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={
        rd.BadInput: _bad_input, HTTPException: _http, StoreError: _no_store,
        Exception: _crash})
    app.state.stores = rd.Stores(lake)
    if sources is None:
        sources = catalogue(load_config())
    app.state.lookup_keys = {s.name: s.lookup_key for s in sources}
    app.state.keys = keys
    return Context(app, keys)
