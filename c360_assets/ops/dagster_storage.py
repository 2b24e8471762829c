"""The Dagster event-log storage calls c360 needs and Dagster 1.13 offers no public API
for, all in this one module, so an upgrade has one file to read (a test keeps every
other module off `instance.event_log_storage`):

* a check's evaluation history across runs (alerts on state changes, the conflicts
  check's trend). The public `get_event_records` cannot filter by check and, on the
  default SQLite storage, refuses a cursor that is not run-sharded;
* pools: which runs hold or wait for a concurrency slot, and freeing the slots of a
  run whose process died (run recovery).
"""

from __future__ import annotations

import dagster as dg

# Execution record states of a check evaluation that finished (passed or failed).
COMPLETED = ("SUCCEEDED", "FAILED")


def check_history(instance: dg.DagsterInstance, key: dg.AssetCheckKey, limit: int,
                  cursor: int | None = None) -> list:
    """One page of the check's execution records, newest first, ids below `cursor`.
    Each record has `id`, `run_id`, `status` and `event` (the evaluation's log entry)."""
    return list(instance.event_log_storage.get_asset_check_execution_history(
        key, limit=limit, cursor=cursor))


def completed(record) -> bool:  # noqa: ANN001 - a check execution record
    return record.status.value in COMPLETED and record.event is not None


def pools_supported(instance: dg.DagsterInstance) -> bool:
    return bool(instance.event_log_storage.supports_global_concurrency_limits)


def pools(instance: dg.DagsterInstance) -> list[tuple[str, object]]:
    """(concurrency key, its info: `claimed_slots`, `pending_steps`), by key."""
    storage = instance.event_log_storage
    return [(key, storage.get_concurrency_info(key))
            for key in sorted(storage.get_concurrency_keys())]


def free_pool_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    if pools_supported(instance):
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
