"""The single Dagster entry point: `dagster dev -w workspace.yaml` loads `defs`."""

from __future__ import annotations

import dagster as dg

from c360_assets.bronze import SOURCES
from c360_assets.bronze.assets import build_bronze_asset
from c360_assets.gold.assets import build_gold_asset, dbt_resource
from c360_assets.lib.config import C360Config, load_config
from c360_assets.resources import C360Paths
from c360_assets.silver.assets import build_identity_asset, build_silver_asset


def build_definitions(config: C360Config | None = None, paths: C360Paths | None = None
                      ) -> dg.Definitions:
    config = config or load_config()
    return dg.Definitions(
        assets=[*(build_bronze_asset(source, config) for source in SOURCES),
                build_silver_asset(), build_identity_asset(), build_gold_asset(config)],
        resources={"c360": paths or C360Paths.from_env(), "dbt": dbt_resource()},
    )


defs = build_definitions()
