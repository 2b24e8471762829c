"""Crash points for the crash tests: `kill -9` of this process at a named step boundary.

Inert unless `C360_TEST_KILL_AT` names a point (`silver.table_written`) or a point and a
count (`gold.published:3`, the third time it is reached). The crash tests set it on a
`c360 materialize` child process to kill it exactly there - deterministically, unlike a
signal sent from outside at a guessed moment - and then check that a plain rerun
completes and equals a clean build. Never set it on a lake you care about.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV = "C360_TEST_KILL_AT"
_reached: Counter[str] = Counter()
_lock = threading.Lock()  # points reached from several threads (gold's publish)


def reached(point: str) -> None:
    """SIGKILL this process if `point` (and its count) is the configured crash point."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    with _lock:
        _reached[point] += 1
        count = _reached[point]
    if count >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
