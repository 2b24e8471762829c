"""The proof of an erasure: every byte of the lake and of Dagster's storage, scanned.

`scan(roots, targets)` reads every regular file under `roots` and looks for each target
(case-insensitive, ASCII folding) in:

* the raw bytes of every file (JSON logs, dbt logs, text, anything);
* Parquet files (Delta data, change data, checkpoints): every decompressed value of
  every string and date column, and every footer statistic (min/max of each column
  chunk), since a value compressed inside a page never shows in the raw bytes;
* DuckDB files: every string and date column of every table, read through DuckDB;
* SQLite files (Dagster's run and event storage): every column of every table, since a
  long value may be split across overflow pages.

In decoded values and text a target is a whole value or word (`+1415555012` inside
`+14155550123` is another number); the raw bytes of DuckDB and SQLite files match
anywhere. A *pair* target (a last name and a birth date) is a hit only where both are
whole values of one table row (a column, or a string in a JSON column) or whole words of
one line of text: either alone is shared by many people.

The report names files, the kind of target found and where in the file, never the value
itself: a receipt is kept, and must hold no identifier.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

CHUNK = 32 * 2**20  # raw bytes are scanned in chunks of this size, overlapping


@dataclass(frozen=True)
class Target:
    """What must not be found: `text` (compared lower-cased), or `text` and `other` in
    one row or line. `kind`: what it is (email, phone, record, node, name+birth_date)."""

    kind: str
    text: str
    other: str | None = None


@dataclass(frozen=True)
class Hit:
    path: str  # relative to its root, prefixed by the root's label
    where: str  # bytes | line | parquet values | parquet row | parquet statistics | table T ...
    kind: str


@dataclass
class ScanReport:
    files: int = 0
    bytes: int = 0
    hits: list[Hit] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.hits


class _Matcher:
    """Vectorised matching of many targets: polars' Aho-Corasick (`contains_any` to find
    the rows that hold anything, `extract_many` to say what)."""

    def __init__(self, targets: Iterable[Target]) -> None:
        targets = list(targets)
        self.single = sorted({t.text.lower() for t in targets if t.other is None and t.text})
        self.kind = {t.text.lower(): t.kind for t in targets if t.other is None}
        self.pairs = sorted({(t.text.lower(), t.other.lower()) for t in targets
                             if t.other is not None and t.text and t.other})
        self.pair_kind = {(t.text.lower(), (t.other or "").lower()): t.kind for t in targets
                          if t.other is not None}
        self.pair_firsts = sorted({a for a, _ in self.pairs})
        self.pair_seconds = sorted({b for _, b in self.pairs})

    @staticmethod
    def _found(values: pl.Series, patterns: list[str]) -> list[list[str]]:
        """Per value holding any of `patterns`: the patterns it holds (lower-cased)."""
        values = values.drop_nulls()
        values = values.filter(values.str.contains_any(patterns, ascii_case_insensitive=True))
        if values.len() == 0:
            return []
        found = values.str.extract_many(patterns, ascii_case_insensitive=True,
                                        overlapping=True)
        return [[m.lower() for m in row] for row in found.to_list()]

    def kinds_in(self, values: pl.Series, *, whole: bool = False) -> set[str]:
        """The kinds of single targets found in any of `values` (strings). `whole`: only
        where the target is not inside a longer word or number (decoded values and text,
        where `5551234` inside `+15551234999` is another value; raw binary bytes match
        anywhere, since a length byte may be a letter)."""
        if not self.single or values.len() == 0:
            return set()
        if not whole:
            return {self.kind[m] for row in self._found(values, self.single) for m in row
                    if m in self.kind}
        values = values.drop_nulls()
        values = values.filter(values.str.contains_any(self.single, ascii_case_insensitive=True))
        out: set[str] = set()
        for text in values.str.to_lowercase().to_list():
            for m in _Matcher._found(pl.Series([text]), self.single)[0]:
                if m in self.kind and self.kind[m] not in out and whole_in(text, m):
                    out.add(self.kind[m])
        return out

    def pair_kinds_in(self, rows: pl.Series, *, cells: bool = False) -> set[str]:
        """The kinds of pair targets whose two parts occur in one of `rows` (one string
        per row or line): as whole words in a line of text; with `cells` (a table's row,
        its values joined by `\x1f`), as whole values of a column or of a JSON string
        (another person's `Bakker-Jansen` born the same day is not a `Bakker`)."""
        if not self.pairs or rows.len() == 0:
            return set()
        rows = rows.drop_nulls()
        rows = rows.filter(rows.str.contains_any(self.pair_seconds, ascii_case_insensitive=True))
        out: set[str] = set()
        texts = rows.str.to_lowercase().to_list()
        for text, held in zip(texts, self._found(rows, self.pair_firsts + self.pair_seconds),
                              strict=True):
            have = set(held)
            found = cell_in if cells else whole_in
            out |= {self.pair_kind[(a, b)] for a, b in self.pairs
                    if a in have and b in have and found(text, a) and found(text, b)}
        return out


CELL_EDGES = ("\x1f", '"')


def cell_in(text: str, needle: str) -> bool:
    """`needle` is a whole value in `text` (a row's values joined by `\x1f`; a JSON
    value in quotes)."""
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        if ((start == 0 or text[start - 1] in CELL_EDGES)
                and (end == len(text) or text[end] in CELL_EDGES)):
            return True
        start = text.find(needle, start + 1)
    return False


def whole_in(text: str, needle: str) -> bool:
    """`needle` occurs in `text` (both lower-case) not inside a longer word or number."""
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or after.isalnum()):
            return True
        start = text.find(needle, start + 1)
    return False


