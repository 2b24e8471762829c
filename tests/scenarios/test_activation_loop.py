"""The echo loop, closed through the real pipeline: gold -> the profile sync to a
Salesforce-like server holding the world's Salesforce contacts -> the server's export
landed as Salesforce contacts -> the pipeline again -> every golden value, its source
and its field time unchanged -> the next sync sends nothing.

Without echo suppression the values c360 wrote come back stamped with the write-back's
time and win the next build (the test checks that the export did carry such changes).
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
from c360_assets.activation.engine import run_sync
from c360_assets.activation.spec import load_syncs
from c360_assets.lib.config import load_config
from c360_assets.plan import materialize
from c360_assets.runner import instance_for
from tests.servers.salesforce_like import SalesforceLike

pytestmark = pytest.mark.xdist_group("small_world")
REPO = Path(__file__).parents[2]


def golden(lake: Path) -> pl.DataFrame:
    profile = pl.read_delta(str(lake / "gold" / "customer_profile_v2"))
    keep = [c for c in profile.columns
            if c not in ("extensions", "source_record_count", "profile_resolved_at")]
    return profile.select(keep).sort("customer_id")


def test_what_a_sync_wrote_comes_back_as_an_echo_not_as_news(small_world, tmp_path, monkeypatch):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(small_world, landing)
    quiet = {"instance": instance_for(lake), "log_level": "ERROR", "echo": lambda _: None}
    assert materialize(landing, lake, **quiet).ok
    before = golden(lake)

    contacts = (pl.read_delta(str(lake / "bronze" / "salesforce_contact"))
                .sort("_landing_date", "_source_file", "_source_line")
                .unique("id", keep="last", maintain_order=True)
                .drop("_extra", "_landing_date", "_source_file", "_source_line", "_ingested_at"))
    spec = load_syncs(REPO / "config" / "syncs")["profile_to_salesforce"]
    with SalesforceLike() as sf:
        sf.seed_landed(contacts.to_dicts())
        monkeypatch.setenv("C360_SALESFORCE_URL", sf.url)
        monkeypatch.setenv("C360_SALESFORCE_TOKEN", "integration-token")
        first = run_sync(lake, spec, load_config(), echo=lambda _: None)
        # Rejected: only persons whose e-mail two Salesforce contacts hold (the world's
        # duplicates): Salesforce cannot tell which to update, c360 does not guess.
        refused = pl.read_delta(str(lake / "activation" / "changelog")).filter(
            (pl.col("status") == "rejected") & (pl.col("op") != "none"))
        assert first.acknowledged > 100 and refused.height == first.rejected
        assert refused["error"].str.contains("DUPLICATE_EXTERNAL_ID").all()
        updated = sum(1 for r in sf.live() if r.get("LastModifiedById") == "005INTEGRATION00001")
        assert sf.creates > 0 and updated > sf.creates  # existing contacts were updated too

        now = dt.datetime.now(dt.UTC)
        sf.export_contacts(landing, now.date().isoformat(), now)
        assert materialize(landing, lake, **quiet).ok

        relationships = pl.read_delta(str(lake / "silver" / "relationships"))
        echoes = relationships.filter(pl.col("properties").str.contains("echo_field_time"))
        # the export did carry new values (phones in E.164, countries as codes, new
        # contacts): each is an echo, at the field time of the value c360 sent
        assert echoes.height > 100
        after = golden(lake)
        assert after.height == before.height
        changed = before.join(after, on=before.columns, how="anti", nulls_equal=True)
        assert after.equals(before), (
            f"gold changed for {changed.height} persons: "
            f"{after.join(changed.select('customer_id'), on='customer_id').head(3).to_dicts()} "
            f"was {changed.head(3).to_dicts()}")
        again = run_sync(lake, spec, load_config(), echo=lambda _: None)
        assert again.operations == 0, again.planned
        assert again.planned["held_rejected"] == first.rejected

    # An erasure reaches what syncs keep: state, changelog, echoes (then proven).
    state = pl.read_delta(str(lake / "activation" / "profile_to_salesforce" / "state"))
    person = state.sort("_person")["_person"][0]
    email = after.filter(pl.col("customer_id") == person)["email"][0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["erase", "--email", email, "--request-id", "T-18",
                         "--landing", str(landing), "--lake", str(lake)])
    assert code == 0, out.getvalue()[-3000:]
    assert "PROVEN: zero occurrences left" in out.getvalue()
    for table in ("changelog", "echoes", "profile_to_salesforce/state"):
        rows = pl.read_delta(str(lake / "activation" / table))
        assert not rows.select(pl.all().cast(pl.String).str.contains(email, literal=True)
                               .any()).row(0).__contains__(True)
