"""Reading the landing contract: discover day folders, read files, type and validate rows.

Pure functions over polars frames (no Dagster). The flow for one table and a set of
landing days is `ingest_table`:

1. `landed_files` lists `<root>/<source>/<table>/<YYYY-MM-DD>/*.(csv|jsonl|parquet)`;
2. `read_raw` reads one file into a frame of its landed columns (names snake_cased),
   plus `_source_line`; bytes that are not UTF-8, malformed CSV records and broken
   JSON lines are set aside with their line number, the rest of the file is kept;
3. `type_rows` types every contract column (exact 64-bit ids, SAP dates and
   sentinels, ISO timestamps with offsets to UTC, trimmed strings), gathers unknown
   columns into `_extra` (JSON), and splits rows into good and quarantined, each
   quarantined row with file, line, column and reason and its raw values as JSON.

A problem in one file never costs the good rows of another.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from c360_assets.bronze.contract import (
    EXTRA_COL,
    INGESTED_AT_COL,
    LANDING_DATE_COL,
    POLARS_TYPE,
    SOURCE_FILE_COL,
    SOURCE_LINE_COL,
    ColType,
    SourceSpec,
    TableSpec,
)
from c360_assets.bronze.segment import snake_case
from c360_assets.lib.config import BronzeConfig
from c360_assets.lib.jsonexpr import json_object

DEFAULT_RULES = BronzeConfig()
log = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl", "parquet")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

QUARANTINE_SCHEMA = pl.Schema(
    {
        LANDING_DATE_COL: pl.Date(),
        SOURCE_FILE_COL: pl.String(),
        "line": pl.Int64(),
        "column": pl.String(),
        "reason": pl.String(),
        "raw": pl.String(),
        INGESTED_AT_COL: pl.Datetime("us", "UTC"),
    }
)


@dataclass(frozen=True)
class LandingProblem:
    """Something wrong with the landing layout or a whole file (not a single row)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class TableBatch:
    """The typed result of ingesting one table over some landing days."""

    spec: TableSpec
    good: pl.DataFrame
    quarantine: pl.DataFrame
    problems: list[LandingProblem] = field(default_factory=list)
    rows_read: int = 0
    duplicates_dropped: int = 0
    files: int = 0
    suppressed: int = 0  # rows the privacy suppression list dropped (privacy/bronze.py)


# ---------------------------------------------------------------------------- layout


def table_dir(root: Path, source: str, table: str) -> Path:
    return root / source / table


def outside_root(root: Path, path: Path) -> str | None:
    """Why `path` must not be read: a symlink (itself or a folder on the way) that leads
    out of the landing root, or not a regular file/folder; None when it is fine."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # dangling link, loop
        return f"cannot be resolved ({exc.__class__.__name__}): not read"
    base = root.resolve()
    if real != base and base not in real.parents:
        return f"a symbolic link to {real}, outside the landing root: not followed"
    return None


def _special(path: Path) -> bool:
    """Neither a regular file nor a folder (a FIFO or device would block or never end)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return True
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def landed_days(root: Path, source: SourceSpec) -> tuple[list[dt.date], list[LandingProblem]]:
    """Every landing date with a day folder under any of the source's tables.

    Folders that are not `YYYY-MM-DD` dates are reported, never skipped silently; so is a
    source, table or day folder that is a symlink leading out of the landing root.
    """
    days: set[dt.date] = set()
    problems: list[LandingProblem] = []
    for folder in (root / source.name, *(table_dir(root, source.name, t.name)
                                         for t in source.tables)):
        if folder.is_symlink() and (why := outside_root(root, folder)):
            problems.append(LandingProblem(str(folder), why))
    if any(p.path == str(root / source.name) for p in problems):
        return [], problems
    for spec in source.tables:
        base = table_dir(root, source.name, spec.name)
        if not base.is_dir() or any(p.path == str(base) for p in problems):
            continue
        for entry in sorted(base.iterdir()):
            if not entry.is_dir():
                continue
            if entry.is_symlink() and (why := outside_root(root, entry)):
                problems.append(LandingProblem(str(entry), why))
                continue
            try:
                if not _DAY.match(entry.name):
                    raise ValueError
                days.add(dt.date.fromisoformat(entry.name))
            except ValueError:
                problems.append(LandingProblem(
                    str(entry), "day folder name is not a landing date (expected YYYY-MM-DD)"))
    return sorted(days), problems


