"""`c360-dbt`: dbt, tied to the life of the process that starts it, and optionally
already started.

dagster-dbt runs dbt as a child process. If that parent is killed (`kill -9` of
`c360 materialize`, an OOM kill), an orphaned dbt would go on writing `gold.duckdb` and
hold its lock while the next run starts. On Linux this wrapper asks the kernel to kill
dbt when its parent dies (`PR_SET_PDEATHSIG`), then becomes dbt (`exec`): same process,
same arguments, same exit code. Elsewhere it only becomes dbt.

A warm dbt (`warm_dbt`): dbt spends seconds importing itself before it reads a file
(about 4-5 s of a 100k day's gold run here, mostly code generation for its data
classes). `c360 materialize` knows from the start that its gold run will come, so it
starts `c360-dbt --serve SOCKET` at once: that process imports dbt while bronze and
silver run, then waits on a Unix socket. When dagster-dbt later starts `c360-dbt build
...`, the wrapper hands its arguments, working directory, environment and standard
streams (the file descriptors themselves) to the waiting process, which runs dbt with
them and reports dbt's exit code back; the wrapper exits with it. Signals the wrapper
gets (dagster-dbt's SIGINT on a cancelled run) are passed on; if the wrapper dies, the
served dbt dies too, and the served dbt dies with `c360 materialize` as before. A server
serves one command; with none (or one already used, or not ready to accept), the wrapper
runs dbt itself as above: same result, only slower to start.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1
SERVER_ENV = "C360_DBT_SERVER"  # the Unix socket of a warm dbt (set by `warm_dbt`)
# What a warm dbt imports before it waits: dbt's command line and the adapter of the
# target it will run (`C360_DBT_TARGET`, as `gold/inputs.py` reads it; missing modules
# are skipped). Only that adapter: the Databricks one alone takes 3.5 s of the core that
# bronze and silver share with it.
PRELOAD = ("dbt.cli.main",)
PRELOAD_FOR_TARGET = {"duckdb": ("dbt.adapters.duckdb", "c360_assets.gold.delta_source"),
                      "databricks": ("dbt.adapters.databricks", "dbt.adapters.spark")}
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main() -> None:
    args = sys.argv[1:]
    if args == ["--version"]:
        # dagster-dbt asks for the version before every command; dbt itself takes ~6 s
        # to answer (start-up plus an update check that may not reach the internet).
        # The dbt this wraps is the dbt-core installed with this Python.
        print(f"c360-dbt: dbt-core {importlib.metadata.version('dbt-core')}")
        return
    if args[:1] == ["--serve"] and len(args) == 2:
        sys.exit(serve(args[1]))
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the guard was set
        sys.exit(1)
    server = os.environ.get(SERVER_ENV)
    if server and hasattr(socket, "send_fds"):
        code = delegate(server, args)
        if code is not None:
            sys.exit(code)
    dbt = Path(sys.executable).parent / "dbt"
    os.execv(dbt, [str(dbt), *args])


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: dbt runs unguarded, as it would without this wrapper


# ---------------------------------------------------------------------------- the wrapper side


def delegate(path: str, args: list[str]) -> int | None:
    """Run `dbt args` in the warm dbt at `path` with this process's streams, directory
    and environment; dbt's exit code, or None when no warm dbt took the command (none
    listening, already used): the caller then runs dbt itself."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        request = json.dumps({"argv": args, "cwd": os.getcwd(),
                              "env": dict(os.environ)}).encode()
        socket.send_fds(sock, [b"r"], [0, 1, 2])
        sock.sendall(struct.pack("!I", len(request)) + request)
        replies = sock.makefile("rb")
        started = replies.readline()  # b"" when the server went away without taking it
    except OSError:
        sock.close()
        return None
    if not started:
        sock.close()
        return None
    pid = int(json.loads(started)["pid"])
    for sig in SIGNALS:
        signal.signal(sig, lambda signum, _frame: _forward(pid, signum))
    try:
        done = replies.readline()
    except OSError:
        done = b""
    return int(json.loads(done)["exit"]) if done else 1  # b"": the served dbt died


def _forward(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


# ---------------------------------------------------------------------------- the server side


def serve(path: str) -> int:
    """Import dbt, then run the one command a wrapper hands over on `path` (see the
    module's docstring); dbt's exit code."""
    _die_with_parent()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # before the imports: a wrapper that comes early waits for them
    listener.listen(1)
    target = os.environ.get("C360_DBT_TARGET", "duckdb")
    for name in (*PRELOAD, *PRELOAD_FOR_TARGET.get(target, ())):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    conn, _ = listener.accept()
    listener.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    _, fds, _, _ = socket.recv_fds(conn, 1, 3)
    size = struct.unpack("!I", _read(conn, 4))[0]
    request = json.loads(_read(conn, size))
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    finished = threading.Event()

    def watch() -> None:  # the wrapper went away (killed): so does its dbt
        with contextlib.suppress(OSError):
            conn.recv(1)
        if not finished.is_set():
            os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()
    code = _run_dbt(request["argv"])
    finished.set()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
    return code


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the c360-dbt wrapper closed the connection mid-request")
        data += chunk
    return data


def _run_dbt(argv: list[str]) -> int:
    """dbt's own entry point (`dbt.cli.main:cli`, as the `dbt` script runs it)."""
    from dbt.cli.main import cli

    sys.argv = ["dbt", *argv]
    try:
        cli()
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    return 0


# ---------------------------------------------------------------------------- the runner side


FOLDER_PREFIX = "c360-dbt-"


def _sweep_dead_folders() -> None:
    """Remove the socket folders of warm dbts whose process is gone (a SIGKILL skips the
    `finally` that removes them)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # alive, someone else's
            continue


@contextlib.contextmanager
def warm_dbt(enabled: bool = True) -> Iterator[None]:
    """While in the block, a dbt imported ahead of time waits for the first `c360-dbt`
    command this process starts (through dagster-dbt); stopped on leaving the block if
    no command came. Not on platforms without Unix fd passing (nothing happens there)."""
    if not enabled or not hasattr(socket, "send_fds") or os.environ.get(SERVER_ENV):
        yield
        return
    _sweep_dead_folders()
    # Short path (socket names are limited), named by this process: a folder a killed
    # process left is removed by the next one (`_sweep_dead_folders`).
    folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-")
    path = os.path.join(folder, "dbt.sock")
    server = subprocess.Popen([sys.executable, "-m", "c360_assets.gold.dbt_child",
                               "--serve", path], stdin=subprocess.DEVNULL)
    os.environ[SERVER_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(SERVER_ENV, None)
        if server.poll() is None and os.path.exists(path):  # never used: stop it
            server.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
