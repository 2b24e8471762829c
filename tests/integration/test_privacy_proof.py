"""The proof scanner finds a value wherever a lake can hide it (issue 17): inside a
compressed Parquet page, in a Parquet footer's statistics only, in a DuckDB table, in a
SQLite value spread over overflow pages, in a JSON log; in any letter case. A pair (last
name, birth date) is found only in one row or line. Inbox files that cannot be read are
named with their line and column."""

from __future__ import annotations

import json
import sqlite3

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from c360_assets.privacy import inbox
from c360_assets.privacy.proof import Target, scan

SECRET = "alex.doe@example.com"


def _kinds(report) -> dict[str, set[str]]:  # noqa: ANN001
    out: dict[str, set[str]] = {}
    for h in report.hits:
        out.setdefault(h.path.split("/", 1)[1], set()).add(h.where.split(" ")[0])
    return out


def test_scanner_finds_planted_values_in_every_format(tmp_path):
    root = tmp_path / "lake"
    root.mkdir()
    # Compressed page: the value repeated enough for zstd to hide it from a byte scan.
    rows = [f"row {i} filler" for i in range(5000)] + [SECRET.upper()] * 50
    pq.write_table(pa.table({"v": rows}), root / "data.parquet", compression="zstd",
                   write_statistics=False)
    raw = (root / "data.parquet").read_bytes().lower()
    assert SECRET.encode() not in raw  # only decompression finds it
    # Statistics only: the page holds the value, the footer's max holds it too; a file
    # whose data no longer has it but whose stats do is the Delta log checkpoint case.
    pq.write_table(pa.table({"v": ["a", SECRET]}), root / "stats.parquet", compression="zstd")
    con = duckdb.connect(str(root / "gold.duckdb"))
    con.execute("CREATE TABLE t AS SELECT 'x' || range AS a, CASE WHEN range = 777 "
                f"THEN '{SECRET}' END AS b FROM range(20000)")
    con.close()
    db = sqlite3.connect(root / "runs.db")
    db.execute("CREATE TABLE event_logs (id INTEGER PRIMARY KEY, event TEXT)")
    db.execute("INSERT INTO event_logs (event) VALUES (?)",
               ("x" * 9000 + " " + SECRET + " " + "y" * 9000,))  # spans overflow pages
    db.commit()
    db.close()
    (root / "log.json").write_text(json.dumps({"msg": f"user {SECRET} did"}))
    (root / "clean.txt").write_text("nothing to see")
    report = scan({"lake": root}, [Target("email", SECRET)])
    found = _kinds(report)
    assert "data.parquet" in found and "parquet" in found["data.parquet"]
    assert "stats.parquet" in found
    assert any(h.where == "parquet statistics" for h in report.hits)
    assert "gold.duckdb" in found and "table" in found["gold.duckdb"]
    assert "runs.db" in found and "table" in found["runs.db"]
    assert "log.json" in found
    assert "clean.txt" not in found
    assert report.files == 6 and report.bytes > 0
    assert all(SECRET not in f"{h.path} {h.where} {h.kind}" for h in report.hits)


def test_pairs_are_found_only_together(tmp_path):
    root = tmp_path / "lake"
    root.mkdir()
    pl.DataFrame({"last_name": ["Doe", "Roe"], "birth_date": ["1980-05-06", "1999-01-02"]}
                 ).write_parquet(root / "apart.parquet")  # Doe has another date
    pl.DataFrame({"last_name": ["Doe"], "birth_date": ["1980-05-06"]}).write_parquet(
        root / "other.parquet")
    (root / "log.txt").write_text("Doe\n1999-01-02\n")  # different lines
    pair = Target("name+birth_date", "doe", "1999-01-02")
    assert scan({"lake": root}, [pair]).hits == []
    pl.DataFrame({"last_name": ["DOE"], "birth_date": ["1999-01-02"]}).write_parquet(
        root / "together.parquet")
    (root / "log2.txt").write_text("name=Doe born=1999-01-02\n")
    hits = {h.path for h in scan({"lake": root}, [pair]).hits}
    assert hits == {"lake/together.parquet", "lake/log2.txt"}


def test_inbox_names_the_file_line_and_column_of_a_bad_request(tmp_path):
    folder = inbox.folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / "good.json").write_text(json.dumps([{"email": "a@b.co"},
                                                  {"phone": "+14155550100", "request_id": "T-1"}]))
    (folder / "broken.json").write_text('{"email": "a@b.co",\n "phone": }')
    (folder / "two.json").write_text(json.dumps({"email": "a@b.co", "phone": "+1415"}))
    (folder / "odd.json").write_text(json.dumps({"mail": "a@b.co"}))
    requests, files, problems = inbox.pending(tmp_path)
    assert [(r.kind, r.request_id) for r in requests] == [("email", "good-0"), ("phone", "T-1")]
    assert files == [folder / "good.json"]
    text = "\n".join(problems)
    assert "broken.json: line 2 column" in text
    assert "two.json: name exactly one" in text
    assert "odd.json: unknown key(s) mail" in text
    with pytest.raises(ValueError, match="request id"):
        inbox.submit(tmp_path, "email", "a@b.co", "no spaces allowed")
    path = inbox.submit(tmp_path, "email", "a@b.co", "TICKET-9")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_value_inside_a_longer_one_is_another_value(tmp_path):
    """`+1415555012` inside `+14155550123` (another number), a record id inside a longer
    one, a last name inside another word: not hits in decoded values and text; the same
    bytes in a binary file's raw bytes are (a length byte may be a letter)."""
    root = tmp_path / "lake"
    root.mkdir()
    pl.DataFrame({"phone": ["+14155550123"], "id": ["X0030000001L3JIQAA3"],
                  "last_name": ["Lieberman"], "birth": ["1980-01-02"]}
                 ).write_parquet(root / "others.parquet")
    (root / "log.txt").write_text("call +14155550123 about Lieberman 1980-01-02\n")
    targets = [Target("phone", "+1415555012"), Target("record", "0030000001l3jiqaa3"),
               Target("name+birth_date", "li", "1980-01-02")]
    assert scan({"lake": root}, targets).hits == []
    pl.DataFrame({"phone": ["+1415555012"]}).write_parquet(root / "mine.parquet")
    assert {h.path for h in scan({"lake": root}, targets).hits} == {"lake/mine.parquet"}


def test_a_pair_in_a_table_row_is_two_whole_values(tmp_path):
    """Another person born the same day whose name only contains the last name (a
    double-barrelled name, an e-mail) is not a hit; the name as a value, or as a JSON
    string in a traits column, with the date is."""
    root = tmp_path / "lake"
    root.mkdir()
    pair = Target("name+birth_date", "bakker", "1990-01-01")
    pl.DataFrame({"last_name": ["Bakker-Jansen"], "email": ["anna.bakker@x.nl"],
                  "birth_date": ["1990-01-01"]}).write_parquet(root / "other.parquet")
    assert scan({"lake": root}, [pair]).hits == []
    pl.DataFrame({"traits": ['{"lastName": "Bakker", "birthday": "1990-01-01"}']}
                 ).write_parquet(root / "mine.parquet")
    assert {h.path for h in scan({"lake": root}, [pair]).hits} == {"lake/mine.parquet"}
