"""Assembling c360's Dagster definitions from a configuration (`build_definitions`).

One lineage graph (bronze per source -> silver graph and identity -> gold dbt models,
with the privacy group's erasure steps before and after, the serving group's store
(what `c360 serve` reads) and the activation group's syncs (config/syncs) downstream of
gold, each sync with its own schedule),
its checks, the job the automation launches, the 2-hourly schedule, the landing and alert
sensors and the declarative-automation sensor. `definitions.py` builds them once for
`dagster dev`; `c360 materialize` builds its own, with the configuration it was given,
and runs bronze and silver from `upstream_definitions` (no gold: importing dagster-dbt,
which imports dbt, takes seconds, paid only when gold is reached).
"""

from __future__ import annotations

import dagster as dg

from c360_assets.bronze import catalogue
from c360_assets.bronze.assets import build_bronze_asset
from c360_assets.lib.config import C360Config, load_config
from c360_assets.lib.registry import load_registry
from c360_assets.ops.alerts import build_alert_sensor
from c360_assets.ops.automation import build_automation_sensor
from c360_assets.ops.checks import build_conflicts_check, no_duplicate_current_edges
from c360_assets.ops.freshness import build_staleness_check
from c360_assets.ops.maintenance import build_maintenance_job, build_maintenance_schedule
from c360_assets.ops.recovery import build_dead_run_sensor
from c360_assets.ops.schedules import build_schedule
from c360_assets.ops.sensors import build_landing_sensor, c360_job
from c360_assets.privacy.assets import build_erasure_receipts_asset, build_erasure_requests_asset
from c360_assets.resources import C360Paths
from c360_assets.silver.assets import build_identity_asset, build_silver_asset


def upstream_definitions(config: C360Config | None = None, paths: C360Paths | None = None
                         ) -> dg.Definitions:
    """Bronze, silver and identity with their checks: everything upstream of gold, without
    importing dagster-dbt or dbt. Enough to materialise those stages; gold needs
    `build_definitions`."""
    config = config or load_config()
    sources = catalogue(config)
    registry = load_registry(sources=tuple(s.name for s in sources))
    return dg.Definitions(
        assets=[*(build_bronze_asset(source, config) for source in sources),
                build_silver_asset(sources, registry), build_identity_asset(config, registry),
                build_erasure_requests_asset(config)],
        asset_checks=[*(build_staleness_check(source, config) for source in sources),
                      no_duplicate_current_edges],
        resources={"c360": paths or C360Paths.from_env(config)},
    )


def build_definitions(config: C360Config | None = None, paths: C360Paths | None = None
                      ) -> dg.Definitions:
    # Imported here: `upstream_definitions` must not pay for dagster-dbt.
    from c360_assets.activation.assets import activation_definitions
    from c360_assets.gold.assets import build_gold_asset, dbt_resource
    from c360_assets.serving.assets import STORE_KEY, build_serving_asset

    config = config or load_config()
    sources = catalogue(config)
    registry = load_registry(sources=tuple(s.name for s in sources))
    upstream = upstream_definitions(config, paths)
    gold = build_gold_asset(config, registry, sources)
    syncs, sync_schedules = activation_definitions(config)
    return dg.Definitions(
        assets=[*(upstream.assets or []), gold,
                build_serving_asset(config),
                build_erasure_receipts_asset(config, [*gold.keys, STORE_KEY]), *syncs],
        asset_checks=[*(upstream.asset_checks or []), build_conflicts_check(config)],
        jobs=[c360_job(), build_maintenance_job(config)],
        schedules=[build_schedule(config), build_maintenance_schedule(config), *sync_schedules],
        sensors=[build_landing_sensor(config), build_alert_sensor(config),
                 build_automation_sensor(config.automation.running_by_default),
                 build_dead_run_sensor(config.automation.running_by_default)],
        resources={**(upstream.resources or {}), "dbt": dbt_resource()},
    )
