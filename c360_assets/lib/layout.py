"""Where everything lives in a lake: the one owner of its paths and state files.

    <lake>/bronze/<source>_<table>          Delta, one per contract table
    <lake>/quarantine/<source>_<table>      Delta, rejected rows
    <lake>/silver/<name>                    Delta: field_changes, nodes, relationships,
                                            identity and its working tables, and
                                            record_changes (lib/change_log.py)
    <lake>/silver/_watermarks.json          what silver has read of bronze
    <lake>/silver/_identity_state.json      what identity last resolved
    <lake>/gold/<relation>                  Delta, the published gold relations
    <lake>/gold/_published.json             the publish journal
    <lake>/gold.duckdb                      dbt's DuckDB file (and c360_gold_scope)
    <lake>/activation/...                   syncs: per sync state and journal, runs,
                                            changelog, echoes (activation/state.py)
    <lake>/serving/profiles.sqlite          the serving store (serving/store.py)
    <lake>/_identity/model.json             the lake's identity model (model-v<N>.json)
    <lake>/_ops/ingested/<source>.json      the ingest ledger
    <lake>/_ops/dbt_target                  dbt's artifacts and logs
    <lake>/_ops/lake.lock                   the one-writer lock
    <lake>/_ops/alerts.jsonl                alerts (config `alerts.log_path`)

Paths are plain functions of the lake root (no I/O). `write_json_atomic` writes every
state file, `write_text_atomic` the model files. dbt gets the lake root as `C360_LAKE`
and mirrors `silver_table` and `gold_db` in `dbt_project/models/silver/_sources.yml`
and `profiles.yml` (a test holds them to these functions).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

BRONZE, QUARANTINE, SILVER, GOLD = "bronze", "quarantine", "silver", "gold"
LAYERS = (BRONZE, QUARANTINE, SILVER, GOLD)
OPS = "_ops"
GOLD_DB = "gold.duckdb"


def bronze_table(lake: Path, key: str) -> Path:
    """`key`: `<source>_<table>`."""
    return Path(lake) / BRONZE / key


def quarantine_table(lake: Path, key: str) -> Path:
    return Path(lake) / QUARANTINE / key


def silver_table(lake: Path, name: str) -> Path:
    return Path(lake) / SILVER / name


def gold_table(lake: Path, name: str) -> Path:
    return Path(lake) / GOLD / name


def layer(lake: Path, name: str) -> Path:
    """A layer's folder (`bronze`, `quarantine`, `silver`, `gold`)."""
    return Path(lake) / name


def asset_table(lake: Path, asset_path: Sequence[str]) -> Path:
    """The Delta table of an asset key (`["gold", "customer_profile_v2"]`)."""
    return Path(lake).joinpath(*asset_path)


def activation(lake: Path) -> Path:
    """The syncs' folder (`activation/state.py` lays it out)."""
    return Path(lake) / "activation"


def serving(lake: Path) -> Path:
    """The serving store's folder."""
    return Path(lake) / "serving"


def serving_store(lake: Path) -> Path:
    """The serving store `c360 serve` reads (rebuilt per gold version)."""
    return serving(lake) / "profiles.sqlite"


def gold_db(lake: Path) -> Path:
    return Path(lake) / GOLD_DB


def gold_journal(lake: Path) -> Path:
    return Path(lake) / GOLD / "_published.json"


def silver_watermarks(lake: Path) -> Path:
    return Path(lake) / SILVER / "_watermarks.json"


def identity_state(lake: Path) -> Path:
    return Path(lake) / SILVER / "_identity_state.json"


def identity_model(lake: Path) -> Path:
    """The lake's own identity model; its versions sit beside it."""
    return Path(lake) / "_identity" / "model.json"


def ingest_ledger(lake: Path, source: str) -> Path:
    return Path(lake) / OPS / "ingested" / f"{source}.json"


def dbt_target(lake: Path) -> Path:
    """dbt's target folder (artifacts, logs, partial parse) for one lake."""
    return Path(lake).absolute() / OPS / "dbt_target"


def lock_file(lake: Path) -> Path:
    return Path(lake) / OPS / "lake.lock"


def under(lake: Path, relative: str) -> Path:
    """A configured path relative to the lake (e.g. `alerts.log_path`)."""
    return Path(lake) / relative


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place: a
    reader (or a crash) never sees half a file. The temporary name carries the pid, so
    two processes never write the same one."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o666) -> None:
    """`write_text_atomic` for bytes; `mode` (less the umask) is the file's from its
    creation on (0o600: a secret never readable by others, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: object, *, indent: int | None = 2,
                      sort_keys: bool = True) -> None:
    """`data` as JSON, written with `write_text_atomic`."""
    write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")
