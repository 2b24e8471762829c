"""Resources shared by every layer: where the landing zone and the lake are, and the
lake's one-writer lock as a writing step holds it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from c360_assets.lib import config, layout
from c360_assets.lib.lock import LakeLocked, lake_lock


class C360Paths(dg.ConfigurableResource):
    """Locations of the landing root (connector output) and the lake (Delta tables).

    Defaults come from `C360_LANDING` / `C360_LAKE` (else `./data/landing`, `./data/lake`).
    """

    landing_root: str
    lake_root: str

    @classmethod
    def from_env(cls) -> C360Paths:
        return cls(landing_root=str(config.landing_root()), lake_root=str(config.lake_root()))

    @property
    def landing(self) -> Path:
        return Path(self.landing_root)

    @property
    def lake(self) -> Path:
        return Path(self.lake_root)

    def bronze_table(self, key: str) -> Path:
        return layout.bronze_table(self.lake, key)

    def quarantine_table(self, key: str) -> Path:
        return layout.quarantine_table(self.lake, key)

    @contextlib.contextmanager
    def writer(self, context: dg.OpExecutionContext) -> Iterator[None]:
        """Hold the lake's lock while a step writes (`lib/lock.py`).

        Under `c360 materialize` the command already holds it (re-entrant). Under
        `dagster dev`, a step that finds another writer waits `lock.step_wait_s`, then
        asks Dagster to retry it later (its pool slot is released meanwhile), so a step
        never sits on a pool slot that the lock's holder needs.
        """
        settings = config.load_config().lock
        handle = getattr(context, "op_execution_context", context).op_handle
        command = f"dagster run {context.run.run_id[:8]} step {handle}"
        try:
            with lake_lock(self.lake, command, wait_s=settings.step_wait_s,
                           echo=context.log.info):
                yield
        except LakeLocked as exc:
            context.log.warning(f"{exc}; retrying in {settings.step_retry_s:.0f} s")
            raise dg.RetryRequested(max_retries=settings.step_max_retries,
                                    seconds_to_wait=settings.step_retry_s) from exc
