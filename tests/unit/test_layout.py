"""`lib/layout.py` owns where things live in a lake; dbt is handed the lake root
(`C360_LAKE`) and must find the same tables there."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from c360_assets.lib import layout

ROOT = Path(__file__).resolve().parents[2]
LAKE_VAR = re.compile(r"\{\{\s*env_var\('C360_LAKE'(, '[^']*')?\)\s*\}\}")


def _render(text: str, lake: Path) -> str:
    return LAKE_VAR.sub(str(lake), text)


def test_dbt_reads_silver_where_layout_puts_it(tmp_path):
    text = (ROOT / "dbt_project" / "models" / "silver" / "_sources.yml").read_text()
    tables = yaml.safe_load(_render(text, tmp_path))["sources"][0]["tables"]
    assert tables, "no silver sources"
    for table in tables:
        assert Path(table["config"]["meta"]["delta_table_path"]) == \
            layout.silver_table(tmp_path, table["name"]), table["name"]


def test_dbt_writes_its_duckdb_file_where_layout_puts_it(tmp_path):
    text = (ROOT / "dbt_project" / "profiles.yml").read_text()
    duckdb = yaml.safe_load(_render(text, tmp_path))["c360"]["outputs"]["duckdb"]
    assert Path(duckdb["path"]) == layout.gold_db(tmp_path)


def test_generic_code_builds_no_lake_path_by_hand():
    pattern = re.compile(r"""(/\s*["'](bronze|silver|gold|quarantine|_ops|_identity)["'])"""
                         r"""|["']gold\.duckdb["']""")
    hits = []
    for path in (ROOT / "c360_assets").rglob("*.py"):
        if path == ROOT / "c360_assets" / "lib" / "layout.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "lake paths outside lib/layout.py:\n" + "\n".join(hits)
