"""No PII in logs (issue 17): a whole run's console output (at DEBUG), Dagster's event
logs and storage, and dbt's logs and artifacts hold none of the world's e-mails or phones
(as the truth has them, and every e-mail as landed). Previews carry masked values."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
from pathlib import Path

import polars as pl
import pytest

from c360_assets import cli
from c360_assets.generator import generate
from c360_assets.lib import layout
from c360_assets.privacy.proof import Target, scan

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def test_a_whole_runs_logs_hold_no_email_or_phone(tmp_path: Path, monkeypatch):
    landing, lake, home = tmp_path / "landing", tmp_path / "lake", tmp_path / "home"
    generate(120, 3, 31, landing, start=dt.date(2026, 1, 1), progress=lambda _: None)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(["materialize", "--landing", str(landing), "--lake", str(lake),
                         "--log-level", "DEBUG"])
    assert code in (0, 1), out.getvalue()[-2000:]  # 1: a staleness WARN is fine
    assert (lake / "gold" / "customer_profile_v2").exists()
    truth = pl.read_parquet(landing / "_truth" / "attributes.parquet")
    values = set(truth.filter(pl.col("attribute").is_in(["email", "phone", "mobilePhone"]))
                 .get_column("value").to_list())
    landed = set()
    for path in landing.glob("*/*/*/*.*"):
        if path.parts[-4] != "_truth" and path.suffix in (".csv", ".jsonl"):
            landed |= set(EMAIL.findall(path.read_text(encoding="utf-8", errors="replace")))
    targets = [Target("email" if "@" in v else "phone", v.strip().lower())
               for v in values | landed if len(v.strip()) >= 6]
    assert len(targets) > 200
    console = tmp_path / "console"
    console.mkdir()
    (console / "output.txt").write_text(out.getvalue())
    assert len(out.getvalue()) > 10_000  # DEBUG: a real log, not an empty one
    report = scan({"console": console, "dagster_home": home,
                   "dbt": layout.dbt_target(lake), "ops": lake / layout.OPS}, targets)
    assert report.files > 20
    assert report.hits == [], report.hits[:10]


@pytest.mark.parametrize("value", ["alex.doe@example.com", "+14155550123"])
def test_the_scan_above_would_see_an_unmasked_value(tmp_path: Path, value: str):
    """The check can fail: a value written into a Dagster-like SQLite event log and a
    text log is found."""
    import sqlite3

    db = sqlite3.connect(tmp_path / "index.db")
    db.execute("CREATE TABLE event_logs (event TEXT)")
    db.execute("INSERT INTO event_logs VALUES (?)", (f'{{"preview": "| {value} |"}}',))
    db.commit()
    db.close()
    hits = scan({"home": tmp_path}, [Target("x", value.lower())]).hits
    assert {h.path for h in hits} == {"home/index.db"}
