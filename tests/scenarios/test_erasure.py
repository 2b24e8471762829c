"""Erasure with proof (issue 17): one person erased from a lake built over several days
reaches zero occurrences in every file under the lake and the Dagster home; the others'
gold rows do not change; the next incremental run works; re-landed rows stay out.

What must not be found comes from the generator's truth (the person's true e-mails,
phones, last name + birth date, source record ids) and from the landing files as
landed (every raw e-mail and phone of the person's records), not from c360's own
scope, so a record c360 failed to reach shows up as a hit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import shutil
from pathlib import Path

import polars as pl
import pytest

from c360_assets import cli
from c360_assets.generator import generate
from c360_assets.lib import delta, layout, normalise
from c360_assets.lib.hashing import sha256
from c360_assets.plan import materialize
from c360_assets.privacy import inbox, ledger
from c360_assets.privacy.proof import Target, scan

pytestmark = pytest.mark.xdist_group("erasure")
START = dt.date(2026, 1, 1)
DAYS = 4


def _move_days(landing: Path, days: list[str], to: Path) -> None:
    for folder in sorted(landing.glob("*/*/*")):
        if folder.name in days and folder.is_dir():
            dest = to / folder.relative_to(landing)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), dest)


def _restore(held: Path, landing: Path, day: str) -> None:
    for folder in sorted(held.glob(f"*/*/{day}")):
        dest = landing / folder.relative_to(held)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(folder, dest)


def _build(landing: Path, lake: Path) -> None:
    summary = materialize(landing, lake, log_level="ERROR", echo=lambda _: None)
    assert summary.ok, summary.problems


def _pick_person(landing: Path, lake: Path) -> tuple[str, pl.DataFrame, pl.DataFrame]:
    """A true person with 3+ records that identity holds as exactly one person, and no
    e-mail or phone another true person also has: (truth person id, their records,
    their true attribute values)."""
    records = pl.read_parquet(landing / "_truth" / "records.parquet").with_columns(
        pl.format("customer:{}:{}", "source", "record_id").alias("node_id"))
    truth = pl.read_parquet(landing / "_truth" / "attributes.parquet")
    identity = delta.read_table(layout.silver_table(lake, "identity"))
    shared = (truth.filter(pl.col("attribute").is_in(["email", "phone", "mobilePhone"]))
              .group_by("value").agg(pl.col("person_id").n_unique().alias("n"))
              .filter(pl.col("n") > 1).get_column("value"))
    joined = records.join(identity.select("node_id", pl.col("person_id").alias("c360")),
                          on="node_id", how="left")
    for pid, group in sorted(joined.group_by("person_id"), key=lambda g: str(g[0][0])):
        c360 = group.get_column("c360")
        if group.height < 3 or c360.null_count() or c360.n_unique() != 1:
            continue
        if identity.filter(pl.col("person_id") == c360[0]).height != group.height:
            continue
        mine = truth.filter(pl.col("person_id") == pid[0])
        values = mine.filter(pl.col("attribute").is_in(["email", "phone", "mobilePhone"]))
        if (values.filter(pl.col("attribute") == "email").height == 0
                or values.get_column("value").is_in(shared.implode()).any()):
            continue
        return str(pid[0]), group, mine
    raise AssertionError("no suitable person in this world")


EMAIL_RX = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+"
PHONE_JSON_RX = r'"(?:phone|mobile\w*)"\s*:\s*"([^"]+)"'


def _landed_identifiers(landing: Path, records: pl.DataFrame) -> set[str]:
    """Every raw e-mail and phone in the landing files' rows of `records` (as landed):
    e-mails anywhere in a row (Segment's are inside its traits JSON), phones in columns
    and JSON keys named like phones."""
    out: set[str] = set()
    ids = set(records.get_column("record_id").to_list())
    for path in sorted(landing.glob("*/*/*/*")):
        if path.suffix not in (".csv", ".jsonl", ".parquet") or path.parts[-4] == "_truth":
            continue
        frame = (pl.read_csv(path, infer_schema=False) if path.suffix == ".csv" else
                 pl.read_ndjson(path, infer_schema_length=None) if path.suffix == ".jsonl"
                 else pl.read_parquet(path))
        frame = frame.select(pl.col(c).struct.json_encode() if isinstance(t, pl.Struct)
                             else pl.col(c).cast(pl.String) for c, t in frame.schema.items())
        keys = [c for c in ("id", "user_id", "kunnr", "customer_id") if c in frame.columns]
        if not keys:
            continue
        mine = frame.filter(pl.any_horizontal(pl.col(c).is_in(list(ids)) for c in keys))
        if not mine.height:
            continue
        text = mine.select(pl.concat_str(pl.all(), separator="\t", ignore_nulls=True)).to_series()
        out |= set(text.str.extract_all(EMAIL_RX).explode().drop_nulls().to_list())
        out |= set(text.str.extract_all(PHONE_JSON_RX).explode().drop_nulls()
                   .str.extract(PHONE_JSON_RX).drop_nulls().to_list())
        for column in mine.columns:
            if any(w in column.lower() for w in ("phone", "mobile", "tel_number")):
                out |= {v.strip() for v in mine.get_column(column).drop_nulls().to_list()}
    return {v.strip() for v in out if len(v.strip()) >= 6}


def _targets(landing: Path, records: pl.DataFrame, truth: pl.DataFrame) -> list[Target]:
    targets = [Target("record", f"customer:{s}:{r}") for s, r in
               records.select("source", "record_id").iter_rows()]
    targets += [Target("record", r) for r in records.get_column("record_id") if len(r) >= 8]
    for attribute, value in truth.select("attribute", "value").iter_rows():
        if attribute == "email":
            targets.append(Target("email", value.lower()))
        elif attribute in ("phone", "mobilePhone"):
            e164 = normalise.phone_frame(pl.Series([value]), pl.Series([None], dtype=pl.String))
            targets.append(Target("phone", e164.get_column("value").item() or value))
    # Derived node ids: silver's sha256(attribute:value) of the person's identifiers.
    keys = [f"{t.kind}:{t.text}" for t in targets if t.kind == "email"]
    keys += [f"{a}:{t.text}" for t in targets if t.kind == "phone" for a in ("phone", "mobilePhone")]
    targets += [Target("node", n) for n in sha256(pl.Series(keys, dtype=pl.String)).to_list()]
    last = [v for a, v in truth.select("attribute", "value").iter_rows() if a == "lastName"]
    birth = [v for a, v in truth.select("attribute", "value").iter_rows() if a == "birthDate"]
    targets += [Target("name+birth_date", n.lower(), b) for n in last for b in birth]
    targets += [Target("landed", v) for v in _landed_identifiers(landing, records)]
    return targets


@pytest.fixture(scope="session")
def erased(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("erasure")
    landing, lake, held = root / "landing", root / "lake", root / "held"
    generate(150, DAYS, 23, landing, start=START, progress=lambda _: None)
    days = [(START + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
    keep = held / "kept"
    _move_days(landing, days[1:], keep)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)
        mp.delenv(ledger.KEY_ENV, raising=False)
        _build(landing, lake)  # day 1
        for day in days[1:3]:  # days 2 and 3, each its own incremental run
            _restore(keep, landing, day)
            _build(landing, lake)
        person, records, truth = _pick_person(landing, lake)
        c360_person = delta.read_table(layout.silver_table(lake, "identity")).filter(
            pl.col("node_id") == records.get_column("node_id")[0]).get_column("person_id")[0]
        email = truth.filter(pl.col("attribute") == "email").get_column("value")[0]
        before = delta.read_table(layout.gold_table(lake, "customer_profile_v2"))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["erase", "--email", f"  {email.upper()} ", "--request-id",
                             "TICKET-17", "--landing", str(landing), "--lake", str(lake)])
        after = delta.read_table(layout.gold_table(lake, "customer_profile_v2"))
        # Then: the next incremental run (day 4), and the person's rows landed again.
        _restore(keep, landing, days[3])
        _build(landing, lake)
        after_day4 = delta.read_table(layout.gold_table(lake, "customer_profile_v2"))
        relanded = "2026-02-01"
        for folder in sorted(landing.glob(f"*/*/{days[0]}")):
            shutil.copytree(folder, folder.parent / relanded)
        summary = materialize(landing, lake, log_level="ERROR", echo=lambda _: None)
        targets = _targets(landing, records, truth)
        clean = scan({"lake": lake, "dagster_home": root / "dagster_home"}, targets)
        # The customer returns and consents again: off the list, their rows land again.
        with contextlib.redirect_stdout(io.StringIO()):
            unsuppressed = cli.main(["unsuppress", "--request-id", "TICKET-17", "--lake",
                                     str(lake)])
        back = materialize(landing, lake, log_level="ERROR", echo=lambda _: None, force=True)
        returned = delta.read_table(layout.silver_table(lake, "identity")).filter(
            pl.col("node_id").is_in(records.get_column("node_id").implode())).height
    return {"root": root, "landing": landing, "lake": lake, "home": root / "dagster_home",
            "code": code, "output": out.getvalue(), "person": person, "records": records,
            "truth": truth, "c360_person": c360_person, "before": before, "after": after,
            "after_day4": after_day4, "relanded": summary, "targets": targets,
            "clean": clean, "unsuppressed": unsuppressed, "back": back, "returned": returned}


def test_erase_proves_zero_occurrences_in_every_file(erased):
    assert erased["code"] == 0, erased["output"][-3000:]
    assert "PROVEN: zero occurrences left" in erased["output"]
    kinds = {t.kind for t in erased["targets"]}
    assert {"email", "record", "node", "landed"} <= kinds
    report = erased["clean"]  # after the next day's run and the re-landed rows too
    assert report.files > 100 and report.bytes > 1_000_000
    assert report.hits == [], report.hits[:10]


def test_the_receipt_and_ledger_hold_no_identifier(erased):
    receipts = ledger.receipts(erased["lake"])
    assert receipts.height >= 1
    row = receipts.filter(pl.col("request_id") == "TICKET-17").row(0, named=True)
    assert row["hits"] == 0 and row["records_erased"] >= 3 and row["files_scanned"] > 100
    status = ledger.requests(erased["lake"]).filter(pl.col("request_id") == "TICKET-17")
    assert status.get_column("status").to_list() == ["proven"]
    assert status.get_column("due_at")[0] > status.get_column("received_at")[0]
    # The receipt as printed, the ledger's tables: none of the person's values.
    everything = erased["output"] + "".join(
        str(v) for name in ("requests", "receipts", "suppression")
        for v in ledger._read(erased["lake"], name, pl.Schema()).rows())
    low = everything.lower()
    leaked = [t for t in erased["targets"] if t.other is None and t.text.lower() in low]
    assert leaked == []
    assert not list(inbox.folder(erased["landing"]).glob("*.json"))  # request file gone


def test_other_persons_gold_rows_do_not_change(erased):
    gone = erased["c360_person"]
    assert gone in erased["before"].get_column("customer_id").to_list()
    assert gone not in erased["after"].get_column("customer_id").to_list()
    cols = [c for c in erased["before"].columns if c != "profile_resolved_at"]
    before = erased["before"].filter(pl.col("customer_id") != gone).select(cols).sort("customer_id")
    after = erased["after"].select(cols).sort("customer_id")
    assert before.height == after.height
    assert before.equals(after)


def test_next_incremental_run_works_and_relanded_rows_stay_out(erased):
    assert erased["after_day4"].height >= erased["after"].height
    assert erased["c360_person"] not in erased["after_day4"].get_column("customer_id").to_list()
    summary = erased["relanded"]
    assert summary.ok, summary.problems
    suppressed = sum(t.rows_suppressed for t in summary.tables.values())
    assert suppressed > 0


def test_unsuppress_lets_a_returning_customer_back_in(erased):
    assert erased["unsuppressed"] == 0
    assert erased["back"].ok, erased["back"].problems
    assert erased["returned"] == erased["records"].height


def test_killed_between_the_deletes_and_the_proof_a_rerun_proves_it(tmp_path):
    """`kill -9` after bronze, silver, identity and gold have dropped the customer but
    before the purge and proof: the request is still in the inbox, and the next plain
    run purges and proves it (looking for the named values: the rest of the list died
    with the process), and the truth-derived scan finds nothing."""
    import os
    import subprocess
    import sys

    from c360_assets.lib.failpoints import ENV as KILL_AT

    landing, lake = tmp_path / "landing", tmp_path / "lake"
    generate(80, 2, 41, landing, start=START, progress=lambda _: None)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    env.pop(KILL_AT, None)
    env.pop(ledger.KEY_ENV, None)

    def c360(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "c360_assets.cli", *args],
                              env={**env, **({KILL_AT: kill_at} if kill_at else {})},
                              capture_output=True, text=True, timeout=600)

    first = c360("materialize", "--landing", str(landing), "--lake", str(lake))
    assert first.returncode in (0, 1), first.stdout[-2000:] + first.stderr[-2000:]
    person, records, truth = _pick_person(landing, lake)
    email = truth.filter(pl.col("attribute") == "email").get_column("value")[0]
    killed = c360("erase", "--email", email, "--request-id", "KILL-1", "--landing",
                  str(landing), "--lake", str(lake), kill_at="privacy.before_proof")
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
    assert list(inbox.folder(landing).glob("*.json"))  # still queued
    rerun = c360("materialize", "--landing", str(landing), "--lake", str(lake))
    assert rerun.returncode in (0, 1), rerun.stdout[-3000:] + rerun.stderr[-2000:]
    assert "recovered run" in rerun.stdout
    status = ledger.requests(lake).filter(pl.col("request_id") == "KILL-1")
    assert status.get_column("status").to_list() == ["proven"]
    assert not list(inbox.folder(landing).glob("*.json"))
    report = scan({"lake": lake, "dagster_home": tmp_path / "dagster_home"},
                  _targets(landing, records, truth))
    assert report.hits == [], report.hits[:10]
