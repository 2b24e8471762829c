"""The single Dagster entry point: `dagster dev -w workspace.yaml` loads `defs`, built
from `config/` (`assemble.build_definitions`)."""

from c360_assets.assemble import build_definitions

defs = build_definitions()

__all__ = ["build_definitions", "defs"]
