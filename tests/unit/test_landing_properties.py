"""Every valid variant of the landing contract ingests (issue 13): a property test.

For each contract table and each format, hypothesis writes a day folder of valid rows in
random but valid variants, and bronze's ingest (`landing.ingest_table`, what the bronze
asset runs) must land every row, typed exactly, and leave nothing in quarantine but
empty files (each with its reason). The variants:

* optional columns absent, or present and null on every row;
* numbers and booleans as strings and as native JSON/Parquet values (1/0, t/f, yes/no,
  any case), 64-bit integers beyond float precision;
* every allowed timestamp form: `Z`, `+00:00`, `+0000`, other offsets, no offset (UTC),
  `T` or space, 1-9 fraction digits, minutes only, a bare date; native Parquet
  timestamps with or without a zone; SAP `YYYYMMDD` and `00000000`;
* a UTF-8 byte-order mark, CRLF line ends, values with quoted line breaks, padded with
  spaces (trimmed), in any script (accents, CJK, RTL, emoji);
* empty files, several files per day, extra columns the contract does not name;
* Segment traits nested (an object, a Parquet struct, a JSON string in CSV) or flattened
  as columns, camelCase or snake_case.

Bounded and deterministic (`derandomize`): the same examples on every run, in CI too.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c360_assets.bronze import BUILTIN
from c360_assets.bronze.contract import ColType, TableSpec
from c360_assets.bronze.landing import ingest_table
from tests.helpers import NOW

DAY = dt.date(2026, 4, 15)
UTC = dt.UTC
TABLES = [t for s in BUILTIN for t in s.tables]
FORMATS = ("csv", "jsonl", "parquet")
EXAMPLES = 12  # per table and format: 360 landings in all

TEXT = st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1,
               max_size=12)
NAMES = st.sampled_from(["Zoë", "Øyvind", "Mätthias", "José María", "李小龍", "محمد",
                         "Ἀλέξανδρος", "Nguyễn", "O'Brien", 'Ann "Nan"', "a,b", "🙂 Joy"])
# Plausible record times: up to a year before the landing day, up to 12 h after its end.
INSTANTS = st.datetimes(min_value=dt.datetime(2025, 4, 15), max_value=dt.datetime(2026, 4, 16, 12),
                        timezones=st.just(UTC))
TS_FORMS = ("Z", "+00:00", "+0000", "offset", "naive", "space", "fraction", "minutes", "date")
TRUE, FALSE = ["true", "TRUE", "t", "1", "yes", "Y"], ["false", "False", "f", "0", "no", "N"]
TRAITS = {"email": "email", "first_name": "firstName", "last_name": "lastName",
          "phone": "phone", "birthday": "birthday"}


def _instant(form: str, when: dt.datetime, offset: int, digits: int) -> tuple[str, dt.datetime]:
    """(landed text, the instant it means) for one timestamp form."""
    if form == "date":
        return when.strftime("%Y-%m-%d"), when.replace(hour=0, minute=0, second=0, microsecond=0)
    if form == "minutes":
        at = when.replace(second=0, microsecond=0)
        return at.strftime("%Y-%m-%dT%H:%MZ"), at
    if form == "fraction":
        micro = f"{when.microsecond:06d}"
        shown = (micro + "000")[:digits]
        at = when.replace(microsecond=int(shown[:6].ljust(6, "0")))
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + shown + "Z", at
    at = when.replace(microsecond=0)
    if form == "offset":
        local = at.astimezone(dt.timezone(dt.timedelta(minutes=offset)))
        return local.isoformat(), at
    text = {"Z": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "+00:00": at.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "+0000": at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "naive": at.strftime("%Y-%m-%dT%H:%M:%S"), "space": at.strftime("%Y-%m-%d %H:%M:%S")}
    return text[form], at


@st.composite
def column_values(draw, spec: TableSpec, name: str, ctype: ColType, n: int, fmt: str,
                  key: bool) -> tuple[list[object], list[object]]:
    """(landed values, expected typed values) for one column over n rows."""
    landed, expected = [], []
    if ctype is ColType.TIMESTAMP:
        native = fmt == "parquet" and draw(st.booleans())
        naive = draw(st.booleans())  # a native column is zoned or naive (UTC) throughout
        forms = [draw(st.sampled_from(TS_FORMS))] * n if draw(st.booleans()) else \
            draw(st.lists(st.sampled_from(TS_FORMS), min_size=n, max_size=n))
        for i in range(n):
            when = draw(INSTANTS)
            if native:
                landed.append(when.replace(tzinfo=None) if naive else when)
                expected.append(when)
                continue
            text, at = _instant(forms[i], when, draw(st.integers(-12 * 60, 14 * 60)),
                                draw(st.integers(1, 9)))
            landed.append(text)
            expected.append(at)
        return landed, expected
    # CSV holds text only; a Parquet column has one type throughout; JSONL rows may differ.
    reps = {"csv": ["string"], "parquet": [draw(st.sampled_from(["native", "string", "number"]))],
            "jsonl": ["native", "string", "number"]}[fmt]
    for i in range(n):
        rep = draw(st.sampled_from(reps))
        if ctype is ColType.INT64:
            value = (i + 1) * 1_000_003 + 2**53 if key else draw(st.integers(-(2**63), 2**63 - 1))
            landed.append(str(value) if rep == "string" else value)
            expected.append(value)
        elif ctype is ColType.BOOL:
            value = draw(st.booleans())
            landed.append(value if rep == "native" else int(value) if rep == "number"
                          else draw(st.sampled_from(TRUE if value else FALSE)))
            expected.append(value)
        elif ctype is ColType.FLOAT:
            value = draw(st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False))
            landed.append(repr(value) if rep == "string" else value)
            expected.append(value)
        elif ctype is ColType.DATE:
            value = draw(st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
            landed.append(value if rep == "native" and fmt == "parquet" else value.isoformat()
                          + draw(st.sampled_from(["", " 00:00:00", "T00:00:00"])))
            expected.append(value)
        elif ctype is ColType.SAP_DATE:
            value = draw(st.one_of(st.none(), st.dates(dt.date(1995, 1, 1), DAY)))
            landed.append(value.strftime("%Y%m%d") if value else draw(st.sampled_from(["00000000", ""])))
            expected.append(value)
        else:  # text
            value = f"{spec.name}-{i}" if key else draw(st.one_of(TEXT, NAMES))
            if draw(st.integers(0, 9)) == 0 and fmt == "csv" and not key:
                value = value + "\nsecond line"  # a quoted line break
            pad = draw(st.sampled_from(["", " ", "  "]))
            landed.append(pad + value + pad)
            expected.append(value.strip() or None)
    return landed, expected


@st.composite
def landing(draw, spec: TableSpec, fmt: str) -> dict:
    """Columns (name -> (landed, expected)) of one day's rows, and how to write them."""
    n = draw(st.integers(1, 6))
    keys = {c.name for c in spec.columns if c.required and c.type in (ColType.STR, ColType.INT64)}
    if spec.source == "segment":
        keys = {"id"}
    columns: dict[str, tuple[list, list]] = {}
    for column in spec.columns:
        if not column.required and draw(st.integers(0, 3)) == 0:
            continue  # an optional column that does not land
        if spec.source == "segment" and column.name in ("user_id", "anonymous_id"):
            continue  # below: at least one of them per row
        if not column.required and draw(st.integers(0, 6)) == 0:
            columns[column.name] = ([None] * n, [None] * n)  # null on every row
            continue
        columns[column.name] = draw(column_values(spec, column.name, column.type, n, fmt,
                                                  column.name in keys))
    traits: list[dict[str, str]] = [{} for _ in range(n)]
    if spec.source == "segment":
        users = [f"u{i}" if draw(st.booleans()) else None for i in range(n)]
        columns["user_id"] = (users, users)
        anon = [None if u and draw(st.booleans()) else f"a{i}" for i, u in enumerate(users)]
        columns["anonymous_id"] = (anon, anon)
        traits = [{k: draw(st.one_of(TEXT, NAMES)).strip() or "x"
                   for k in draw(st.sets(st.sampled_from(sorted(TRAITS)), max_size=3))}
                  for _ in range(n)]
    extras = {f"{'context_' if spec.source == 'segment' else ''}extra_{k}": [
        draw(TEXT) for _ in range(n)] for k in range(draw(st.integers(0, 2)))}
    return {"n": n, "columns": columns, "traits": traits, "extras": extras,
            "nested": draw(st.booleans()), "camel": draw(st.booleans()),
            "bom": draw(st.booleans()), "crlf": draw(st.booleans()),
            "files": draw(st.integers(1, 3)), "empty": draw(st.sampled_from(
                ["none", "none", "zero bytes", "no rows"]))}


