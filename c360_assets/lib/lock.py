"""One writer per lake: an exclusive lock owned by the lake, not by a Dagster home.

Every command that writes the lake (`c360 materialize`, `c360 demo`, `c360 vacuum`) holds
it for its whole run, and every Dagster step that writes (bronze, silver, identity, gold,
maintenance) holds it for the step, so two processes never write one lake at once, whatever
Dagster instance launched them.

The lock is `flock(2)` on `<lake>/_ops/lake.lock`: the kernel releases it when its holder
exits, however it exits (`kill -9` included), so a dead holder never wedges the lake. The
file also holds who has the lock (host, pid, command, since) for the message others see;
a holder that finds a previous holder's details still there knows that one died without
releasing it and says so. Within one process the lock is re-entrant: a command holding it
runs its in-process Dagster steps, which take it again.

The lake must be on a local filesystem or one whose `flock` is shared between clients
(Linux NFS emulates it with POSIX locks). Object-storage lakes need another mechanism.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from c360_assets.lib import layout

_held: dict[Path, tuple[int, int]] = {}  # lake -> (fd, depth) held by this process
_guard = threading.Lock()


class LakeLocked(RuntimeError):
    """Another process holds the lake's lock."""

    def __init__(self, lake: Path, holder: Holder | None, waited_s: float) -> None:
        self.lake, self.holder, self.waited_s = lake, holder, waited_s
        waited = f" (waited {waited_s:.0f} s)" if waited_s else ""
        super().__init__(f"the lake {lake} is being written by {describe(holder)}{waited}; "
                         "only one writer at a time. Wait for it to finish, or pass "
                         "--wait-for-lock SECONDS to wait")


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    command: str
    since: str  # ISO-8601 UTC

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(str(data["host"]), int(data["pid"]), str(data["command"]),
                       str(data["since"]))
        except (ValueError, KeyError, TypeError):
            return None


def describe(holder: Holder | None) -> str:
    if holder is None:
        return "another process (its details are not readable yet)"
    return f"pid {holder.pid} on {holder.host} (`{holder.command}`, since {holder.since})"


def _key(lake: Path) -> Path:
    return Path(lake).absolute().resolve()


def current_holder(lake: Path) -> Holder | None:
    """Who holds the lake's lock now (None: nobody, or not readable)."""
    path = layout.lock_file(lake)
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def holds(lake: Path) -> bool:
    """Whether this process holds the lake's lock."""
    with _guard:
        return _key(lake) in _held


@contextlib.contextmanager
def lake_lock(lake: Path, command: str, *, wait_s: float = 0.0,
              echo: Callable[[str], None] = print, poll_s: float = 0.5,
              report_every_s: float = 30.0) -> Iterator[bool]:
    """Hold the lake's exclusive lock for the block (re-entrant within a process).

    Waits up to `wait_s` seconds for another holder (saying who, every `report_every_s`),
    then raises LakeLocked naming it. Yields whether the lock was taken over from a
    holder that died without releasing it (False when re-entered).
    """
    key = _key(lake)
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield False
        finally:
            with _guard:
                fd, depth = _held[key]
                _held[key] = (fd, depth - 1)
        return
    fd, took_over = _acquire(key, command, wait_s, echo, poll_s, report_every_s)
    with _guard:
        _held[key] = (fd, 1)
    try:
        yield took_over
    finally:
        with _guard:
            del _held[key]
        _release(fd)


def _acquire(lake: Path, command: str, wait_s: float, echo: Callable[[str], None],
             poll_s: float, report_every_s: float) -> tuple[int, bool]:
    path = layout.lock_file(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    t0 = time.monotonic()
    reported = -report_every_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = Holder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                waited = time.monotonic() - t0
                if waited >= wait_s:
                    raise LakeLocked(lake, holder, waited) from None
                if waited - reported >= report_every_s:
                    echo(f"waiting for the lake lock: held by {describe(holder)}; "
                         f"{waited:.0f} s of up to {wait_s:.0f} s")
                    reported = waited
                time.sleep(poll_s)
        previous = Holder.parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        if previous is not None:
            echo(f"lake lock: the previous writer, {describe(previous)}, ended without "
                 "releasing it (killed or crashed); the kernel freed it, so it is taken over "
                 "(the next steps redo what it left unfinished)")
        me = Holder(socket.gethostname(), os.getpid(), command,
                    dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        data = json.dumps(me.__dict__).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        return fd, previous is not None
    except BaseException:
        os.close(fd)
        raise


def _release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # a clean release leaves no holder behind
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
