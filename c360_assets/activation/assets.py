"""Dagster: one asset per sync (`activation/<sync>`, group `activation`) downstream of
the gold relations it reads, with two checks, and one schedule per sync at its own
cadence (`schedule` in its file; running when the sync is `enabled` and
`automation.running_by_default`).

Checks: `safety_limits` fails (ERROR, and nothing was sent) when a limit refused the
run; `rejection_rate` fails (WARN) when more than `limits.max_reject_pct` of the rows
sent were rejected. Metadata: rows planned per operation, acknowledged, rejected (by the
destination and by the model: null, shared or ambiguous match keys), skipped (filter,
guards, consent), gold version, rate-limit waits. No values: keys and fields are PII.
"""


import dagster as dg

from c360_assets.activation.engine import SyncAborted, SyncRefused, run_sync
from c360_assets.activation.spec import SyncSpec, load_syncs
from c360_assets.bronze.assets import OWNERS
from c360_assets.lib.config import C360Config
from c360_assets.resources import C360Paths

GROUP = "activation"
SAFETY = "safety_limits"
REJECTIONS = "rejection_rate"


def sync_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["activation", name])


def _metadata(report) -> dict:  # noqa: ANN001
    counts = report.counts()
    return {**counts, "rate_limited_s": round(report.rate_limited_s, 1),
            "seconds": round(report.seconds, 1)}


def build_sync_asset(spec: SyncSpec, config: C360Config) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(["gold", spec.model]), *[dg.AssetKey(["gold", r]) for r in spec.join]]
    key = sync_key(spec.name)
    checks = [dg.AssetCheckSpec(SAFETY, asset=key, blocking=True,
                                description="The run was not refused by a safety limit "
                                            "(empty model, deletes, changes)."),
              dg.AssetCheckSpec(REJECTIONS, asset=key,
                                description=f"At most {spec.limits.max_reject_pct:g}% of the "
                                            "rows sent were rejected.")]

    @dg.asset(key=key, group_name=GROUP, owners=OWNERS, deps=deps, check_specs=checks,
              kinds={spec.destination.type if spec.destination.type != "file" else "parquet"},
              tags={"layer": "activation"},
              description=(spec.description or f"Sync {spec.name}") + (
                  f" Mode {spec.mode}; matched on "
                  f"{', '.join(k.field for k in spec.match_on)}; {len(spec.fields)} mapped "
                  f"fields (config/syncs/{spec.name}.yaml)."))
    def sync(context: dg.AssetExecutionContext, c360: C360Paths) -> dg.MaterializeResult:
        try:
            report = run_sync(c360.lake, spec, config, echo=context.log.info)
        except SyncRefused as exc:
            context.log.error(str(exc))
            return dg.MaterializeResult(
                metadata={"status": "refused", "message": str(exc)},
                check_results=[
                    dg.AssetCheckResult(check_name=SAFETY, passed=False,
                                        severity=dg.AssetCheckSeverity.ERROR,
                                        metadata={"reason": str(exc)}),
                    dg.AssetCheckResult(check_name=REJECTIONS, passed=True,
                                        metadata={"sent": 0})])
        except SyncAborted as exc:
            raise dg.Failure(str(exc)) from exc
        rate = report.reject_rate * 100
        return dg.MaterializeResult(
            metadata={**_metadata(report), "dagster/row_count": report.acknowledged},
            check_results=[
                dg.AssetCheckResult(check_name=SAFETY, passed=True),
                dg.AssetCheckResult(check_name=REJECTIONS,
                                    passed=rate <= spec.limits.max_reject_pct,
                                    severity=dg.AssetCheckSeverity.WARN,
                                    metadata={"rejected_pct": round(rate, 2),
                                              "rejected": report.rejected,
                                              "acknowledged": report.acknowledged})])

    return sync


def build_sync_schedule(spec: SyncSpec, config: C360Config) -> "dg.ScheduleDefinition | None":
    if not spec.schedule:
        return None
    running = spec.enabled and config.automation.running_by_default
    job = dg.define_asset_job(f"sync_{spec.name}", selection=[sync_key(spec.name)],
                              description=f"Sync {spec.name} (config/syncs/{spec.name}.yaml).")
    return dg.ScheduleDefinition(
        name=f"sync_{spec.name}_schedule", cron_schedule=spec.schedule, job=job,
        execution_timezone=config.automation.timezone,
        default_status=(dg.DefaultScheduleStatus.RUNNING if running
                        else dg.DefaultScheduleStatus.STOPPED),
        description=f"Runs sync {spec.name} ({spec.schedule}, {config.automation.timezone}).")


def activation_definitions(config: C360Config) -> tuple[list, list]:
    """(assets, schedules) of every sync in config/syncs."""
    specs = load_syncs().values()
    assets = [build_sync_asset(s, config) for s in specs]
    schedules = [s for s in (build_sync_schedule(s, config) for s in specs) if s is not None]
    return assets, schedules
