"""Every contract table parses the same from CSV, JSONL and Parquet."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from c360_assets.bronze import BUILTIN
from c360_assets.bronze.contract import SOURCE_FILE_COL, SOURCE_LINE_COL
from c360_assets.bronze.landing import ingest_table, landed_days
from tests.helpers import NOW, comparable

TABLES = [(s, t) for s in BUILTIN for t in s.tables]
# Shopify's Parquet files are the GraphQL flavour: no legacy accepts_marketing fields, enums
# upper-case. Everything else must be value-for-value identical across formats.
FLAVOUR_COLUMNS = ("accepts_marketing", "accepts_marketing_updated_at")


def _typed(root, source, table) -> pl.DataFrame:
    days, problems = landed_days(root, source)
    assert not problems
    batch = ingest_table(root, table, days, NOW)
    assert batch.quarantine.is_empty() and not batch.problems, batch.quarantine.head(3).to_dicts()
    assert batch.good.height > 0
    frame = batch.good.drop(SOURCE_FILE_COL, SOURCE_LINE_COL, *FLAVOUR_COLUMNS, strict=False)
    if "email_marketing_consent_state" in frame.columns:
        frame = frame.with_columns(pl.col("email_marketing_consent_state").str.to_lowercase())
    return comparable(frame)


@pytest.mark.parametrize(("source", "table"), TABLES, ids=[t.key for _, t in TABLES])
def test_table_parses_identically_from_csv_jsonl_and_parquet(worlds_by_format, source, table) -> None:
    csv = _typed(worlds_by_format["csv"], source, table)
    for fmt in ("jsonl", "parquet"):
        other = _typed(worlds_by_format[fmt], source, table)
        assert_frame_equal(other, csv, check_column_order=True)
    for name in ("csv", "jsonl", "parquet"):
        files = list((worlds_by_format[name] / source.name / table.name).rglob(f"*.{name}"))
        assert files, f"no {name} files for {table.key}"
