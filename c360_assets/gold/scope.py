"""Which persons a gold build re-resolves: all of them, or those silver changed.

A gold build is *scoped* when the last one was complete, was made from the same config,
dbt project and target, and the record change log (`lib/change_log.py`) covers every
silver change since the silver data versions it was built from. The scope is every
person who holds a changed record now, plus every person gold filed such a record under
last time (a record that moved between persons leaves its old person to re-resolve, or
to drop). The persons go into the table `c360_gold_scope` of the DuckDB file, and the
incremental models (`dbt_project/macros/person_scope.sql`) delete and re-insert exactly
them (dbt is told by the environment variable `C360_GOLD_SCOPED`). Anything else is a
full build (`dbt build --full-refresh`), and says why.

The journal entry `build` (`gold/publish.py`) says what the last complete build was
made from. It is cleared before a scoped build starts and written after its publish, so
a build that failed or died part-way leaves the next one full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from c360_assets.lib import change_log, layout

SCOPE_TABLE = "c360_gold_scope"
# Set to "true" for dbt during a scoped build (`dbt_project/macros/person_scope.sql`).
SCOPED_ENV = "C360_GOLD_SCOPED"
# The person-keyed incremental models, and the ones that say where gold filed each record.
SCOPED_MODELS = ("stg_attribute_candidates", "int_profile_records", "resolved_attributes",
                 "customer_profile_v2", "customer_profile_v1", "consent_log")
FILED_UNDER = ("stg_attribute_candidates", "consent_log")


@dataclass
class Plan:
    """`full`: rebuild every model; else re-resolve `persons` persons."""

    full: bool
    reason: str
    silver_versions: dict[str, int | None] = field(default_factory=dict)
    persons: int = 0
    records: int = 0

    def describe(self) -> str:
        if self.full:
            return f"full build ({self.reason})"
        return (f"scoped build: {self.persons:,} person(s) holding {self.records:,} changed "
                f"record(s) re-resolved")


def _db_tables(db: Path) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()}


def plan(lake: Path, last_build: dict[str, Any] | None, config_digest: str,
         everything_selected: bool, forced: str | None = None) -> Plan:
    """Decide how to build gold now. `last_build`: the journal's entry for the last
    complete build (None: none known); `config_digest`: what this build is made from
    besides silver (vars, project, target); `forced`: why it must be full, if it must."""
    versions = change_log.data_versions(lake)
    if forced:
        return Plan(True, forced, versions)
    if not everything_selected:
        return Plan(True, "only some gold models selected", versions)
    if not last_build or not last_build.get("silver_versions"):
        return Plan(True, "no complete earlier build to build on", versions)
    if last_build.get("config") != config_digest:
        return Plan(True, "config, the dbt project or the target changed", versions)
    db = layout.gold_db(lake)
    if not db.exists() or not set(SCOPED_MODELS) <= _db_tables(db):
        return Plan(True, "a gold model's table is missing", versions)
    records = change_log.records_changed_since(lake, last_build["silver_versions"])
    if records is None:
        return Plan(True, "silver was rebuilt, or changed without a record change log entry",
                    versions)
    persons = write_scope(lake, records)
    return Plan(False, "", versions, persons=persons, records=records.len())


def write_scope(lake: Path, records: pl.Series) -> int:
    """Write the persons to re-resolve for `records` into `c360_gold_scope`; how many."""
    identity = (pl.scan_delta(str(layout.silver_table(lake, "identity")))
                .filter(pl.col("node_id").is_in(records.implode()))
                .select(pl.col("person_id").alias("customer_id")).collect())
    with duckdb.connect(str(layout.gold_db(lake))) as con:
        con.register("changed_records", pl.DataFrame({"record_node_id": records}).to_arrow())
        con.register("current_persons", identity.to_arrow())
        filed = " UNION ".join(
            f"SELECT customer_id FROM main.{name} "
            f"WHERE record_node_id IN (SELECT record_node_id FROM changed_records)"
            for name in FILED_UNDER)
        con.execute(f"CREATE OR REPLACE TABLE main.{SCOPE_TABLE} AS "
                    f"SELECT DISTINCT customer_id FROM (SELECT customer_id FROM current_persons "
                    f"UNION {filed}) WHERE customer_id IS NOT NULL")
        return int(con.execute(f"SELECT count(*) FROM main.{SCOPE_TABLE}").fetchall()[0][0])
