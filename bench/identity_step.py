"""One identity run as a benchmark step: `python -m bench.identity_step LAKE [--full]
[--model PATH]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from c360_assets.lib.config import load_config
from c360_assets.lib.registry import load_registry
from c360_assets.silver.identity import Inputs
from c360_assets.silver.identity_build import build_identity
from c360_assets.silver.identity_model import load_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lake", type=Path)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--model", type=Path)
    args = parser.parse_args()
    report = build_identity(args.lake, load_config().identity, load_model(args.model, lake=args.lake),
                            Inputs.of(load_registry()), full=args.full, progress=print)
    print(f"mode={report.mode} records={report.records:,} persons={report.persons:,} "
          f"touched={report.records_touched:,} reassigned={report.records_reassigned:,} "
          f"pairs_scored={report.pairs_scored:,} pairs_reused={report.pairs_reused:,} "
          f"merges={report.merges} splits={report.splits} largest={report.largest_cluster} "
          f"links={report.links_by_rule} guarded={report.guarded_values}")


if __name__ == "__main__":
    main()
