"""Resources shared by every layer: where the landing zone and the lake are."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from c360_assets.lib import config


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
        return self.lake / "bronze" / key

    def quarantine_table(self, key: str) -> Path:
        return self.lake / "quarantine" / key
