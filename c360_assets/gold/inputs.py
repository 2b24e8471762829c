"""What a gold build is made from, decided without dbt or dagster-dbt loaded.

Gold is up to date when the silver tables' data versions, the dbt vars (config/), the
dbt project and the target are what the last complete publish was built from
(`gold_inputs`); a build can be scoped to the persons silver changed when all but
silver are (`build_digest`). `c360 materialize` asks before it loads the gold assets.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from c360_assets.lib import delta, layout
from c360_assets.lib.config import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
# A run tag: rebuild every gold model whole (`c360 materialize --full`).
FULL_TAG = "c360/full"
SILVER_INPUTS = ("field_changes", "nodes", "relationships", "identity")


def dbt_target() -> str:
    return os.environ.get("C360_DBT_TARGET", "duckdb")


def project_files() -> Iterator[Path]:
    for folder in ("models", "macros", "tests"):
        yield from (DBT_PROJECT_DIR / folder).rglob("*")
    yield DBT_PROJECT_DIR / "dbt_project.yml"
    yield DBT_PROJECT_DIR / "profiles.yml"


@functools.cache
def project_digest() -> str:
    """Digest of the dbt project's files (models, macros, tests, settings)."""
    h = hashlib.sha256()
    for path in sorted(p for p in project_files() if p.is_file()):
        h.update(str(path.relative_to(DBT_PROJECT_DIR)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def gold_inputs(lake: Path, dbt_vars: str) -> str:
    """What a gold build is made from: the silver tables' data versions (maintenance
    commits do not count), the dbt vars (config/) and the dbt project. Equal inputs build
    equal gold (but for its build timestamp)."""
    versions = {name: delta.data_version(layout.silver_table(lake, name))
                for name in SILVER_INPUTS}
    return hashlib.sha256(json.dumps([versions, dbt_vars, project_digest(), dbt_target()],
                                     sort_keys=True).encode()).hexdigest()[:16]


def build_digest(dbt_vars: str) -> str:
    """What a build is made from besides silver: the dbt vars (config/), the dbt project
    and the target. A scoped build needs it equal to the last build's."""
    return hashlib.sha256(json.dumps([dbt_vars, project_digest(), dbt_target()]
                                     ).encode()).hexdigest()[:16]
