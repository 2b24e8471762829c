"""The Dagster event-log storage calls c360 needs and Dagster 1.13 offers no public API
for, all in this one module, so an upgrade has one file to read (a test keeps every
other module off `instance.event_log_storage`):

* a check's evaluation history across runs (alerts on state changes, the conflicts
  check's trend). The public `get_event_records` cannot filter by check and, on the
  default SQLite storage, refuses a cursor that is not run-sharded;
* pools: which runs hold or wait for a concurrency slot, and freeing the slots of a
  run whose process died (run recovery);
* `KeptEnginesSqliteEventLogStorage`, the event log storage of the instances c360 makes
  (`runner.INSTANCE_YAML`): Dagster's SQLite storage, keeping its database engines.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from typing import Any

import dagster as dg
import sqlalchemy as db
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite import create_db_conn_string
from sqlalchemy.pool import QueuePool

ENGINES_KEPT = 8  # the index and the few run databases one process writes at a time
SQLITE_BUSY_TIMEOUT_S = 30

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


class KeptEnginesSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log storage (same files, same tables) that keeps an engine
    and one open connection per database instead of making and disposing an engine for
    every statement.

    Dagster stores every event of a run (step starts, materialisations, check
    evaluations: about 280 on a day's `c360 materialize`) with three or four such
    connections each; the engines made anew cost 10-15 ms of every event, 3-5 s of a
    100k day's run here (`bench/RESULTS.md`). The most recently used `ENGINES_KEPT`
    databases keep theirs. Dagster's own lock still allows one connection at a time per
    storage, so one pooled connection per database suffices; other processes (the
    webserver, the daemon) share the files as SQLite allows.
    """

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._kept: collections.OrderedDict[str, db.Engine] = collections.OrderedDict()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any
                          ) -> KeptEnginesSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> db.Engine:
        engine = self._kept.pop(shard, None)
        if engine is None:
            engine = db.create_engine(
                create_db_conn_string(self._base_dir, shard), poolclass=QueuePool,
                pool_size=1, max_overflow=2,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})
        self._kept[shard] = engine
        while len(self._kept) > ENGINES_KEPT:
            self._kept.popitem(last=False)[1].dispose()
        return engine

    @contextlib.contextmanager
    def _connect(self, shard: str) -> Iterator[db.Connection]:  # Dagster's, engines kept
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _drop_engines(self) -> None:
        with self._db_lock:
            while self._kept:
                self._kept.popitem()[1].dispose()

    def wipe(self) -> None:  # it deletes the run databases: no connection may stay open
        self._drop_engines()
        super().wipe()

    def dispose(self) -> None:
        self._drop_engines()
        super().dispose()
