"""The maintenance job: keep the lake lean on a schedule (`lib/maintenance.py` does it).

`c360_maintenance` is one op: it holds the lake's lock like every writer (a vacuum must
never race one), then compacts small files, checkpoints every table's log and vacuums
what is older than `maintenance.retention_hours`, and reports per table what it removed.
`daily_maintenance` runs it at `maintenance.schedule_cron` (03:30 by default) in
`automation.timezone`. `c360 vacuum` runs the same from the command line.
"""

import dagster as dg

from c360_assets.lib.config import C360Config
from c360_assets.lib.maintenance import maintain_lake
from c360_assets.resources import C360Paths

MAINTENANCE_JOB = "c360_maintenance"
MAINTENANCE_SCHEDULE = "daily_maintenance"


def build_maintenance_job(config: C360Config) -> dg.JobDefinition:
    retention = config.maintenance.retention_hours

    @dg.op(name="maintain_lake", description=(
        f"Compact small files, checkpoint logs, vacuum files unreferenced for more than "
        f"{retention:g} h (maintenance.retention_hours) in every lake table."))
    def maintain(context: dg.OpExecutionContext, c360: C360Paths) -> dg.Output:
        with c360.writer(context):
            report = maintain_lake(c360.lake, retention, progress=context.log.info)
        return dg.Output(None, metadata={
            "tables": len(report.tables),
            "files_vacuumed": report.files_vacuumed,
            "mib_vacuumed": round(report.bytes_vacuumed / 2**20, 2),
            "small_files_compacted": report.files_compacted,
            "retention_hours": retention,
            "seconds": round(report.seconds, 1),
            "per_table": dg.MetadataValue.md("\n".join(
                f"* `{t.table}`: {t.files_vacuumed} removed, {t.files_compacted} compacted"
                + (f" (vacuum waits: {t.skipped_vacuum})" if t.skipped_vacuum else "")
                for t in report.tables) or "_no tables_"),
        })

    @dg.job(name=MAINTENANCE_JOB, description="Keeps the lake lean: compaction, log "
                                              "checkpoints, vacuum (maintenance: in config).")
    def c360_maintenance() -> None:
        maintain()

    return c360_maintenance


def build_maintenance_schedule(config: C360Config) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=MAINTENANCE_SCHEDULE, job_name=MAINTENANCE_JOB,
        cron_schedule=config.maintenance.schedule_cron,
        execution_timezone=config.automation.timezone,
        default_status=(dg.DefaultScheduleStatus.RUNNING
                        if config.automation.running_by_default
                        else dg.DefaultScheduleStatus.STOPPED),
        description=f"Runs {MAINTENANCE_JOB} ({config.maintenance.schedule_cron}, "
                    f"{config.automation.timezone}).")
