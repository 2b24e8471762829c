"""The API's OpenAPI 3.1 document (served at `/openapi.json`; a test holds it to the
routes the server has)."""

from __future__ import annotations

from typing import Any

_FIELD = {"type": "object", "properties": {
    "value": {"type": ["string", "null"]}, "source": {"type": ["string", "null"]},
    "updated_at": {"type": ["string", "null"], "format": "date-time",
                   "description": "the field's own change time (field time)"}}}

_PROFILE = {"type": "object", "required": ["person_id", "fields", "store_version"],
            "properties": {
    "person_id": {"type": "string", "pattern": "^p_[0-9a-f]{16}$"},
    "fields": {"type": "object", "additionalProperties": _FIELD,
               "description": "each golden field with its winning source and field time"},
    "consent": {"type": "array", "items": {"type": "object"},
                "description": "consent per purpose (gold consent_status)"},
    "extensions": {"type": "object", "additionalProperties": {"type": "string"}},
    "source_record_count": {"type": "integer"},
    "resolved_at": {"type": ["string", "null"], "format": "date-time"},
    "changed_at": {"type": "string", "format": "date-time",
                   "description": "when a store build first saw this content"},
    "requested_id": {"type": "string", "description": "only when a merged id was asked for"},
    "merged_into": {"type": "string", "description": "only when a merged id was asked for"},
    "store_version": {"type": "string"}}}

_ERROR = {"type": "object", "required": ["error", "request_id"], "properties": {
    "error": {"type": "object", "required": ["status", "code", "message"], "properties": {
        "status": {"type": "integer"}, "code": {"type": "string"},
        "message": {"type": "string"}, "field": {"type": "string"}}},
    "request_id": {"type": "string"}}}


def _errors(*codes: int) -> dict[str, Any]:
    what = {401: "no valid API key", 404: "no such profile", 422: "malformed input",
            503: "no serving store built yet"}
    return {str(c): {"description": what[c], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for c in codes}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string", **schema}}


_PERSON = {"name": "person_id", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^p_[0-9a-f]{16}$"},
           "description": "a person id; a merged (old) id answers with its survivor"}


def document(auth: bool) -> dict[str, Any]:
    secured = [{"bearer": []}, {"apiKey": []}] if auth else []
    ok = "application/json"
    paths = {
        "/v1/profiles/{person_id}": {"get": {
            "summary": "The golden record of a person, with provenance per field",
            "parameters": [_PERSON], "security": secured,
            "responses": {"200": {"description": "the profile", "content": {ok: {
                "schema": {"$ref": "#/components/schemas/Profile"}}}},
                **_errors(401, 404, 422, 503)}}},
        "/v1/profiles": {"get": {
            "summary": "Look a profile up by any identifier (normalised like silver)",
            "description": "Exactly one of email, phone (country: an ISO code for a "
                           "national number), anonymous_id, or source with id. Answers "
                           "every person holding it, those whose golden value it is first.",
            "parameters": [
                _query("email", "an e-mail address, any case and spacing"),
                _query("phone", "a phone number, international or with country"),
                _query("country", "ISO 3166 alpha-2 hint for a national phone number"),
                _query("anonymous_id", "a Segment anonymous id"),
                _query("source", "a source's name (GET /v1/store lists them)"),
                _query("id", "the source's record id (Salesforce 15 or 18 characters; "
                             "SAP with or without its client)")],
            "security": secured,
            "responses": {"200": {"description": "the matching profiles", "content": {ok: {
                "schema": {"type": "object", "properties": {
                    "query": {"type": "object"}, "count": {"type": "integer"},
                    "profiles": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Profile"}},
                    "store_version": {"type": "string"}}}}}},
                **_errors(401, 404, 422, 503)}}},
        "/v1/profiles/{person_id}/sources": {"get": {
            "summary": "The person's records, their current values, the links that hold "
                       "them together, each field's losing values and why",
            "parameters": [_PERSON], "security": secured,
            "responses": {"200": {"description": "records, links, fields, consent history",
                                  "content": {ok: {"schema": {"type": "object"}}}},
                          **_errors(401, 404, 422, 503)}}},
        "/v1/export": {"get": {
            "summary": "Every profile (or those changed since a time), streamed",
            "description": "NDJSON: one gold customer_profile_v2 row per line plus consent "
                           "and changed_at; with changed_since, persons gone since then "
                           "follow as {customer_id, deleted: true, removed_at, merged_into}. "
                           "Parquet: the same columns, typed (extensions and consent as "
                           "JSON text), no deletions.",
            "parameters": [
                _query("format", "ndjson (default) or parquet", enum=["ndjson", "parquet"]),
                _query("changed_since", "ISO 8601 time: profiles whose content changed "
                                        "after it (a store's built_at: what the builds "
                                        "after that one changed)", format="date-time"),
                _query("limit", "at most this many profiles (by person id)")],
            "security": secured,
            "responses": {"200": {"description": "the export", "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                               "format": "binary"}}}},
                **_errors(401, 422, 503)}}},
        "/v1/store": {"get": {
            "summary": "The serving store: version, build time, gold versions, counts",
            "security": secured,
            "responses": {"200": {"description": "store metadata",
                                  "content": {ok: {"schema": {"type": "object"}}}},
                          **_errors(401, 503)}}},
        "/healthz": {"get": {"summary": "Liveness and the store version (no customer data)",
                             "responses": {"200": {"description": "ok"},
                                           "503": {"description": "no store"}}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        "/": {"get": {"summary": "The profile explorer page",
                      "responses": {"200": {"description": "HTML"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "c360 profile API", "version": "1",
                 "description": "Read-only access to the golden customer profiles of the "
                                "last complete gold build."},
        "paths": paths,
        "components": {
            "schemas": {"Profile": _PROFILE, "Error": _ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
    }