def _segment_traits(case: dict, i: int, fmt: str) -> tuple[dict, object]:
    """Flattened trait columns, or the nested value, for row i."""
    sent = case["traits"][i]
    named = {(TRAITS[k] if case["camel"] else k): v for k, v in sent.items()}
    if not case["nested"]:
        return named, None
    if fmt == "csv":
        return {}, json.dumps(named, ensure_ascii=False)
    return {}, named or None  # nothing sent: no object at all


def _rows(case: dict, fmt: str) -> list[dict]:
    rows = []
    for i in range(case["n"]):
        row = {name: landed[i] for name, (landed, _) in case["columns"].items()}
        row.update({k: v[i] for k, v in case["extras"].items()})
        if case["traits"][i] or case["nested"]:
            flat, nested = _segment_traits(case, i, fmt)
            row.update(flat)
            if case["nested"]:
                row["traits"] = nested
        rows.append(row)
    return rows


def _csv_text(v: object) -> str:
    return "" if v is None else v.isoformat() if isinstance(v, dt.date) else str(v)


def write(root, spec: TableSpec, fmt: str, case: dict) -> None:
    folder = root / spec.source / spec.name / DAY.isoformat()
    folder.mkdir(parents=True)
    rows = _rows(case, fmt)
    names = sorted({k for r in rows for k in r})
    parts = [rows[i::case["files"]] for i in range(case["files"])]
    for p, part in enumerate(parts):
        path = folder / f"part-{p}.{fmt}"
        if fmt == "parquet":
            frame = pl.DataFrame([{k: r.get(k) for k in names} for r in part],
                                 infer_schema_length=None) if part else pl.DataFrame()
            if frame.width:
                frame.write_parquet(path)
            continue
        end = "\r\n" if case["crlf"] else "\n"
        if fmt == "csv":
            out = io.StringIO(newline="")
            writer = csv.writer(out, lineterminator=end)
            writer.writerow(names)
            writer.writerows([[_csv_text(r.get(k)) for k in names] for r in part])
            text = out.getvalue()
        else:
            text = "".join(json.dumps({k: v for k, v in r.items()}, default=str,
                                      ensure_ascii=False) + end for r in part)
        path.write_bytes(("\ufeff" if case["bom"] else "").encode() + text.encode())
    if case["empty"] == "zero bytes" and fmt != "parquet":
        (folder / f"empty.{fmt}").write_bytes(b"")
    elif case["empty"] == "no rows":
        if fmt == "parquet":
            pl.DataFrame(schema={c: pl.String for c in names}).write_parquet(folder / "empty.parquet")
        elif fmt == "csv":
            (folder / "empty.csv").write_text(",".join(names) + "\n")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("spec", TABLES, ids=[t.key for t in TABLES])
