"""Purge a lake's Delta history after an erasure: nothing older than now stays readable.

For every Delta table under the lake (bronze, quarantine, silver, gold, privacy), with
the lake's lock held (no writer runs):

* checkpoint, and clean the log with a log retention of zero, so the log
  entries before the checkpoint go - their add actions' min/max statistics and the
  commit info of every earlier commit (delete predicates included);
* vacuum in full at zero hours: every file the current version does not reference -
  the files the deletes rewrote, change-data files, files a dead writer left;
* set the table's log retention back to the lake's maintenance retention, so the next
  ordinary checkpoint does not clean logs a reader still needs.

Time travel to any version before the purge is gone; that is the point. Silver reads
bronze's changes from its watermark, which the pipeline run just before the purge moved
to the current versions: it has nothing older to read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deltalake import DeltaTable

from c360_assets.activation import state as activation_state
from c360_assets.bronze.contract import TableSpec
from c360_assets.lib import delta, maintenance
from c360_assets.privacy import ledger
from c360_assets.silver import build as silver_build


@dataclass
class PurgeReport:
    tables: int = 0
    files_vacuumed: int = 0
    bytes_vacuumed: int = 0
    log_entries_removed: int = 0
    bytes_rewritten: int = 0  # files the purge itself wrote (none: it does not compact)


def purge_table(path: Path, retention_hours: int) -> tuple[maintenance.TableMaintenance, int]:
    """Purge one table; what maintenance did and the bytes of data files it wrote."""
    before = delta.file_sizes(path)
    one = maintenance.maintain_table(path, 0, compact=False)
    table = DeltaTable(str(path))
    wanted = maintenance.retention_property(retention_hours)
    table.alter.set_table_properties({"delta.logRetentionDuration": wanted},
                                     commit_properties=delta.maintenance_commit(path))
    return one, sum(s for a, s in delta.file_sizes(path).items() if a not in before)


def purge_lake(lake: Path, retention_hours: int, tables: tuple[TableSpec, ...], *,
               echo: Callable[[str], None] = print) -> PurgeReport:
    """Purge every Delta table of the lake (see the module docstring). `tables`: the
    record tables silver reads (its watermark is kept current across the purge's own
    commits, which change no data)."""
    report = PurgeReport()
    current = silver_build.up_to_date(lake, tables)
    folder = ledger.folder(lake)
    privacy = sorted(p for p in folder.iterdir() if delta.table_exists(p)) \
        if folder.is_dir() else []
    for path in maintenance.lake_tables(lake) + privacy + activation_state.tables(lake):
        one, written = purge_table(path, retention_hours)
        report.tables += 1
        report.files_vacuumed += one.files_vacuumed
        report.bytes_vacuumed += one.bytes_vacuumed
        report.log_entries_removed += one.log_entries_removed
        report.bytes_rewritten += written
    if current:
        silver_build.save_watermark(lake, silver_build.bronze_versions(lake, tables))
    echo(f"erase: purged {report.tables} Delta table(s): {report.files_vacuumed:,} old "
         f"file(s) ({report.bytes_vacuumed / 2**20:,.1f} MiB) vacuumed, "
         f"{report.log_entries_removed:,} log entries removed")
    return report