def landed_files(root: Path, spec: TableSpec, day: dt.date) -> tuple[list[Path], list[LandingProblem]]:
    """The data files of one table and landing day, and what is wrong with the rest.

    Never follows a symlink out of the landing root (the file, or a folder on its way),
    and never opens what is not a regular file: both are reported instead.
    """
    folder = table_dir(root, spec.source, spec.name) / day.isoformat()
    if not folder.is_dir():
        return [], []
    if why := outside_root(root, folder):
        return [], [LandingProblem(str(folder), why)]
    files, problems = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")):
            continue  # hidden/marker files (e.g. _SUCCESS) are not data
        if path.is_symlink() and (why := outside_root(root, path)):
            problems.append(LandingProblem(str(path), why))
        elif path.is_dir():
            continue
        elif path.suffix.lower().lstrip(".") not in FORMATS:
            problems.append(LandingProblem(
                str(path), f"unsupported file type {path.suffix!r} (expected .csv, .jsonl or .parquet)"))
        elif _special(path):
            problems.append(LandingProblem(str(path), "not a regular file: not read"))
        else:
            files.append(path)
    return files, problems


# ---------------------------------------------------------------------------- raw reading


@dataclass
class RawFile:
    frame: pl.DataFrame  # landed columns (snake_case names) + _source_line
    rejected: list[tuple[int | None, str, str | None]]  # (line, reason, raw text)
    problem: str | None = None  # a whole-file problem (nothing readable)


def _split_utf8(data: bytes) -> tuple[bytes, list[int], list[tuple[int, str, str]]]:
    """Drop lines that are not valid UTF-8; return kept bytes, kept line numbers, rejects."""
    kept, numbers, rejects = [], [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            rejects.append((number, f"invalid UTF-8 byte 0x{line[exc.start]:02x} at column "
                                    f"{exc.start + 1}", line.decode("utf-8", "replace")))
            continue
        kept.append(line)
        numbers.append(number)
    return b"\n".join(kept), numbers, rejects


def _decode(data: bytes) -> tuple[bytes, list[int] | None, list[tuple[int, str, str]]]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        data.decode("utf-8")
        return data, None, []
    except UnicodeDecodeError:
        return _split_utf8(data)


def _normalise_names(frame: pl.DataFrame) -> pl.DataFrame:
    names = [snake_case(c) for c in frame.columns]
    if len(set(names)) != len(names):
        seen: dict[str, int] = {}
        unique = []
        for n in names:
            seen[n] = seen.get(n, 0) + 1
            unique.append(n if seen[n] == 1 else f"{n}__dup{seen[n] - 1}")
        names = unique
    return frame.rename(dict(zip(frame.columns, names, strict=True)))


def _raw_file(frame: pl.DataFrame, lines: list[int],
              rejected: list[tuple[int | None, str, str | None]],
              line_map: list[int] | None) -> RawFile:
    """Attach line numbers, mapped back to the original file when lines were dropped."""
    if line_map is not None:
        lines = [line_map[n - 1] for n in lines]
        rejected = [(line_map[n - 1] if n else n, r, raw) for n, r, raw in rejected]
    frame = _normalise_names(frame).with_columns(
        pl.Series(SOURCE_LINE_COL, lines, dtype=pl.Int64))
    return RawFile(frame, rejected)


def _csv_record_lines(text: str) -> list[int]:
    """Physical line number where each data record starts (header is line 1)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, previous_end = [], 0
    for i, _row in enumerate(reader):
        if i > 0:
            starts.append(previous_end + 1)
        previous_end = reader.line_num
    return starts


def _line_starts(buf: np.ndarray) -> np.ndarray:
    """Byte offset where each physical line starts (a trailing newline opens no line)."""
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines + 1))
    return starts[starts < buf.size]


def _has_short_records(data: bytes, width: int) -> bool:
    """Whether an unquoted data line has fewer fields than the header (polars pads those).

    Vectorised over the bytes: commas per line from their offsets, no Python strings.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    starts = _line_starts(buf)[1:]  # skip the header
    if not starts.size:
        return False
    ends = np.append(starts[1:], buf.size)
    commas = np.flatnonzero(buf == 44)
    quotes = np.flatnonzero(buf == 34)
    per_line = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
    quoted = (np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)) > 0
    blank = (ends - starts) <= 1 + (buf[np.maximum(ends - 2, 0)] == 13)
    return bool(np.any((per_line < width - 1) & ~quoted & ~blank))


def _nonblank_lines(data: bytes) -> list[int]:
    """1-based numbers of the lines holding something other than whitespace.

    Without an empty line inside, every line up to the last counts (found with fast
    byte searches); a whitespace-only line this misses makes the reader's row count
    disagree, which sends the file down the line-by-line path.
    """
    body = data.rstrip(b"\r\n")
    if body and not body.startswith((b"\n", b"\r\n")) and b"\n\n" not in body \
            and b"\n\r\n" not in body:
        return list(range(1, body.count(b"\n") + 2))
    return [i for i, line in enumerate(data.split(b"\n"), start=1) if line.strip()]