def test_every_valid_variant_of_the_contract_ingests(spec, fmt, tmp_path_factory):
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(case=landing(spec, fmt))
    def check(case: dict) -> None:
        root = tmp_path_factory.mktemp("landing")
        write(root, spec, fmt, case)
        batch = ingest_table(root, spec, [DAY], NOW)
        # Nothing but empty files in quarantine, each with its reason; every row lands.
        assert batch.quarantine.filter(pl.col("reason").is_null()).is_empty()
        assert batch.quarantine["line"].null_count() == batch.quarantine.height, \
            batch.quarantine.select("line", "column", "reason").rows()
        assert batch.good.height == case["n"], batch.problems
        # Typed exactly as landed meant: rows are matched by their key column.
        key = next(c.name for c in spec.columns if c.required)
        landed_keys = case["columns"][key][1]
        good = batch.good.sort(pl.col(key).cast(pl.String))
        order = sorted(range(case["n"]), key=lambda i: str(landed_keys[i]))
        for name, (_, expected) in case["columns"].items():
            got = good[name].to_list()
            want = [expected[i] for i in order]
            assert got == want, (name, got, want)
        if spec.source == "segment":
            got_traits = [json.loads(t) for t in good["traits"].to_list()]
            assert got_traits == [case["traits"][i] for i in order]
        extras = [json.loads(e) if e else {} for e in good["_extra"].to_list()]
        for name, values in case["extras"].items():
            assert [e.get(name) for e in extras] == [values[i] for i in order]

    check()
