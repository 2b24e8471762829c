"""What changed in the landing zone: day-folder fingerprints and the ingest ledger.

Pure, Dagster-free. A day's fingerprint is a digest of every data file of the source's
tables for that landing day (table, name, size, modification time): a new file, a
rewritten file or a removed file changes it. The landing sensor compares fingerprints
with its cursor (what it saw last); the schedule compares them with the ingest ledger
(what bronze really ingested, written by the bronze asset after its Delta commits).
A day folder that disappears is never a change to act on: an unmounted or half-synced
landing root must not empty bronze.

The ledger also records, per day, the digest of the rules the day was typed with (the
contract's columns and the `bronze:` validation settings): bronze re-ingests a day only
when its files or those rules changed (`days_to_ingest`), so a run with nothing new
writes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from c360_assets.bronze.contract import SourceSpec, TableSpec
from c360_assets.bronze.landing import FORMATS, landed_days, outside_root, table_dir
from c360_assets.lib import delta, layout
from c360_assets.lib.config import BronzeConfig


def day_fingerprint(root: Path, source: SourceSpec, day: dt.date) -> str | None:
    """Digest of the day's data files across the source's tables (None: no files).

    Files bronze will not read (a symlink out of the landing root) are not data."""
    entries: list[str] = []
    for spec in source.tables:
        folder = table_dir(root, source.name, spec.name) / day.isoformat()
        if not folder.is_dir() or outside_root(root, folder):
            continue
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith((".", "_")) or not entry.is_file():
                    continue
                if entry.name.rsplit(".", 1)[-1].lower() not in FORMATS:
                    continue  # reported by the bronze asset, not data
                if entry.is_symlink() and outside_root(root, Path(entry.path)):
                    continue
                st = entry.stat()
                entries.append(f"{spec.name}/{entry.name}\t{st.st_size}\t{st.st_mtime_ns}")
    if not entries:
        return None
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]


def day_fingerprints(root: Path, source: SourceSpec, days: Iterable[dt.date]
                     ) -> dict[str, str | None]:
    """{landing day: fingerprint, None when it has no files} for `days`."""
    return {d.isoformat(): day_fingerprint(root, source, d) for d in days}


def scan_source(root: Path, source: SourceSpec, start: dt.date | None = None,
                end: dt.date | None = None) -> dict[str, str]:
    """{landing day: fingerprint} for every day folder with data files in [start, end]."""
    days, _problems = landed_days(root, source)  # layout problems: the bronze run reports them
    out: dict[str, str] = {}
    for day in days:
        if (start and day < start) or (end and day > end):
            continue
        fp = day_fingerprint(root, source, day)
        if fp is not None:
            out[day.isoformat()] = fp
    return out


def changed_days(seen: Mapping[str, str], now: Mapping[str, str]) -> list[dt.date]:
    """Days that are new, or whose fingerprint differs from `seen`."""
    return sorted(dt.date.fromisoformat(d) for d, fp in now.items() if seen.get(d) != fp)


def contiguous_ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """[2026-03-01, 2026-03-02, 2026-03-05] -> [(03-01, 03-02), (03-05, 03-05)]."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and day - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def range_digest(fingerprints: Mapping[str, str], first: dt.date, last: dt.date) -> str:
    """One digest for the fingerprints of the days in a range (for run keys)."""
    items = sorted((d, fp) for d, fp in fingerprints.items()
                   if first.isoformat() <= d <= last.isoformat())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:12]


# Bump when the typing code changes what bronze holds for the same files and settings.
INGEST_FORMAT = 2


def rules_digest(source: SourceSpec, rules: BronzeConfig) -> str:
    """Digest of what decides a source's bronze rows beyond its files: the contract (columns,
    types, aliases, checks) and the `bronze:` validation settings."""
    contract = [(t.name, [(c.name, c.type.value, c.required, c.aliases, c.plausible_time)
                          for c in t.columns], sorted(t.derived), [r for _, r in t.row_checks])
                for t in source.tables]
    settings = rules.model_dump(mode="json", include={"earliest_time", "future_tolerance_hours",
                                                      "max_value_chars"})
    return hashlib.sha256(json.dumps([INGEST_FORMAT, contract, settings], sort_keys=True,
                                     default=str).encode()).hexdigest()[:12]


def _read(lake: Path, source: str) -> dict[str, dict[str, str]]:
    path = layout.ingest_ledger(lake, source)
    if not path.exists():
        return {"days": {}, "rules": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"days": {}, "rules": {}}  # a torn ledger only costs a re-ingest (idempotent)
    if not isinstance(data, dict):
        return {"days": {}, "rules": {}}
    if "days" not in data:  # the first format: {day: fingerprint}, rules unknown
        return {"days": {str(k): str(v) for k, v in data.items()}, "rules": {}}
    return {"days": {str(k): str(v) for k, v in (data.get("days") or {}).items()},
            "rules": {str(k): str(v) for k, v in (data.get("rules") or {}).items()}}


def read_ledger(lake: Path, source: str) -> dict[str, str]:
    """{landing day: fingerprint} of what bronze ingested last for each day."""
    return _read(lake, source)["days"]


def days_to_ingest(lake: Path, source: str, fingerprints: Mapping[str, str | None],
                   digest: str) -> list[dt.date]:
    """The days of `fingerprints` whose files or rules differ from what bronze ingested
    (a day with no files that bronze never held is nothing to do)."""
    ledger = _read(lake, source)
    todo = []
    for day, fp in fingerprints.items():
        if fp is None and day not in ledger["days"]:
            continue
        if ledger["days"].get(day) != fp or (fp is not None and ledger["rules"].get(day) != digest):
            todo.append(dt.date.fromisoformat(day))
    return sorted(todo)


def record_ingested(lake: Path, source: str, fingerprints: Mapping[str, str | None],
                    digest: str | None = None) -> None:
    """Record the fingerprints a bronze run ingested (None: the day had no files), and the
    rules digest it typed them with."""
    ledger = _read(lake, source)
    for day, fp in fingerprints.items():
        if fp is None:
            ledger["days"].pop(day, None)
            ledger["rules"].pop(day, None)
        else:
            ledger["days"][day] = fp
            if digest is None:
                ledger["rules"].pop(day, None)
            else:
                ledger["rules"][day] = digest
    layout.write_json_atomic(layout.ingest_ledger(lake, source),
                             {"format": 2, "days": ledger["days"], "rules": ledger["rules"]},
                             indent=0)


def stale_days(lake: Path, source: SourceSpec, rules: BronzeConfig,
               fingerprints: dict[str, str | None], tables: Iterable[TableSpec]
               ) -> list[dt.date]:
    """The days of `fingerprints` bronze must (re-)ingest: every one with files when a
    table of `tables` or its quarantine is missing, else those whose files or typing rules
    changed since bronze ingested them (the ingest ledger)."""
    if not all(delta.table_exists(layout.bronze_table(lake, t.key))
               and delta.table_exists(layout.quarantine_table(lake, t.key)) for t in tables):
        return sorted(dt.date.fromisoformat(d) for d, fp in fingerprints.items()
                      if fp is not None)
    return days_to_ingest(lake, source.name, fingerprints, rules_digest(source, rules))
