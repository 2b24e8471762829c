"""Privacy: erasure with proof, suppression at bronze (see `erase.py`, `ledger.py`)."""