def _read_csv(data: bytes, line_map: list[int] | None) -> RawFile:
    rejected: list[tuple[int | None, str, str | None]] = []
    text = ""
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False, has_header=True,
                            raise_if_empty=False)
        physical = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        if _has_short_records(data, frame.width):
            raise pl.exceptions.ComputeError("records with too few fields")
        if physical == frame.height + 1:
            lines = list(range(2, frame.height + 2))
        else:
            text = data.decode("utf-8")
            lines = _csv_record_lines(text)
            if len(lines) != frame.height:
                raise pl.exceptions.ComputeError("record count mismatch")
    except (pl.exceptions.PolarsError, csv.Error):
        # Malformed records (ragged rows, broken quoting): read record by record with the
        # standard library, keep the well-formed ones, reject the rest with their line.
        reader = csv.reader(io.StringIO(text or data.decode("utf-8"), newline=""))
        header = next(reader, None) or []
        rows, lines, previous_end = [], [], reader.line_num
        try:
            for row in reader:
                start = previous_end + 1
                previous_end = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    rejected.append((start, f"expected {len(header)} fields, found {len(row)}",
                                     ",".join(row)))
                    continue
                rows.append([v if v != "" else None for v in row])
                lines.append(start)
        except csv.Error as exc:
            rejected.append((previous_end + 1, f"malformed CSV: {exc}", None))
        frame = pl.DataFrame(rows, schema={h: pl.String for h in header}, orient="row")
    return _raw_file(frame, lines, rejected, line_map)


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _read_jsonl(data: bytes, line_map: list[int] | None) -> RawFile:
    numbers = _nonblank_lines(data)
    rejected: list[tuple[int | None, str, str | None]] = []
    try:
        frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
        if frame.height != len(numbers):
            raise pl.exceptions.ComputeError("line count mismatch")
        lines = numbers
    except (pl.exceptions.PolarsError, ValueError, OverflowError):
        # A broken line, or values whose types disagree across lines: parse line by line,
        # every scalar as its string form (exact for 64-bit integers).
        records, lines = [], []
        physical = data.split(b"\n")
        for number in numbers:
            raw_line = physical[number - 1]
            try:
                obj = orjson.loads(raw_line)
            except orjson.JSONDecodeError as exc:
                rejected.append((number, f"invalid JSON: {exc}", raw_line.decode()))
                continue
            if not isinstance(obj, dict):
                rejected.append((number, "line is not a JSON object", raw_line.decode()))
                continue
            records.append({k: _jsonable(v) for k, v in obj.items()})
            lines.append(number)
        keys = sorted({k for r in records for k in r})
        frame = pl.DataFrame(
            {k: [r.get(k) for r in records] for k in keys}, schema={k: pl.String for k in keys})
    return _raw_file(frame, lines, rejected, line_map)


