"""Helpers to write hand-made landing files and read lakes back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from c360_assets.bronze.contract import INGESTED_AT_COL
from c360_assets.bronze.landing import ingest_table

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def land(root: Path, source: str, table: str, day: str, name: str, content: str | bytes) -> Path:
    path = root / source / table / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def land_parquet(root: Path, source: str, table: str, day: str, name: str,
                 frame: pl.DataFrame) -> Path:
    path = root / source / table / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


def comparable(frame: pl.DataFrame, drop: tuple[str, ...] = ()) -> pl.DataFrame:
    """A frame without run-dependent columns, in a canonical row order."""
    cols = [c for c in frame.columns if c not in (INGESTED_AT_COL, *drop)]
    return frame.select(cols).sort(cols, nulls_last=True)


def assert_same_tables(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    from polars.testing import assert_frame_equal

    assert sorted(left) == sorted(right)
    for name in left:
        assert_frame_equal(left[name], right[name], check_row_order=True)


LAKE_GOLD = ("customer_profile_v2", "resolved_attributes", "consent_log", "company_assets")
RUN_DEPENDENT = ("profile_resolved_at", "ingested_at", "resolved_at", "_ingested_at")


def lake_tables(lake: Path) -> dict[str, pl.DataFrame]:
    """Every bronze, quarantine and silver table and the main gold tables of a lake, each
    without run-dependent columns and in a canonical row order: equal dicts, equal lakes.

    Left out: the identity run's working tables and its merge/split log (a history of how
    the lake got here, which differs by design between two ways of getting there)."""
    from c360_assets.lib import delta
    from c360_assets.lib.maintenance import lake_tables as tables

    out = {}
    for path in tables(lake):
        layer = path.parent.name
        if (layer == "gold" and path.name not in LAKE_GOLD) or (
                layer == "silver" and (path.name.startswith("identity_")
                                       or path.name == "record_changes")):
            continue
        frame = delta.read_table(path)
        out[f"{layer}/{path.name}"] = comparable(
            frame, drop=tuple(c for c in RUN_DEPENDENT if c in frame.columns))
    return out


def assert_same_lake(lake: Path, reference: Path) -> None:
    """`lake` holds what `reference` holds (`lake_tables`), table by table."""
    expected, got = lake_tables(reference), lake_tables(lake)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].equals(expected[name]), f"{name} differs from {reference}"


def ingest(landing: Path, lake: Path, source: str, day: dt.date | str,
           ingested_at: dt.datetime = NOW) -> None:
    """Bronze for one source and landing day, without Dagster (fast scenario set-up): the
    same ingest and predicate overwrite the bronze asset runs."""
    from c360_assets.bronze import BUILTIN_BY_NAME
    from c360_assets.lib import delta

    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    for spec in BUILTIN_BY_NAME[source].tables:
        batch = ingest_table(landing, spec, [day], ingested_at)
        if batch.good.height == 0 and not delta.table_exists(lake / "bronze" / spec.key):
            continue
        delta.replace_date_partitions(lake / "bronze" / spec.key, batch.good,
                                      partition_col="_landing_date", first=day, last=day)


def silver(lake: Path, full: bool = False):  # noqa: ANN201 - build.SilverReport
    from c360_assets.bronze import BUILTIN, record_tables
    from c360_assets.lib.registry import load_registry
    from c360_assets.silver.build import build_silver
    return build_silver(lake, load_registry(), record_tables(BUILTIN), full=full,
                        progress=lambda _: None)


def read_silver(lake: Path, name: str) -> pl.DataFrame:
    return pl.read_delta(str(lake / "silver" / name))


def csv_text(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


def identity(lake: Path, full: bool = False, **overrides):  # noqa: ANN201 - IdentityReport
    """Identity resolution over the lake's silver graph (config overrides as keywords)."""
    from c360_assets.lib.config import load_config
    from c360_assets.silver.identity_build import build_identity
    from c360_assets.silver.identity_model import load_model

    config = load_config().identity.model_copy(update=overrides)
    from c360_assets.lib.registry import load_registry
    from c360_assets.silver.identity import Inputs
    return build_identity(lake, config, load_model(lake=lake), Inputs.of(load_registry()),
                          full=full,
                          progress=lambda _: None)


def persons(lake: Path) -> dict[str, str]:
    """node_id -> person_id from silver/identity."""
    frame = pl.read_delta(str(lake / "silver" / "identity"))
    return dict(frame.select("node_id", "person_id").iter_rows())


def zendesk_users_csv(ids: range, updated: dt.datetime, synced: dt.datetime | None = None,
                      bad: int = 0) -> str:
    """A Zendesk user snapshot file: one row per id, updated and synced at the given times
    (synced defaults to updated), plus `bad` rows whose id is not a number (quarantined)."""
    u, s = (t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in (updated, synced or updated))
    rows = [f"{i},User {i},{u},false,{s}\n" for i in ids]
    rows += [f"x{i},Broken {i},{u},false,{s}\n" for i in range(bad)]
    return "id,name,updated_at,_fivetran_deleted,_fivetran_synced\n" + "".join(rows)
