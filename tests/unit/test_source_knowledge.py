"""What a source means lives in its own module (`c360_assets/bronze/<source>.py`):
generic code and the dbt models never name a source, a source table or a record id
prefix of one. (The generator simulates the five sources' connectors, so it names them;
docstrings and comments may use them as examples.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from c360_assets.bronze import BUILTIN

ROOT = Path(__file__).resolve().parents[2]
SOURCE_MODULES = {ROOT / "c360_assets" / "bronze" / f"{s.name}.py" for s in BUILTIN}
# A destination's own module may name the product it writes to (the Salesforce REST API
# is a destination there, not the source): one module per destination kind.
DESTINATION_MODULES = {p for p in (ROOT / "c360_assets" / "activation" / "destinations").glob("*.py")
                       if p.stem not in ("__init__", "base", "http")}
ENTITY_TYPES = {t.records.entity_type for s in BUILTIN for t in s.tables if t.records}
# Table names that are plain words generic code may use in their own sense (a shared
# "contact" value, a "user" of the CLI): only the compound names of those tables count.
PLAIN_WORDS = ENTITY_TYPES | {"contact", "account", "user", "organization"}


def forbidden() -> set[str]:
    """Names that mean one source: the source, `source/table`, `source_table`, a record
    node prefix, and a table name that is not also an entity type."""
    out = set()
    for s in BUILTIN:
        out.add(s.name)
        for t in s.tables:
            out |= {t.ref, t.key}
            if t.name not in PLAIN_WORDS:
                out.add(t.name)
            if t.records:
                out.add(t.node_prefix())
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def python_hits(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    words = re.compile(r"(?<![\w:/])(" + "|".join(map(re.escape, sorted(names))) + r")(?![\w/])")
    keys = [n for n in names if "/" in n or n.endswith(":")]
    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) \
                or id(node) in skip:
            continue
        text = node.value
        found = text if text in names else next((k for k in keys if k in text), None)
        if found is None and len(text) < 40:  # short keys and literals, not prose
            match = words.fullmatch(text.strip("'\" "))
            found = match.group(0) if match else None
        if found:
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            hits.append(f"{where}:{node.lineno}: {text!r}")
    return hits


def test_generic_python_names_no_source_or_source_table():
    names = forbidden()
    generic = [p for p in (ROOT / "c360_assets").rglob("*.py")
               if p not in SOURCE_MODULES | DESTINATION_MODULES
               and "generator" not in p.relative_to(ROOT).parts]
    hits = [h for p in generic for h in python_hits(p, names)]
    assert not hits, "source knowledge outside its module:\n" + "\n".join(hits)


def test_dbt_sql_names_no_source():
    pattern = re.compile(r"'(" + "|".join(map(re.escape, sorted(forbidden()))) + r")'")
    hits = []
    for path in (ROOT / "dbt_project").rglob("*.sql"):
        if "target" in path.relative_to(ROOT / "dbt_project").parts:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "source knowledge in dbt SQL:\n" + "\n".join(hits)


def test_the_guard_sees_what_it_is_meant_to_refuse(tmp_path):
    sample = tmp_path / "generic.py"
    sample.write_text('"""About sap/adr6."""\nif table.key == "sap/adr6":\n    pass\n'
                      'x = pl.format("customer:shopify:{}", "id")\ny = "segment"\n'
                      'rule = "salesforce_merge"\nz = "kna1"\nw = "contact"\n')
    hits = python_hits(sample, forbidden())
    assert sorted(int(h.split(":")[1]) for h in hits) == [2, 4, 5, 7]
