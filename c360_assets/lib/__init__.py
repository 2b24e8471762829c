"""Pure, Dagster-free building blocks: configuration, Delta I/O, value parsing."""
