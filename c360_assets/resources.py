"""Resources shared by every layer: where the landing zone and the lake are, and the
lake's one-writer lock as a writing step holds it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from c360_assets.lib import config, layout
from c360_assets.lib.lock import LakeLocked, lake_lock

_LOCK = config.LockConfig()


class C360Paths(dg.ConfigurableResource):
    """Locations of the landing root (connector output) and the lake (Delta tables), and
    how a step meets another writer of the lake (`c360.yaml` `lock:`).

    Defaults come from `C360_LANDING` / `C360_LAKE` (else `./data/landing`, `./data/lake`).
    """

    landing_root: str
    lake_root: str
    step_wait_s: float = _LOCK.step_wait_s
    step_retry_s: float = _LOCK.step_retry_s
    step_max_retries: int = _LOCK.step_max_retries

    @classmethod
    def at(cls, landing: Path, lake: Path, settings: config.C360Config) -> C360Paths:
        return cls(landing_root=str(Path(landing).absolute()),
                   lake_root=str(Path(lake).absolute()), **settings.lock.model_dump())

    @classmethod
    def from_env(cls, settings: config.C360Config) -> C360Paths:
        return cls.at(config.landing_root(), config.lake_root(), settings)

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
        handle = getattr(context, "op_execution_context", context).op_handle
        command = f"dagster run {context.run.run_id[:8]} step {handle}"
        try:
            with lake_lock(self.lake, command, wait_s=self.step_wait_s,
                           echo=context.log.info):
                yield
        except LakeLocked as exc:
            context.log.warning(f"{exc}; retrying in {self.step_retry_s:.0f} s")
            raise dg.RetryRequested(max_retries=self.step_max_retries,
                                    seconds_to_wait=self.step_retry_s) from exc
