"""The privacy ledger under `<lake>/privacy/`: requests, suppression list and receipts.

None of its tables holds a raw identifier: an e-mail, phone, person id or source record
is kept as a keyed HMAC-SHA-256 (`fingerprint`) under the lake's privacy key, so the
ledger can answer "was this customer erased?" for a value you hold, and cannot be read
back into values by anyone without the key (an unkeyed hash of an e-mail can be reversed
with a dictionary).

The key: `$C360_PRIVACY_KEY` (any string; keep it in your secret store), else a random
key created on first use in `<lake>/_ops/privacy.key` (mode 0600). A key kept inside the
lake protects the ledger from readers of its tables, not from readers of the whole lake:
set the variable in production. Changing the key makes earlier fingerprints unmatchable
(the suppression list stops matching): keep it for the lake's lifetime.

Tables (Delta):
* `requests`: one row per request and status change (received, applied, proven,
  failed), with when it was received and when it is due (`privacy.request_due_days`
  later, 30 by default: GDPR's month).
* `suppression`: fingerprints of erased identifiers (kind, fingerprint, request id);
  bronze drops landed rows that match one (`suppress.py`). `c360 unsuppress` removes
  a customer's fingerprints when they return and consent again.
* `receipts`: one row per proven erasure (what was touched, what was scanned, hits).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

import polars as pl

from c360_assets.lib import delta, layout

KEY_ENV = "C360_PRIVACY_KEY"
DUE_DAYS = 30  # c360.yaml privacy.request_due_days

REQUESTS_SCHEMA = pl.Schema({
    "request_id": pl.String(), "kind": pl.String(), "fingerprint": pl.String(),
    "status": pl.String(), "origin": pl.String(), "at": pl.Datetime("us", "UTC"),
    "received_at": pl.Datetime("us", "UTC"), "due_at": pl.Datetime("us", "UTC"),
    "detail": pl.String()})
SUPPRESSION_SCHEMA = pl.Schema({
    "kind": pl.String(), "fingerprint": pl.String(), "request_id": pl.String(),
    "added_at": pl.Datetime("us", "UTC")})
RECEIPTS_SCHEMA = pl.Schema({
    "request_id": pl.String(), "proven_at": pl.Datetime("us", "UTC"),
    "records_erased": pl.Int64(), "persons_erased": pl.Int64(),
    "rows_deleted": pl.Int64(), "bytes_rewritten": pl.Int64(),
    "files_scanned": pl.Int64(), "bytes_scanned": pl.Int64(), "targets": pl.Int64(),
    "hits": pl.Int64(), "seconds": pl.Float64(), "receipt": pl.String()})


def folder(lake: Path) -> Path:
    return Path(lake) / "privacy"


def table(lake: Path, name: str) -> Path:
    return folder(lake) / name


def key_file(lake: Path) -> Path:
    return Path(lake) / layout.OPS / "privacy.key"


def privacy_key(lake: Path) -> bytes:
    """The HMAC key (see the module docstring)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    path = key_file(lake)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()


def fingerprint(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA-256 of `kind:value` (the value normalised: see `scope.normalised`)."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def fingerprints(key: bytes, kind: str, values: pl.Series) -> pl.Series:
    """`fingerprint` of each value (nulls stay null), computed once per distinct value."""
    distinct = values.drop_nulls().unique()
    mapping = {v: fingerprint(key, kind, v) for v in distinct.to_list()}
    return values.replace_strict(mapping, default=None, return_dtype=pl.String)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _read(lake: Path, name: str, schema: pl.Schema) -> pl.DataFrame:
    path = table(lake, name)
    return delta.read_table(path) if delta.table_exists(path) else pl.DataFrame(schema=schema)


def _append(lake: Path, name: str, rows: pl.DataFrame) -> None:
    delta.write_rows(table(lake, name), rows, append=delta.table_exists(table(lake, name)),
                     partition_col=None)


def record_status(lake: Path, request_id: str, kind: str, fp: str, status: str, origin: str,
                  received_at: dt.datetime, detail: dict | None = None,
                  due_days: int = DUE_DAYS) -> None:
    _append(lake, "requests", pl.DataFrame([{
        "request_id": request_id, "kind": kind, "fingerprint": fp, "status": status,
        "origin": origin, "at": now(), "received_at": received_at,
        "due_at": received_at + dt.timedelta(days=due_days),
        "detail": json.dumps(detail or {}, sort_keys=True)}], schema=REQUESTS_SCHEMA))


def requests(lake: Path) -> pl.DataFrame:
    """Every request's latest status."""
    rows = _read(lake, "requests", REQUESTS_SCHEMA)
    return rows.sort("at").group_by("request_id", maintain_order=True).last()


def suppression(lake: Path) -> pl.DataFrame:
    return _read(lake, "suppression", SUPPRESSION_SCHEMA)


def add_suppressed(lake: Path, request_id: str, entries: set[tuple[str, str]]) -> int:
    """Add (kind, fingerprint) entries not already on the list; how many were new."""
    have = set(suppression(lake).select("kind", "fingerprint").iter_rows())
    new = sorted(entries - have)
    if new:
        at = now()
        _append(lake, "suppression", pl.DataFrame(
            [{"kind": k, "fingerprint": f, "request_id": request_id, "added_at": at}
             for k, f in new], schema=SUPPRESSION_SCHEMA))
    return len(new)


def remove_suppressed(lake: Path, fingerprints_: set[str]) -> int:
    """Take fingerprints off the list (a customer who returned and consented again)."""
    rows = suppression(lake)
    keep = rows.filter(~pl.col("fingerprint").is_in(list(fingerprints_)))
    if keep.height == rows.height:
        return 0
    delta.write_rows(table(lake, "suppression"), keep, append=False, partition_col=None)
    return rows.height - keep.height


def add_receipt(lake: Path, receipt: dict) -> None:
    _append(lake, "receipts", pl.DataFrame([{
        "request_id": receipt["request_id"], "proven_at": now(),
        "records_erased": receipt["records_erased"], "persons_erased": receipt["persons_erased"],
        "rows_deleted": receipt["rows_deleted"], "bytes_rewritten": receipt["bytes_rewritten"],
        "files_scanned": receipt["files_scanned"], "bytes_scanned": receipt["bytes_scanned"],
        "targets": receipt["targets"], "hits": receipt["hits"], "seconds": receipt["seconds"],
        "receipt": json.dumps(receipt, sort_keys=True, default=str)}], schema=RECEIPTS_SCHEMA))


def receipts(lake: Path) -> pl.DataFrame:
    return _read(lake, "receipts", RECEIPTS_SCHEMA)


def latest_receipts(lake: Path, since: dt.datetime) -> list[dict]:
    """The receipts proven (or failed) at or after `since`, as dicts."""
    rows = receipts(lake).filter(pl.col("proven_at") >= since)
    return [json.loads(r) for r in rows.sort("proven_at").get_column("receipt").to_list()]