def read_raw(path: Path) -> RawFile:
    """Read one landed file. Never raises for bad content: problems are returned."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "parquet":
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable parquet is a file problem
            return RawFile(pl.DataFrame(), [], f"unreadable Parquet file: {exc}")
        if frame.width == 0:
            return RawFile(frame, [], "empty file (no columns)")
        frame = _normalise_names(frame).with_row_index(SOURCE_LINE_COL, offset=1).with_columns(
            pl.col(SOURCE_LINE_COL).cast(pl.Int64))
        return RawFile(frame, [])
    data = path.read_bytes()
    if not data.strip():
        return RawFile(pl.DataFrame(), [], "empty file")
    data, line_map, bad_lines = _decode(data)
    rejected: list[tuple[int | None, str, str | None]] = list(bad_lines)
    if fmt == "csv" and line_map is not None and line_map[:1] != [1]:
        # Without a header no record can be read: keep every line, as landed, in quarantine.
        unread = [(n, "not read: the header line is not valid UTF-8", line.decode())
                  for n, line in zip(line_map, data.split(b"\n"), strict=False) if line.strip()]
        return RawFile(pl.DataFrame(), sorted(rejected + unread, key=lambda r: r[0]),
                       "header line is not valid UTF-8")
    raw = _read_csv(data, line_map) if fmt == "csv" else _read_jsonl(data, line_map)
    raw.rejected = rejected + raw.rejected
    return raw


# ---------------------------------------------------------------------------- typing

_INT = r"^[+-]?\d+$"
_TRUE = ["true", "t", "1", "yes", "y"]
_FALSE = ["false", "f", "0", "no", "n"]


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
# Without fractional seconds first: polars parses those on its fast path.
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f",
                  "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M")


def parse_timestamp(expr: pl.Expr) -> pl.Expr:
    """ISO-8601 strings to UTC datetimes: an offset is honoured; none means UTC.

    Accepts `T` or space separators, `Z`, `+0000` and `+00:00` offsets, optional
    fractional seconds, minutes-only times, and bare dates (00:00 UTC). Strict formats
    tried in turn: two orders of magnitude cheaper than normalising with regexes.
    """
    s = _ts_text(expr)
    return pl.coalesce(*[_ts_format(s, f) for f in _TS_FORMATS])


_TS_FORMATS = (*_AWARE_FORMATS, *_NAIVE_FORMATS, "%Y-%m-%d")


def _ts_text(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.replace("Z", "+00:00", literal=True)


def _ts_format(s: pl.Expr, fmt: str) -> pl.Expr:
    if fmt == "%Y-%m-%d":
        return s.str.to_date(fmt, strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if fmt in _AWARE_FORMATS:
        return s.str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False)
    return s.str.to_datetime(fmt, time_unit="us", strict=False).dt.replace_time_zone("UTC")


_UTC_SUFFIXES = ("+00:00", "+0000")


def _ts_with_fraction(text: pl.Expr, sep: str) -> pl.Expr:
    """`YYYY-MM-DD<sep>HH:MM:SS.f` (naive, 1-9 fraction digits) on polars' fast path.

    The whole seconds parse without a fraction (the fast path); the fraction is added as
    microseconds. Null for any value not of exactly this shape.
    """
    fraction = text.str.slice(20)
    micros = fraction.str.pad_end(6, "0").str.slice(0, 6).cast(pl.Int64, strict=False)
    whole = text.str.slice(0, 19).str.to_datetime(f"%Y-%m-%d{sep}%H:%M:%S", time_unit="us",
                                                  strict=False)
    shaped = (text.str.slice(19, 1) == ".") & fraction.str.contains(r"^\d{1,9}$")
    return pl.when(shaped).then(whole + pl.duration(microseconds=micros)).dt.replace_time_zone("UTC")


def parse_timestamp_column(values: pl.Series) -> pl.Series:
    """Parse a String column of timestamps to UTC, each value exactly as `parse_timestamp`.

    Files are written by one connector, so a column nearly always has one format: the
    first format that parses every value is used alone, and a UTC offset shared by every
    value is cut off so polars' fast parser takes the rest. Only a column mixing formats
    pays for trying every format on every value.
    """
    frame = values.to_frame("s").select(_ts_text(_blank_to_null(pl.col("s"))).alias("s"))
    present = frame.height - frame.get_column("s").null_count()
    if present == 0:
        return pl.Series(values.name, [None] * frame.height, dtype=pl.Datetime("us", "UTC"))
    sample = frame.filter(pl.col("s").is_not_null()).head(1)
    candidates: list[pl.Expr] = []
    for suffix in _UTC_SUFFIXES:
        if frame.select(pl.col("s").str.ends_with(suffix).all(ignore_nulls=True)).item():
            stripped = pl.col("s").str.strip_suffix(suffix)
            candidates += [_ts_format(stripped, f) for f in _NAIVE_FORMATS[:2]]
            candidates += [_ts_with_fraction(stripped, sep) for sep in ("T", " ")]
            candidates += [_ts_format(stripped, f) for f in _NAIVE_FORMATS[2:]]
    candidates += [_ts_format(pl.col("s"), f) for f in _TS_FORMATS]
    for candidate in candidates:
        if sample.select(candidate).item() is None:
            continue
        parsed = frame.select(candidate).to_series()
        if parsed.len() - parsed.null_count() == present:
            return parsed.alias(values.name)
    return frame.select(parse_timestamp(pl.col("s"))).to_series().alias(values.name)


def _typed(name: str, ctype: ColType, dtype: pl.DataType, parsed: str | None = None
           ) -> tuple[pl.Expr, pl.Expr, str]:
    """(typed value, is-bad flag, what was expected) for one landed column.

    `parsed`: for a String timestamp column, the column holding its values already parsed
    by parse_timestamp_column (which `type_rows` always does: once per column, not per
    expression).
    """
    c = pl.col(name)
    if dtype == pl.Null:  # null on every row of this file (e.g. an all-null JSONL key)
        return pl.lit(None, POLARS_TYPE[ctype]), pl.lit(False), "a value"
    if isinstance(dtype, pl.Struct):
        c, dtype = c.struct.json_encode(), pl.String()
    elif isinstance(dtype, pl.List | pl.Array):
        c, dtype = c.cast(pl.List(pl.String)).list.join(";"), pl.String()
    is_str = dtype == pl.String
    present = c.is_not_null()
    if ctype is ColType.STR:
        if is_str:
            return _blank_to_null(c), pl.lit(False), "text"
        if isinstance(dtype, pl.Datetime):
            return c.dt.to_string("%Y-%m-%dT%H:%M:%S%.f"), pl.lit(False), "text"
        return c.cast(pl.String), pl.lit(False), "text"
    if ctype is ColType.INT64:
        if is_str:
            s = _blank_to_null(c)
            v = pl.when(s.str.contains(_INT)).then(s.str.to_integer(strict=False))
            return v, s.is_not_null() & v.is_null(), "an exact 64-bit integer"
        if dtype.is_integer():
            v = c.cast(pl.Int64, strict=False)
            return v, present & v.is_null(), "an exact 64-bit integer"
        if dtype.is_float():
            ok = (c == c.floor()) & (c.abs() < 2.0**53)
            v = pl.when(ok).then(c.cast(pl.Int64, strict=False))
            return v, present & v.is_null(), "an exact 64-bit integer (not a float)"
        return pl.lit(None, pl.Int64), present, "an exact 64-bit integer"
    if ctype is ColType.BOOL:
        if is_str:
            s = _blank_to_null(c).str.to_lowercase()
            v = pl.when(s.is_in(_TRUE)).then(True).when(s.is_in(_FALSE)).then(False)
            return v, s.is_not_null() & v.is_null(), "a boolean (true/false)"
        if dtype == pl.Boolean:
            return c, pl.lit(False), "a boolean"
        if dtype.is_integer():
            v = pl.when(c == 1).then(True).when(c == 0).then(False)
            return v, present & v.is_null(), "a boolean (1/0)"
        return pl.lit(None, pl.Boolean), present, "a boolean"
    if ctype is ColType.FLOAT:
        if is_str:
            s = _blank_to_null(c)
            v = s.cast(pl.Float64, strict=False)
            return v, s.is_not_null() & v.is_null(), "a number"
        if dtype.is_numeric():
            return c.cast(pl.Float64), pl.lit(False), "a number"
        return pl.lit(None, pl.Float64), present, "a number"
    if ctype is ColType.TIMESTAMP:
        if is_str:
            s = _blank_to_null(c)
            if parsed is None:
                raise ValueError(f"{name}: parse String timestamps with parse_timestamp_column")
            v = pl.col(parsed)
            return v, s.is_not_null() & v.is_null(), "an ISO-8601 timestamp"
        if isinstance(dtype, pl.Datetime):
            v = c.dt.replace_time_zone("UTC") if dtype.time_zone is None else c.dt.convert_time_zone("UTC")
            return v.cast(pl.Datetime("us", "UTC")), pl.lit(False), "a timestamp"
        if dtype == pl.Date:
            return c.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), pl.lit(False), "a timestamp"
        return pl.lit(None, pl.Datetime("us", "UTC")), present, "an ISO-8601 timestamp"
    if ctype is ColType.DATE:
        if is_str:
            s = _blank_to_null(c)
            day = s.str.extract(r"^(\d{4}-\d{2}-\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
            v = day.str.to_date("%Y-%m-%d", strict=False)
            return v, s.is_not_null() & v.is_null(), "a date (YYYY-MM-DD)"
        if isinstance(dtype, pl.Datetime):
            return c.dt.date(), pl.lit(False), "a date"
        if dtype == pl.Date:
            return c, pl.lit(False), "a date"
        return pl.lit(None, pl.Date), present, "a date (YYYY-MM-DD)"
    if ctype is ColType.SAP_DATE:
        if dtype == pl.Date:
            return c, pl.lit(False), "an SAP date"
        s = _blank_to_null(c.cast(pl.String)) if not is_str else _blank_to_null(c)
        s = pl.when(s == "00000000").then(None).otherwise(s)
        v = pl.when(s.str.contains(r"^\d{8}$")).then(s.str.to_date("%Y%m%d", strict=False))
        return v, s.is_not_null() & v.is_null(), "an SAP date (YYYYMMDD, 00000000 for none)"
    raise AssertionError(ctype)


# Quarantine keeps a rejected row's landed values to diagnose it (the landed file stays the
# source of truth): each value is cut to this many characters, with the length it had.
RAW_VALUE_CHARS = 4_096


def clip_text(expr: pl.Expr, limit: int = RAW_VALUE_CHARS) -> pl.Expr:
    """`expr` cut to `limit` characters, marked with its full length when cut."""
    n = expr.str.len_chars()
    return pl.when(n > limit).then(pl.format("{}...[{} characters in all]",
                                             expr.str.slice(0, limit), n)).otherwise(expr)


def _clip(text: str | None, limit: int = RAW_VALUE_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text)} characters in all]"


def _as_text(frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if isinstance(dtype, pl.Struct):
        return pl.col(name).struct.json_encode()
    if isinstance(dtype, pl.List | pl.Array):
        return pl.col(name).cast(pl.List(pl.String)).list.join(";")
    return pl.col(name).cast(pl.String)


def _raw_json(frame: pl.DataFrame) -> pl.Expr:
    cols = [c for c in frame.columns if c != SOURCE_LINE_COL]
    if not cols:
        return pl.lit(None, pl.String)
    return pl.struct([clip_text(_as_text(frame, name)).alias(name) for name in cols]
                     ).struct.json_encode()


_NO_ROWS = pl.DataFrame(schema={"line": pl.Int64, "column": pl.String, "reason": pl.String,
                                 "raw": pl.String})


def _quarantine_rows(rows: pl.DataFrame, *, day: dt.date, file: str) -> pl.DataFrame:
    return rows.select(
        pl.lit(day).alias(LANDING_DATE_COL),
        pl.lit(file).alias(SOURCE_FILE_COL),
        pl.col("line").cast(pl.Int64),
        pl.col("column").cast(pl.String),
        pl.col("reason").cast(pl.String),
        pl.col("raw").cast(pl.String),
        pl.lit(None, pl.Datetime("us", "UTC")).alias(INGESTED_AT_COL),
    )


def _apply_aliases(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    for column in spec.columns:
        for alias in column.aliases:
            if alias not in frame.columns:
                continue
            if column.name in frame.columns:
                frame = frame.with_columns(
                    pl.coalesce(pl.col(column.name), pl.col(alias).cast(frame.schema[column.name]))
                ).drop(alias)
            else:
                frame = frame.rename({alias: column.name})
    return frame


def _file_rejected(raw: pl.DataFrame, reason: str, column: str | None,
                   *, day: dt.date, file: str) -> pl.DataFrame:
    """Every row of a file that cannot be typed, each with `reason`; a file with no data
    rows still leaves one row (no line), holding its header, so no file is lost silently."""
    if raw.height:
        bad = raw.select(pl.col(SOURCE_LINE_COL).alias("line"),
                         pl.lit(column, pl.String).alias("column"),
                         pl.lit(reason).alias("reason"), _raw_json(raw).alias("raw"))
    else:
        header = _clip(orjson.dumps([c for c in raw.columns if c != SOURCE_LINE_COL]).decode())
        bad = pl.DataFrame({"line": [None], "column": [column], "reason": [reason],
                            "raw": [header]},
                           schema={"line": pl.Int64, "column": pl.String, "reason": pl.String,
                                   "raw": pl.String})
    return _quarantine_rows(bad, day=day, file=file)


def _time_bounds(rules: BronzeConfig, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The plausible window of record and change times for rows landed on `day`."""
    latest = (dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
              + dt.timedelta(hours=rules.future_tolerance_hours))
    return rules.earliest_time, latest