def _text_columns(frame: pl.DataFrame, dates: bool) -> list[pl.Series]:
    """Every column that can hold an identifier, as strings (nested ones as JSON; dates
    only when a pair target needs them)."""
    out = []
    for name, dtype in frame.schema.items():
        s = frame.get_column(name)
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            out.append(s.cast(pl.String))
        elif dtype == pl.Binary:
            out.append(s.map_elements(lambda b: b.decode("latin-1"), return_dtype=pl.String))
        elif dtype == pl.Date and dates:
            out.append(s.cast(pl.String))
        elif isinstance(dtype, pl.List | pl.Array | pl.Struct):
            out.append(frame.select(pl.struct(pl.col(name)).struct.json_encode()).to_series())
    return out


def _scan_frame(frame: pl.DataFrame, matcher: _Matcher) -> dict[str, set[str]]:
    """where (`values`: a single target in some column; `row`: a pair in one row) ->
    kinds found. The columns are joined per row (a separator no target holds), so each
    file is searched in one pass."""
    found: dict[str, set[str]] = {}
    columns = _text_columns(frame, dates=bool(matcher.pairs))
    if not columns or not frame.height:
        return found
    rows = pl.DataFrame(columns).select(
        pl.concat_str(pl.all(), separator="\x1f", ignore_nulls=True)).to_series()
    kinds = matcher.kinds_in(rows, whole=True)
    if kinds:
        found["values"] = kinds
    kinds = matcher.pair_kinds_in(rows, cells=True)
    if kinds:
        found["row"] = kinds
    return found


def _is_parquet(head: bytes, tail: bytes) -> bool:
    return head[:4] == b"PAR1" and tail[-4:] == b"PAR1"


def _scan_parquet(path: Path, matcher: _Matcher) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    meta = pq.ParquetFile(path).metadata
    stats: list[str] = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            st = group.column(c).statistics
            if st is not None and st.has_min_max:
                stats += [str(st.min), str(st.max)]
    for key, value in (meta.metadata or {}).items():  # the footer's key-value metadata
        stats += [key.decode("latin-1"), value.decode("latin-1")]
    kinds = matcher.kinds_in(pl.Series("s", stats, dtype=pl.String), whole=True)
    if kinds:
        found["parquet statistics"] = kinds
    frame = pl.from_arrow(pq.read_table(path))
    assert isinstance(frame, pl.DataFrame)
    for where, kinds in _scan_frame(frame, matcher).items():
        found.setdefault(f"parquet {where}", set()).update(kinds)
    return found


def _scan_duckdb(path: Path, matcher: _Matcher) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.sql("SELECT table_schema, table_name FROM information_schema.tables "
                         "WHERE table_type = 'BASE TABLE'").fetchall()
        for schema, name in tables:
            frame = con.sql(f'SELECT * FROM "{schema}"."{name}"').pl()
            for where, kinds in _scan_frame(frame, matcher).items():
                found.setdefault(f"table {schema}.{name} {where}", set()).update(kinds)
    finally:
        con.close()
    return found


def _scan_sqlite(path: Path, matcher: _Matcher) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            cur = con.execute(f'SELECT * FROM "{name}"')
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
            if not rows:
                continue
            frame = pl.DataFrame(
                {c: [None if v is None else (v.decode("latin-1") if isinstance(v, bytes)
                                             else str(v)) for v in col]
                 for c, col in zip(cols, zip(*rows, strict=True), strict=True)},
                schema=dict.fromkeys(cols, pl.String))
            for where, kinds in _scan_frame(frame, matcher).items():
                found.setdefault(f"table {name} {where}", set()).update(kinds)
    finally:
        con.close()
    return found


