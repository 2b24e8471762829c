"""c360 uses Dagster, dagster-dbt and Splink through their public APIs only, so an
upgrade is a changelog to read, not a hunt: no import of a private module (`dagster._core`,
`splink.internals`, ...), and none of the private members c360 once reached for. The
one exception is Dagster's event-log storage, for what Dagster 1.13 has no public API
(a check's history across runs, pool slots, an event log storage that keeps its database
engines): only `ops/dagster_storage.py` touches it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORAGE_ADAPTER = ROOT / "c360_assets" / "ops" / "dagster_storage.py"
PACKAGES = ("dagster", "dagster_dbt", "dagster_webserver", "splink")
PRIVATE_IMPORT = re.compile(
    rf"^\s*(from|import)\s+({'|'.join(PACKAGES)})(\.\w+)*\.(_\w+|internals)\b", re.M)
# Private members (or internal storage) of those libraries, by name.
PRIVATE_MEMBERS = re.compile(
    r"\.(_settings_obj|_core_model_settings_history|_cli_version|event_log_storage)\b")


def sources() -> list[Path]:
    return [p for folder in ("c360_assets", "bench") for p in (ROOT / folder).rglob("*.py")
            if "out" not in p.relative_to(ROOT).parts]


def test_no_private_imports_or_members_of_dagster_dbt_or_splink():
    found = []
    for path in sources():
        text = path.read_text(encoding="utf-8")
        if path == STORAGE_ADAPTER:
            text = text.replace(".event_log_storage", "").replace("dagster._core.storage.", "")
        for pattern in (PRIVATE_IMPORT, PRIVATE_MEMBERS):
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0).strip()}")
    assert not found, "private API use:\n" + "\n".join(found)


def test_the_guard_sees_what_it_is_meant_to_refuse():
    assert PRIVATE_IMPORT.search("from dagster._core.events import DagsterEventType")
    assert PRIVATE_IMPORT.search("    from dagster._utils.schedules import x")
    assert PRIVATE_IMPORT.search("import splink.internals.misc")
    assert not PRIVATE_IMPORT.search("from dagster_dbt import DbtCliResource")
    assert PRIVATE_MEMBERS.search("linker._settings_obj.comparisons")
    assert PRIVATE_MEMBERS.search("instance.event_log_storage.get_x()")
