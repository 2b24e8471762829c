"""Dagster: the serving store (`serving/profile_store`, group `serving`), rebuilt after
gold publishes, and read by `c360 serve`."""

import dagster as dg

from c360_assets.bronze import catalogue
from c360_assets.bronze.assets import OWNERS
from c360_assets.lib.config import C360Config
from c360_assets.ops.automation import FOLLOW_UPSTREAM
from c360_assets.resources import C360Paths
from c360_assets.serving import store

GROUP = "serving"
STORE_KEY = dg.AssetKey(["serving", "profile_store"])
# The gold relations the store is made of.
GOLD_INPUTS = ("customer_profile_v2", "consent_status", "consent_log", "resolved_attributes")


def build_serving_asset(config: C360Config) -> dg.AssetsDefinition:
    sources = catalogue(config)

    @dg.asset(key=STORE_KEY, group_name=GROUP, owners=OWNERS, kinds={"sqlite"},
              deps=[dg.AssetKey(["gold", g]) for g in GOLD_INPUTS],
              tags={"layer": "serving"}, automation_condition=FOLLOW_UPSTREAM,
              description=("What `c360 serve` answers from: one SQLite file per gold version "
                           "(<lake>/serving/profiles.sqlite) with every profile and its "
                           "provenance, an index of every identifier (e-mail, phone, source "
                           "record id, Segment anonymous id) normalised like silver, merged "
                           "ids -> survivors, each person's records and links. Built as a "
                           "new file and renamed into place."))
    def profile_store(context: dg.AssetExecutionContext, c360: C360Paths) -> dg.MaterializeResult:
        with c360.writer(context):
            report = store.build_store(c360.lake, sources=sources, echo=context.log.info)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": report.persons,
            "store_version": report.version,
            "identifiers": report.identifiers,
            "merged_ids": report.aliases,
            "profiles_changed": report.changed,
            "profiles_gone": report.removed,
            "bytes": report.bytes,
            "path": dg.MetadataValue.path(str(report.path)),
            "gold_versions": dg.MetadataValue.json(report.gold_versions),
        })

    return profile_store
