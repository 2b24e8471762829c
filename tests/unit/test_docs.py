"""The user docs' generated sections match the code and config they describe.

`docs/landing-contract.md` lists the contract's tables from the bronze specs and the
registry's default mappings from `config/attribute_name_registry.csv`;
`docs/data-model.md` lists the lake's tables from the schemas c360 writes them with.
After changing any of them, regenerate: `C360_WRITE_DOCS=1 pytest tests/unit/test_docs.py`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from c360_assets.bronze import BUILTIN, contract
from c360_assets.lib import registry

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = DOCS / "landing-contract.md"
BLOCK = re.compile(r"(<!-- generated from (?P<what>\S+)[^>]*-->\n)(?P<body>.*?)(<!-- end generated -->)",
                   re.S)
def type_word(dtype: object) -> str:
    import polars as pl

    if isinstance(dtype, pl.Datetime):
        return f"timestamp ({dtype.time_zone or 'naive'})"
    if isinstance(dtype, pl.List):
        return f"list of {type_word(dtype.inner)}"
    return {pl.String: "string", pl.Int64: "int64", pl.Int32: "int32", pl.Int8: "int8",
            pl.Float64: "double", pl.Boolean: "boolean", pl.Date: "date"}[dtype.base_type()]


def schema_lines(name: str, what: str, schema: dict, label: str = "Columns") -> list[str]:
    cols = ", ".join(f"`{c}` {type_word(dtype)}" for c, dtype in schema.items())
    return [f"* `{name}`: {what} {label}: {cols}."]


def data_model_markdown() -> str:
    """Every lake table c360 writes from its own schemas (gold's are dbt's)."""
    from c360_assets.activation import state as activation
    from c360_assets.bronze.contract import BOOKKEEPING_SCHEMA
    from c360_assets.bronze.landing import QUARANTINE_SCHEMA
    from c360_assets.privacy import ledger
    from c360_assets.silver import identity_build
    from c360_assets.silver.field_changes import FIELD_CHANGES_SCHEMA
    from c360_assets.silver.graph import NODES_SCHEMA, RELATIONSHIPS_SCHEMA

    lines = schema_lines(
        "bronze/<source>_<table>", "every contract column of the table, typed "
        "(docs/landing-contract.md), partitioned by `_landing_date`.", BOOKKEEPING_SCHEMA,
        "Then, on every table")
    lines += schema_lines("quarantine/<source>_<table>", "every rejected row with where "
                          "and why; `raw` holds the landed values as JSON.", QUARANTINE_SCHEMA)
    lines += schema_lines("silver/field_changes", "one row per field change of a record: "
                          "the raw and normalised value, whether it is valid, its field time "
                          "and precision, and where it was ingested from.",
                          FIELD_CHANGES_SCHEMA)
    lines += schema_lines("silver/nodes", "value nodes (`node_type` = canonical attribute, "
                          "`value` normalised) and entity nodes (customer, company, asset "
                          "records).", NODES_SCHEMA)
    lines += schema_lines("silver/relationships", "SCD-2 edges: `record_node_id`, "
                          "`rel_type`, `source_system` has one current edge.",
                          RELATIONSHIPS_SCHEMA)
    lines += schema_lines("silver/identity", "customer record -> person, and why (`rule`, "
                          "`matched_on`, `confidence`).", identity_build.IDENTITY_SCHEMA)
    lines += schema_lines("silver/identity_events", "person merges and splits between "
                          "runs.", identity_build.EVENTS_SCHEMA)
    lines += schema_lines("silver/identity_links", "every record pair identity looked at: "
                          "linked, held, accepted, refused (with the reason) or below the "
                          "threshold, with the per-comparison match weights.",
                          identity_build.LINKS_SCHEMA)
    lines += schema_lines("silver/identity_features", "one row per customer record: its "
                          "comparison inputs, the records a Salesforce merge made it part "
                          "of, a fingerprint of what identity reads of it, and its group "
                          "(the smallest node id its links and strong pairs reach).",
                          identity_build.FEATURES_TABLE_SCHEMA)
    lines += schema_lines("silver/identity_keys", "every valid identifying value each "
                          "record ever held (an e-mail replaced since still says who the "
                          "record was).", identity_build.KEYS_SCHEMA)

    lines += schema_lines("privacy/requests", "one row per erasure request and status "
                          "change (`received`, `applied`, `proven`, `failed`); `fingerprint` is "
                          "the keyed HMAC of what it named, never the value.",
                          ledger.REQUESTS_SCHEMA)
    lines += schema_lines("privacy/suppression", "fingerprints bronze drops landed rows by "
                          "(`kind`: email, phone, record, row).", ledger.SUPPRESSION_SCHEMA)
    lines += schema_lines("privacy/receipts", "one row per proven (or failed) erasure: what "
                          "it deleted and rewrote, what the proof scanned, the hits; `receipt` "
                          "is the full receipt as JSON.", ledger.RECEIPTS_SCHEMA)
    lines += schema_lines("activation/<sync>/state", "one row per person with a record in "
                          "the sync's destination: its match key, the destination's id, the "
                          "merge survivor when flagged; then `v:<field>` string per mapped "
                          "field, the value the destination acknowledged.",
                          activation.STATE_BASE)
    lines += schema_lines("activation/<sync>/rejected", "persons whose content the "
                          "destination refused, held back until it changes.",
                          activation.REJECTED_SCHEMA)
    lines += schema_lines("activation/runs", "one row per sync run.", activation.RUNS_SCHEMA)
    lines += schema_lines("activation/changelog", "append-only, per field: before, after, "
                          "status (acknowledged, rejected, not_found), error; a create is "
                          "one row, field `*`.", activation.CHANGELOG_SCHEMA)
    lines += schema_lines("activation/echoes", "what syncs wrote into a source's records "
                          "(silver recognises them when they land back).",
                          activation.ECHO_SCHEMA)
    return "\n".join(lines) + "\n"


GENERATORS = {
    "c360_assets/bronze": lambda: contract.markdown(BUILTIN),
    "config/attribute_name_registry.csv": lambda: registry.markdown(
        registry.load_registry(), tuple(s.name for s in BUILTIN)),
    "c360_assets": data_model_markdown,
}


@pytest.mark.parametrize("name", ["landing-contract.md", "data-model.md"])
def test_generated_doc_sections_match_the_code(name):
    doc = DOCS / name
    text = doc.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    assert blocks and all(b["what"] in GENERATORS for b in blocks)
    fresh = BLOCK.sub(lambda b: b.group(1) + GENERATORS[b["what"]]() + b.group(4), text)
    if os.environ.get("C360_WRITE_DOCS") == "1":
        doc.write_text(fresh, encoding="utf-8")
    assert fresh == text, (f"{doc} is out of date with the code it describes; "
                           "run C360_WRITE_DOCS=1 pytest tests/unit/test_docs.py")


def test_every_required_column_of_every_table_is_in_the_doc():
    """Independent of the generator: each table and each required column appears."""
    text = DOC.read_text(encoding="utf-8")
    for source in BUILTIN:
        for table in source.tables:
            assert f"`{source.name}/{table.name}`" in text
            for name in table.required:
                assert f"**{name}**" in text