def _scan_bytes(path: Path, matcher: _Matcher, *, text: bool
                ) -> tuple[dict[str, set[str]], int]:
    """Raw bytes (as latin-1 text, so every byte is one character). A `text` file is
    matched on whole values (`kinds_in`) and for pairs per line; a binary one anywhere."""
    found: dict[str, set[str]] = {}
    overlap = max((len(t) for t in matcher.single), default=0) + 1
    size = 0
    with path.open("rb") as f:
        carry = b""
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            data = carry + chunk
            chars = data.decode("latin-1")
            kinds = matcher.kinds_in(pl.Series("b", [chars]), whole=text)
            if kinds:
                found.setdefault("bytes", set()).update(kinds)
            if matcher.pairs and text:
                kinds = matcher.pair_kinds_in(pl.Series("l", chars.split("\n")))
                if kinds:
                    found.setdefault("line", set()).update(kinds)
            carry = data[-overlap:] if overlap > 1 else b""
    return found, size


def _scan_tail(path: Path, matcher: _Matcher) -> dict[str, set[str]]:
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - 8))
        footer = int.from_bytes(f.read(4), "little")
        start = max(0, size - 8 - footer - PARQUET_TAIL)
        f.seek(start)
        text = f.read().decode("latin-1")
    kinds = matcher.kinds_in(pl.Series("b", [text]), whole=True)
    return {"bytes (footer, page index)": kinds} if kinds else {}


def kind_of_file(path: Path) -> str:
    """`parquet`, `duckdb`, `sqlite` (by their magic bytes), else `bytes`."""
    with path.open("rb") as f:
        head = f.read(16)
        try:
            f.seek(-4, 2)
            tail = f.read(4)
        except OSError:
            tail = b""
    if _is_parquet(head, tail):
        return "parquet"
    if head[8:12] == b"DUCK":
        return "duckdb"
    if head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    return "bytes"


READERS = {"parquet": _scan_parquet, "duckdb": _scan_duckdb, "sqlite": _scan_sqlite}
# Page indexes (per-page min/max) sit just before a Parquet footer: its raw tail is read.
PARQUET_TAIL = 2**20


def _scan_file(path: Path, matcher: _Matcher) -> tuple[dict[str, set[str]], int]:
    """What one file holds, and its size. A Parquet file is read as values (decompressed),
    footer statistics and metadata, and its raw tail (footer and page indexes); every
    other file raw as well as through its reader."""
    try:
        kind = kind_of_file(path)
        if kind == "parquet":
            found, size = _scan_tail(path, matcher), path.stat().st_size
        else:
            # Text files: whole values. The raw bytes of a DuckDB or SQLite file match
            # anywhere (a value's neighbour there may be any byte): stricter, at the risk
            # of a value that is part of a longer one failing the proof.
            found, size = _scan_bytes(path, matcher, text=kind == "bytes")
        if kind in READERS:
            found.update(READERS[kind](path, matcher))
    except FileNotFoundError:  # a journal that came and went: nothing left to hold
        return {}, 0
    except Exception as exc:  # noqa: BLE001 - unreadable: a hit, never a pass
        return {f"unreadable ({type(exc).__name__})": {"unscanned"}}, 0
    return found, size


def scan(roots: dict[str, Path], targets: Iterable[Target], *,
         progress: Callable[[str], None] | None = None) -> ScanReport:
    """Scan every regular file under each root (label -> folder) for `targets`."""
    t0 = time.perf_counter()
    matcher = _Matcher(targets)
    report = ScanReport()
    files = []
    for label, root in roots.items():
        root = Path(root)
        if root.exists():
            files += [(f"{label}/{p.relative_to(root).as_posix()}", p) for p in
                      sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()]
    # Two files at a time: polars and pyarrow work outside the GIL.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for n, (rel, (found, size)) in enumerate(
                zip((r for r, _ in files), pool.map(lambda f: _scan_file(f[1], matcher), files),
                    strict=True), 1):
            report.files += 1
            report.bytes += size
            for where, kinds in sorted(found.items()):
                report.hits += [Hit(rel, where, k) for k in sorted(kinds)]
            if progress and n % 1000 == 0:
                progress(f"proof: {n:,}/{len(files):,} files scanned "
                         f"({report.bytes / 2**20:,.0f} MiB)")
    report.seconds = time.perf_counter() - t0
    return report

