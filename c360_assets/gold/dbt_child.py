"""`c360-dbt`: dbt, tied to the life of the process that starts it.

dagster-dbt runs dbt as a child process. If that parent is killed (`kill -9` of
`c360 materialize`, an OOM kill), an orphaned dbt would go on writing `gold.duckdb` and
hold its lock while the next run starts. On Linux this wrapper asks the kernel to kill
dbt when its parent dies (`PR_SET_PDEATHSIG`), then becomes dbt (`exec`): same process,
same arguments, same exit code. Elsewhere it only becomes dbt.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        # dagster-dbt asks for the version before every command; dbt itself takes ~6 s
        # to answer (start-up plus an update check that may not reach the internet).
        # The dbt this wraps is the dbt-core installed with this Python.
        print(f"c360-dbt: dbt-core {importlib.metadata.version('dbt-core')}")
        return
    dbt = Path(sys.executable).parent / "dbt"
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: dbt runs unguarded, as it would without this wrapper
        if os.getppid() != parent:  # the parent died before the guard was set
            sys.exit(1)
    os.execv(dbt, [str(dbt), *sys.argv[1:]])


if __name__ == "__main__":
    main()
