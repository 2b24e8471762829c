"""The user docs' generated sections match the code and config they describe.

`docs/landing-contract.md` lists the contract's tables from the bronze specs and the
registry's default mappings from `config/attribute_name_registry.csv`. After changing
either, regenerate: `C360_WRITE_DOCS=1 pytest tests/unit/test_docs.py`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from c360_assets.bronze import SOURCES, contract
from c360_assets.lib import registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "landing-contract.md"
BLOCK = re.compile(r"(<!-- generated from (?P<what>\S+)[^>]*-->\n)(?P<body>.*?)(<!-- end generated -->)",
                   re.S)
GENERATORS = {
    "c360_assets/bronze": lambda: contract.markdown(SOURCES),
    "config/attribute_name_registry.csv": lambda: registry.markdown(registry.load_registry()),
}


def test_landing_contract_doc_lists_what_the_code_accepts():
    text = DOC.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    assert sorted(b["what"] for b in blocks) == sorted(GENERATORS)
    fresh = BLOCK.sub(lambda b: b.group(1) + GENERATORS[b["what"]]() + b.group(4), text)
    if os.environ.get("C360_WRITE_DOCS") == "1":
        DOC.write_text(fresh, encoding="utf-8")
    assert fresh == text, (f"{DOC} is out of date with the bronze specs or the registry; "
                           "run C360_WRITE_DOCS=1 pytest tests/unit/test_docs.py")


def test_every_required_column_of_every_table_is_in_the_doc():
    """Independent of the generator: each table and each required column appears."""
    text = DOC.read_text(encoding="utf-8")
    for source in SOURCES:
        for table in source.tables:
            assert f"`{source.name}/{table.name}`" in text
            for name in table.required:
                assert f"**{name}**" in text
