"""Scoped identity gives the identity of a full resolution, whatever lands when.

A world's (source, day) partitions land in a shuffled order (later days before earlier
ones), a few at a time; after each batch silver updates the graph and identity
re-resolves only the region the changed records can reach. After every batch, a copy of
the lake resolved in full (`full=True`: every record, every pair scored afresh) must hold
the same identity, links (with their statuses and reasons), shared values and per-record
features. Two differently minded worlds: c360's own, and `changes` (first names really
change, households three times as common and sharing a landline, records without contact
values).
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path

import polars as pl
import pytest

from c360_assets.bronze import BUILTIN
from c360_assets.generator import generate
from c360_assets.silver import identity_build
from tests.helpers import identity, ingest, silver

START = dt.date(2026, 1, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(4)]
COMPARED = {
    "identity": ("node_id", "person_id", "rule", "confidence", "matched_on"),
    "identity_links": None,  # every column
    "identity_shared_values": None,
    "identity_features": None,
}


def tables(lake: Path) -> dict[str, pl.DataFrame]:
    out = {}
    for name, cols in COMPARED.items():
        frame = pl.read_delta(str(lake / "silver" / name))
        frame = frame.select(cols) if cols else frame.drop("bucket", strict=False)
        out[name] = frame.sort(frame.columns, nulls_last=True)
    return out


@pytest.mark.parametrize("profile,seed", [("default", 5), ("changes", 8)])
def test_scoped_identity_equals_a_full_resolution_after_every_landing(profile, seed, tmp_path,
                                                                      monkeypatch):
    # Batches this size touch a third of so small a world: scope them all the same.
    monkeypatch.setattr(identity_build, "REGION_SHARE_LIMIT", 1.01)
    staging = tmp_path / "staging"
    generate(400, len(DAYS), seed, staging, start=START, progress=lambda _: None,
             profile=profile)
    order = [(s.name, d) for s in BUILTIN for d in DAYS]
    random.Random(seed).shuffle(order)
    lake, reference = tmp_path / "lake", tmp_path / "reference"
    modes = []
    for start in range(0, len(order), 5):
        for source, day in order[start:start + 5]:
            ingest(staging, lake, source, day)
        silver(lake)
        report = identity(lake)
        modes.append(report.mode)
        shutil.rmtree(reference, ignore_errors=True)
        shutil.copytree(lake, reference)
        full = identity(reference, full=True)
        assert full.mode == "full"
        got, expected = tables(lake), tables(reference)
        for name in COMPARED:
            assert got[name].equals(expected[name]), (
                f"batch {start // 5}: {name} differs from a full resolution\n"
                f"scoped only:\n{got[name].join(expected[name], on=got[name].columns, how='anti', nulls_equal=True)}\n"
                f"full only:\n{expected[name].join(got[name], on=got[name].columns, how='anti', nulls_equal=True)}")
        if report.mode == "scoped":
            assert report.records_reresolved < report.records, report
    assert modes[0] == "full"
    assert modes[1:] == ["scoped"] * (len(modes) - 1), modes
