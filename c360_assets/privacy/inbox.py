"""The erasure request inbox: `<landing>/_privacy/requests/*.json`.

A request file holds one JSON object or a list of them, each naming exactly one of
`email`, `phone`, `person` (a c360 person id) or `record` (`<source>:<id>`), and
optionally a `request_id` (your ticket number; a random one otherwise):

    {"request_id": "TICKET-123", "email": "alex.doe@example.com"}

`c360 erase` writes one (mode 0600) and runs the pipeline; a connector, a ticketing
system or a person may drop files there for the next `c360 materialize` (or the
landing sensor's run) to pick up. A file is deleted once its erasure is proven: it holds
the identifier, which the ledger never keeps. A file that cannot be read is reported
with its name and left in place; the others are processed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from c360_assets.lib import layout
from c360_assets.privacy.scope import KINDS

FOLDER = ("_privacy", "requests")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True)
class Request:
    kind: str  # email | phone | person | record
    value: str
    request_id: str
    origin: str  # the inbox file it came from


def folder(landing: Path) -> Path:
    return Path(landing).joinpath(*FOLDER)


def _one(data: object, where: str, n: int | None) -> Request:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: {_entry(n)}expected an object with one of "
                         f"{', '.join(KINDS)}")
    named = [k for k in KINDS if data.get(k) not in (None, "")]
    unknown = sorted(set(data) - set(KINDS) - {"request_id"})
    if unknown:
        raise ValueError(f"{where}: {_entry(n)}unknown key(s) {', '.join(unknown)} "
                         f"(expected one of {', '.join(KINDS)} and optionally request_id)")
    if len(named) != 1:
        raise ValueError(f"{where}: {_entry(n)}name exactly one of {', '.join(KINDS)} "
                         f"(found {len(named)})")
    request_id = str(data.get("request_id") or "")
    if request_id and not _ID.match(request_id):
        raise ValueError(f"{where}: {_entry(n)}request_id must be 1-128 letters, digits "
                         "or _ . : - (it is kept in the ledger and in commit metadata)")
    kind = named[0]
    return Request(kind, str(data[kind]), request_id or _default_id(where, n), where)


def _entry(n: int | None) -> str:
    return "" if n is None else f"entry {n}: "


def _default_id(where: str, n: int | None) -> str:
    """The file's name, and the entry's number in a list."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", Path(where).stem)[:100]
    return stem if n is None else f"{stem}-{n}"


def read(path: Path) -> list[Request]:
    """The requests of one file; ValueError naming the file (and line and column of a
    JSON error) when it cannot be read."""
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: cannot be read: {exc}") from None
    if isinstance(data, list):
        return [_one(item, where, n) for n, item in enumerate(data)]
    return [_one(data, where, None)]


def pending(landing: Path) -> tuple[list[Request], list[Path], list[str]]:
    """(requests, the files they came from, problems) waiting in the inbox."""
    base = folder(landing)
    if not base.is_dir():
        return [], [], []
    requests: list[Request] = []
    files: list[Path] = []
    problems: list[str] = []
    for path in sorted(base.glob("*.json")):
        try:
            requests += read(path)
            files.append(path)
        except ValueError as exc:
            problems.append(f"erasure request {exc}")
    return requests, files, problems


def has_pending(landing: Path) -> bool:
    base = folder(landing)
    return base.is_dir() and any(base.glob("*.json"))


def submit(landing: Path, kind: str, value: str, request_id: str) -> Path:
    """Write one request file (mode 0600); its path."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if not _ID.match(request_id):
        raise ValueError("a request id must be 1-128 letters, digits or _ . : -")
    path = folder(landing) / f"{request_id}.json"
    layout.write_bytes_atomic(path, json.dumps({"request_id": request_id, kind: value}
                                               ).encode("utf-8"), mode=0o600)
    return path


def remove(files: list[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)