def type_rows(spec: TableSpec, raw: pl.DataFrame, *, day: dt.date, file: str,
              rules: BronzeConfig = DEFAULT_RULES
              ) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Type one file's rows: (good rows in the bronze schema, quarantined rows, problems).

    A row is quarantined, with every reason that applies, when a column fails its type,
    a required value is missing, a record/change time lies outside the plausible window
    (`rules.earliest_time` .. end of the landing day + `rules.future_tolerance_hours`),
    a landed value is longer than `rules.max_value_chars`, or a table's row rule fails.
    """
    schema = spec.schema()
    problems: list[str] = []
    frame = _apply_aliases(spec, raw)
    if spec.prepare is not None:
        try:
            frame = spec.prepare(frame)
        except pl.exceptions.PolarsError as exc:
            reason = f"could not read this file's {spec.name} payload: {exc}".splitlines()[0]
            problems.append(reason)
            return (schema.to_frame(eager=True).clear(),
                    _file_rejected(raw, reason, None, day=day, file=file), problems)
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        reason = "file has no required column " + ", ".join(repr(c) for c in missing)
        if not {c.name for c in spec.columns} & set(frame.columns):
            reason = (f"not a {spec.source} {spec.name} file: its columns name none of the "
                      f"contract's ({reason})")
        problems.append(reason)
        return (schema.to_frame(eager=True).clear(),
                _file_rejected(raw, reason, missing[0], day=day, file=file), problems)

    earliest, latest = _time_bounds(rules, day)
    values: list[pl.Expr] = []
    raw_values: list[str] = []  # landed columns quoted in messages (rejected rows only)
    # (flag column, column, message): flags are cheap booleans over every row; a message
    # is built (and formatted) only for a file that rejects rows, for those rows.
    flags: list[tuple[str, str, Callable[[], pl.Expr]]] = []
    for column in spec.columns:
        name = column.name
        if name not in frame.columns:
            values.append(pl.lit(None, schema[name]).alias(name))
            continue
        parsed = None
        if column.type is ColType.TIMESTAMP and frame.schema[name] == pl.String:
            parsed = f"__ts_{name}"
            frame = frame.with_columns(parse_timestamp_column(frame.get_column(name)).alias(parsed))
        value, bad, expected = _typed(name, column.type, frame.schema[name], parsed)
        values += [value.cast(schema[name]).alias(name), bad.alias(f"__bad_{name}")]
        raw_values.append(name)
        flags.append((f"__bad_{name}", name, lambda name=name, expected=expected: pl.format(
            "{}: expected {}, got '{}'", pl.lit(name), pl.lit(expected),
            clip_text(pl.col(f"__raw_{name}"), 200))))
        if column.required:
            values.append((value.is_null() & ~bad).alias(f"__missing_{name}"))
            flags.append((f"__missing_{name}", name,
                          lambda name=name: pl.lit(f"{name}: required value is missing")))
        if column.time_checked:
            at = value.cast(pl.Datetime("us")).dt.replace_time_zone("UTC") \
                if column.type is ColType.SAP_DATE else value
            values.append(((at < earliest) | (at > latest)).fill_null(False)
                          .alias(f"__implausible_{name}"))
            flags.append((f"__implausible_{name}", name, lambda name=name: pl.format(
                "{}: implausible time '{}' (plausible: from bronze.earliest_time {} to the "
                "end of landing day {} plus bronze.future_tolerance_hours {} h)",
                pl.lit(name), clip_text(pl.col(f"__raw_{name}"), 200),
                pl.lit(earliest.isoformat()), pl.lit(day.isoformat()),
                pl.lit(f"{rules.future_tolerance_hours:g}"))))
    # A landed value longer than the limit (contract column, extra or derived payload).
    texts = [n for n, t in frame.schema.items()
             if t == pl.String and not n.startswith("__ts_")]
    for i, name in enumerate(texts):
        values.append((pl.col(name).str.len_chars() > rules.max_value_chars).fill_null(False)
                      .alias(f"__long_{i}"))
        flags.append((f"__long_{i}", name, lambda name=name, i=i: pl.format(
            "{}: a value of {} characters (longer than bronze.max_value_chars, {})",
            pl.lit(name), pl.col(f"__len_{i}"), pl.lit(rules.max_value_chars))))
    for name in spec.derived:
        values.append((pl.col(name) if name in frame.columns else pl.lit(None))
                      .cast(spec.derived[name]).alias(name))
    known = {c.name for c in spec.columns} | set(spec.derived) | {SOURCE_LINE_COL}
    extras = [c for c in frame.columns if c not in known and not c.startswith("__ts_")]
    values.append(json_object({
        c: (pl.col(c).struct.json_encode() if isinstance(frame.schema[c], pl.Struct)
            else pl.col(c).cast(pl.String, strict=False)) for c in extras}).alias(EXTRA_COL))
    typed = frame.select(*values, pl.col(SOURCE_LINE_COL))
    for i, (check, reason) in enumerate(spec.row_checks):
        typed = typed.with_columns(check().fill_null(False).alias(f"__check_{i}"))
        flags.append((f"__check_{i}", "", lambda reason=reason: pl.lit(reason)))

    rejected = (typed.select(pl.any_horizontal([pl.col(f) for f, _, _ in flags])).to_series()
                if flags else pl.Series([False] * typed.height))
    good = typed.filter(~rejected).with_columns(
        pl.lit(day).alias(LANDING_DATE_COL),
        pl.lit(file).alias(SOURCE_FILE_COL),
        pl.lit(None, pl.Datetime("us", "UTC")).alias(INGESTED_AT_COL),
    ).select(schema.names()).cast(dict(schema))
    if not rejected.any():
        return good, _quarantine_rows(_NO_ROWS, day=day, file=file), problems
    # The landed text of each checked column and the length of each text, for the
    # messages of rejected rows only.
    quoted = frame.filter(rejected).select(
        [pl.col(n).cast(pl.String, strict=False).alias(f"__raw_{n}") for n in raw_values]
        + [pl.col(n).str.len_chars().alias(f"__len_{i}") for i, n in enumerate(texts)])
    bad = typed.filter(rejected).hstack(quoted.get_columns()).select(
        pl.col(SOURCE_LINE_COL).alias("line"),
        pl.coalesce([pl.when(pl.col(f)).then(pl.lit(c or None, pl.String)) for f, c, _ in flags]
                    + [pl.lit(None, pl.String)]).alias("column"),
        pl.concat_str([pl.when(pl.col(f)).then(msg()) for f, _, msg in flags],
                      separator="; ", ignore_nulls=True).alias("reason"),
    ).with_columns(raw.filter(rejected).select(_raw_json(raw).alias("raw")).to_series())
    return good, _quarantine_rows(bad, day=day, file=file), problems


# ---------------------------------------------------------------------------- one table


def _file_rejects(rejected: Sequence[tuple[int | None, str, str | None]], *, day: dt.date,
                  file: str) -> pl.DataFrame:
    rows = pl.DataFrame(
        {"line": [r[0] for r in rejected], "column": [None] * len(rejected),
         "reason": [r[1] for r in rejected], "raw": [_clip(r[2]) for r in rejected]},
        schema={"line": pl.Int64, "column": pl.String, "reason": pl.String, "raw": pl.String})
    return _quarantine_rows(rows, day=day, file=file)


def ingest_table(root: Path, spec: TableSpec, days: Iterable[dt.date],
                 ingested_at: dt.datetime, rules: BronzeConfig = DEFAULT_RULES) -> TableBatch:
    """Read, type and validate every landed file of `spec` for `days`.

    Rows repeated verbatim across the files of one day (at-least-once delivery) are
    kept once, the first by file name and line. A file that fails in a way nothing here
    foresaw (a bug, a format corner) is quarantined whole with the error as its reason:
    it never costs the other files their rows.
    """
    schema = spec.schema()
    goods: list[pl.DataFrame] = []
    quarantined: list[pl.DataFrame] = []
    problems: list[LandingProblem] = []
    rows_read = files = 0
    for day in sorted(days):
        paths, layout_problems = landed_files(root, spec, day)
        problems += layout_problems
        for lp in layout_problems:
            quarantined.append(_file_rejects([(None, lp.reason, None)], day=day,
                                             file=_relative(root, Path(lp.path))))
        for path in paths:
            files += 1
            rel = _relative(root, path)
            try:
                raw = read_raw(path)
            except Exception as exc:  # noqa: BLE001 - contained to this file, reported
                log.exception("reading %s", path)
                raw = RawFile(pl.DataFrame(), [], f"could not be read: {exc!r}"[:500])
            if raw.problem:
                problems.append(LandingProblem(str(path), raw.problem))
                raw.rejected.append((None, raw.problem, None))
            elif raw.rejected:
                problems.append(LandingProblem(
                    str(path), f"{len(raw.rejected)} unreadable line(s), first at line "
                               f"{raw.rejected[0][0]}: {raw.rejected[0][1]}"))
            rows_read += raw.frame.height + sum(1 for r in raw.rejected if r[0] is not None)
            if raw.rejected:
                quarantined.append(_file_rejects(raw.rejected, day=day, file=rel))
            if raw.problem or raw.frame.width == 0:
                continue
            try:
                good, bad, file_problems = type_rows(spec, raw.frame, day=day, file=rel,
                                                     rules=rules)
            except Exception as exc:  # noqa: BLE001 - contained to this file, reported
                log.exception("typing %s", path)
                reason = f"could not be typed (an error in c360, please report): {exc!r}"[:500]
                good, bad, file_problems = (schema.to_frame(eager=True).clear(), _file_rejected(
                    raw.frame, reason, None, day=day, file=rel), [reason])
            problems += [LandingProblem(str(path), p) for p in file_problems]
            goods.append(good)
            quarantined.append(bad)
    good = pl.concat(goods) if goods else schema.to_frame(eager=True).clear()
    content = [c for c in schema.names() if c not in (SOURCE_FILE_COL, SOURCE_LINE_COL, INGESTED_AT_COL)]
    before = good.height
    good = (good.sort([LANDING_DATE_COL, SOURCE_FILE_COL, SOURCE_LINE_COL])
            .unique(subset=content, keep="first", maintain_order=True))
    good = good.with_columns(pl.lit(ingested_at).cast(pl.Datetime("us", "UTC")).alias(INGESTED_AT_COL))
    quarantine = (pl.concat(quarantined) if quarantined else QUARANTINE_SCHEMA.to_frame(eager=True).clear())
    quarantine = quarantine.with_columns(
        pl.lit(ingested_at).cast(pl.Datetime("us", "UTC")).alias(INGESTED_AT_COL)
    ).sort([LANDING_DATE_COL, SOURCE_FILE_COL, "line"], nulls_last=True)
    return TableBatch(spec, good, quarantine, problems, rows_read, before - good.height, files)


def _relative(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
