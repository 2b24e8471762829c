"""Dagster assets of the `privacy` group: an erasure as two steps of the lineage graph.

* `privacy/erasure_requests` (upstream of nothing, run first): reads the request inbox,
  deletes the customers' rows from bronze and quarantine, extends the suppression list.
  Silver, identity and gold then run as usual and carry the deletes downstream.
* `privacy/erasure_receipts` (downstream of gold): deletes what the pipeline keeps as
  history, rebuilds the DuckDB file, redacts logs and Dagster's storage, purges Delta
  history, scans every byte and writes the receipt. It fails when the proof finds
  anything.

`c360 materialize` (and `c360 erase`, which drops a request in the inbox and runs it)
runs them around the pipeline when the inbox holds requests. Their metadata carries
counts and request ids only.
"""

import dagster as dg

from c360_assets.bronze.assets import OWNERS
from c360_assets.lib.config import C360Config
from c360_assets.privacy import erase, ledger
from c360_assets.resources import C360Paths

REQUESTS_KEY = dg.AssetKey(["privacy", "erasure_requests"])
RECEIPTS_KEY = dg.AssetKey(["privacy", "erasure_receipts"])
GROUP = "privacy"


def build_erasure_requests_asset(config: C360Config) -> dg.AssetsDefinition:
    @dg.asset(key=REQUESTS_KEY, group_name=GROUP, owners=OWNERS, kinds={"delta"},
              tags={"layer": "privacy"},
              description=("Erasure requests from <landing>/_privacy/requests: the customers' "
                           "rows deleted from bronze and quarantine, their identifiers "
                           "added to the suppression list (HMAC fingerprints, no values)."))
    def erasure_requests(context: dg.AssetExecutionContext, c360: C360Paths) -> dg.MaterializeResult:
        with c360.writer(context):
            pending = erase.begin(c360.landing, c360.lake, config, echo=context.log.info)
        if pending is None:
            return dg.MaterializeResult(metadata={"requests": 0})
        return dg.MaterializeResult(metadata={
            "requests": len(pending.requests),
            "request_ids": ", ".join(pending.request_ids),
            "records": len(pending.scope.records),
            "persons": len(pending.scope.persons),
            "bronze_rows_deleted": sum(d.rows for d in pending.bronze.deleted),
            "suppression_path": dg.MetadataValue.path(str(ledger.table(c360.lake, "suppression"))),
        })

    return erasure_requests


def build_erasure_receipts_asset(config: C360Config, gold_keys: list[dg.AssetKey]
                                 ) -> dg.AssetsDefinition:
    @dg.asset(key=RECEIPTS_KEY, group_name=GROUP, owners=OWNERS, kinds={"delta"},
              deps=[REQUESTS_KEY, *gold_keys], tags={"layer": "privacy"},
              description=("The proof of each erasure: history purged (vacuum, log cleanup), "
                           "the DuckDB file rebuilt, logs redacted, every byte of the lake "
                           "and Dagster's storage scanned; one receipt per request batch in "
                           "<lake>/privacy/receipts. Fails when anything is found."))
    def erasure_receipts(context: dg.AssetExecutionContext, c360: C360Paths) -> dg.MaterializeResult:
        from c360_assets.runner import dagster_home

        with c360.writer(context):
            receipt = erase.finish(c360.landing, c360.lake, dagster_home(c360.lake), config,
                                   echo=context.log.info)
        if receipt is None:
            return dg.MaterializeResult(metadata={"requests": 0})
        return dg.MaterializeResult(metadata={
            "requests": len(receipt["request_ids"]),
            "request_ids": receipt["request_id"],
            "records_erased": receipt["records_erased"],
            "rows_deleted": receipt["rows_deleted"],
            "files_scanned": receipt["files_scanned"],
            "bytes_scanned": receipt["bytes_scanned"],
            "hits": receipt["hits"],
            "receipts_path": dg.MetadataValue.path(str(ledger.table(c360.lake, "receipts"))),
        })

    return erasure_receipts
