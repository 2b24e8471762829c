"""Declarative automation: silver, identity and gold follow bronze on their own.

Bronze runs come from the landing sensor, the schedule, a backfill or the CLI. Whenever
any upstream asset has new data since the asset was last requested, and nothing
upstream (or the asset itself) is still running, the automation sensor requests the
asset; downstream assets requested in the same tick join the same run. Several bronze
runs in a row therefore coalesce into one silver/gold run once they are all done.

Dagster's `eager()` is not used because it waits while *any* upstream partition is
missing: bronze has a partition per calendar day and most days land nothing.
"""

from __future__ import annotations

import dagster as dg

AUTOMATION_SENSOR = "c360_automation"

FOLLOW_UPSTREAM = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after upstream updates")


def build_automation_sensor(running: bool) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=(dg.DefaultSensorStatus.RUNNING if running
                        else dg.DefaultSensorStatus.STOPPED),
        description="Runs silver, identity and gold after bronze updates (declarative "
                    "automation, condition 'after upstream updates').",
    )
