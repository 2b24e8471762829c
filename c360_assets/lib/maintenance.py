"""Keep a lake lean: compact small files, checkpoint the logs, vacuum old files.

Delta never deletes in place: an overwrite, a rewrite of a bucket or a compaction leaves
the files it replaced on disk (still readable for time travel), and a crashed writer can
leave files it never committed. `maintain_lake`, for every Delta table under the lake:

1. **compacts** partitions holding several small files into one (a Delta `OPTIMIZE`
   commit that changes no data; silver's bucketed tables collect a small file per run);
2. **checkpoints** the log and removes log entries older than the retention (sets the
   table's `delta.logRetentionDuration` to it, once);
3. **vacuums**: deletes every file the current version does not reference that is older
   than the retention - files replaced by later commits, change-data files, files a dead
   writer left uncommitted (`full`).

A bronze table whose changes silver has not read yet keeps its change data and its log
until it has (its vacuum and log cleanup wait for the next maintenance): silver reads
bronze's changes through them.

Callers hold the lake's lock (`lib/lock.py`): a vacuum must never race a writer, whose
files are not committed yet. After a vacuum, time travel reaches back only as far as the
retention, and a version older than that cannot be read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deltalake import DeltaTable

from c360_assets.lib import delta, layout


@dataclass
class TableMaintenance:
    table: str
    files_compacted: int = 0  # small files merged away
    files_added: int = 0
    log_entries_removed: int = 0
    files_vacuumed: int = 0
    bytes_vacuumed: int = 0
    skipped_vacuum: str | None = None  # why the vacuum waits


@dataclass
class MaintenanceReport:
    retention_hours: int
    tables: list[TableMaintenance] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def files_vacuumed(self) -> int:
        return sum(t.files_vacuumed for t in self.tables)

    @property
    def bytes_vacuumed(self) -> int:
        return sum(t.bytes_vacuumed for t in self.tables)

    @property
    def files_compacted(self) -> int:
        return sum(t.files_compacted for t in self.tables)


def lake_tables(lake: Path) -> list[Path]:
    """Every Delta table of the lake's layers."""
    out = []
    for layer in layout.LAYERS:
        folder = layout.layer(lake, layer)
        if folder.is_dir():
            out += sorted(p for p in folder.iterdir() if delta.table_exists(p))
    return out


def _unread_by_silver(lake: Path) -> dict[str, int]:
    """bronze table -> the version up to which silver has read its changes."""
    path = layout.silver_watermarks(lake)
    try:
        data = json.loads(path.read_text())
        return {str(k): int(v) for k, v in (data.get("bronze_versions") or {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def retention_property(hours: int) -> str:
    return f"interval {hours * 3600} seconds"


def maintain_table(path: Path, retention_hours: int, *, vacuum: bool = True,
                   dry_run: bool = False, compact: bool = True) -> TableMaintenance:
    """Compact (unless `compact` is False), checkpoint and (unless `vacuum` is False)
    clean the log and vacuum."""
    name = f"{path.parent.name}/{path.name}"
    report = TableMaintenance(name)
    table = DeltaTable(str(path))
    marker = delta.maintenance_commit(path)  # every commit below carries the data version
    if not dry_run:
        if compact:
            metrics = table.optimize.compact(commit_properties=marker)
            report.files_compacted = int(metrics.get("numFilesRemoved", 0))
            report.files_added = int(metrics.get("numFilesAdded", 0))
            table = DeltaTable(str(path))
        wanted = retention_property(retention_hours)
        if table.metadata().configuration.get("delta.logRetentionDuration") != wanted:
            table.alter.set_table_properties({"delta.logRetentionDuration": wanted},
                                             commit_properties=marker)
            table = DeltaTable(str(path))
        table.create_checkpoint()
        if vacuum:
            log_dir = path / "_delta_log"
            before = sum(1 for p in log_dir.iterdir() if p.suffix == ".json")
            table.cleanup_metadata()
            report.log_entries_removed = max(
                0, before - sum(1 for p in log_dir.iterdir() if p.suffix == ".json"))
    if not vacuum:
        return report
    sizes = {}
    removed = table.vacuum(retention_hours=retention_hours, enforce_retention_duration=False,
                           dry_run=True, full=True)
    for rel in removed:
        f = path / rel
        sizes[rel] = f.stat().st_size if f.exists() else 0
    if not dry_run and removed:
        table.vacuum(retention_hours=retention_hours, enforce_retention_duration=False,
                     dry_run=False, full=True, commit_properties=marker)
    report.files_vacuumed, report.bytes_vacuumed = len(removed), sum(sizes.values())
    return report


def maintain_lake(lake: Path, retention_hours: int, *, dry_run: bool = False,
                  progress: Callable[[str], None] = print) -> MaintenanceReport:
    """Compact, checkpoint and vacuum every table of the lake (see the module docstring).
    `dry_run`: change nothing, report what a vacuum would delete."""
    t0 = time.perf_counter()
    report = MaintenanceReport(retention_hours)
    read = _unread_by_silver(lake)
    for path in lake_tables(lake):
        waits = None
        if path.parent.name == "bronze":
            version = delta.data_version(path)  # this maintenance's own commits do not count
            if path.name not in read or (version is not None and version > read[path.name]):
                waits = "silver has not read its latest changes yet"
        one = maintain_table(path, retention_hours, vacuum=waits is None, dry_run=dry_run)
        one.skipped_vacuum = waits
        report.tables.append(one)
        progress(f"{one.table}: " + (f"vacuum waits ({waits}); " if waits else
                                     f"{one.files_vacuumed} file(s) "
                                     f"({one.bytes_vacuumed / 2**20:,.1f} MiB) "
                                     + ("would be " if dry_run else "") + "removed; ")
                 + f"{one.files_compacted} small file(s) compacted, "
                 f"{one.log_entries_removed} log entries removed")
    report.seconds = time.perf_counter() - t0
    return report
