"""What every destination shares: the answers and failures the engine knows, the token
bucket, the base class. (Destinations: where syncs write. Each takes batches of one operation and answers per
row; what went wrong with the whole batch is an exception the engine knows how to treat:

* `RateLimited(retry_after)`: HTTP 429; wait and resend, never a row failure;
* `Transient(uncertain)`: 5xx, a timeout, a dropped connection; `uncertain` when the
  write may have been committed although no answer came (creates are then looked up
  before they are sent again);
* `BatchRejected`: the batch as a whole was refused (HTTP 400, a failing SQL
  statement): the engine halves it until the bad rows are alone;
* `DestinationError`: nothing will work (bad credentials, no such table): the run stops.

Operations: `create` (an upsert on the match key), `update` and `repoint` (address the
record by its destination id or old key; only the fields flagged `s:<field>` are
written), `delete`, `flag` (write `merges.flag_field`), and `create` with
`update_only` (mode `update`: never create).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from c360_assets.activation.spec import SyncSpec


class DestinationConfig(BaseModel):
    """A destination's keys in a sync file (each destination module defines its own,
    with a `type` literal naming it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RateLimited(Exception):
    def __init__(self, retry_after: float, message: str = "rate limited"):
        super().__init__(message)
        self.retry_after = retry_after


class Transient(Exception):
    def __init__(self, message: str, *, uncertain: bool):
        super().__init__(message)
        self.uncertain = uncertain


class BatchRejected(Exception):
    pass


class DestinationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Outcome:
    status: str  # ok | rejected | not_found
    dest_id: str | None = None
    error: str | None = None


OK = "ok"
REJECTED = "rejected"
NOT_FOUND = "not_found"


class TokenBucket:
    """`rate` requests per second, bursts of `burst`; `hold(seconds)` stops everyone
    (a Retry-After)."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic, sleep=time.sleep):
        self.rate, self.burst = rate, float(burst)
        self.tokens = float(burst)
        self.clock, self.sleep = clock, sleep
        self.last = clock()
        self.until = 0.0
        self.lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        with self.lock:
            self.until = max(self.until, self.clock() + seconds)
            self.tokens = 0.0

    def take(self) -> float:
        """Wait for a token; returns the seconds waited."""
        waited = 0.0
        while True:
            with self.lock:
                now = self.clock()
                if now < self.until:
                    pause = self.until - now
                else:
                    self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                    self.last = now
                    if self.tokens >= 1.0:
                        self.tokens -= 1.0
                        return waited
                    pause = (1.0 - self.tokens) / self.rate
            self.sleep(pause)
            waited += pause


class Destination:
    """Base: subclasses implement `write` (and `lookup` where the destination can)."""

    batch_rows = 1000
    supports_lookup = False
    bucket: TokenBucket | None = None

    def __init__(self, spec: SyncSpec):
        self.spec = spec

    def prepare(self, schema: dict[str, pl.DataType]) -> None:
        """Before the first batch: `schema` is each destination field's type."""

    def write(self, op: str, rows: pl.DataFrame, fields: list[str], *,
              update_only: bool = False) -> list[Outcome]:
        raise NotImplementedError

    def lookup(self, key_field: str, keys: list[str]) -> dict[str, str]:
        """Key -> destination id of the records found (unique matches only)."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.spec.destination.type

    def close(self) -> None:
        pass


def sent_fields(row: dict, fields: list[str]) -> dict:
    return {f: row[f] for f in fields if row.get(f"s:{f}")}
