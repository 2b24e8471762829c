"""A warm dbt (`gold/dbt_child.py`): `c360 materialize` starts dbt ahead of its gold run
and the `c360-dbt` that dagster-dbt later starts hands its command over.

Real processes, a real dbt over a tiny project: the served command gets the wrapper's
arguments, directory, environment and streams, and its exit code comes back; a signal to
the wrapper reaches dbt; a killed wrapper takes the served dbt with it; with no server
(or one already used) the wrapper runs dbt itself; an unused server is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c360_assets.gold import dbt_child

WRAPPER = [sys.executable, "-m", "c360_assets.gold.dbt_child"]

PROJECT = """\
name: tiny
version: "1.0.0"
config-version: 2
profile: tiny
macro-paths: ["macros"]
"""

PROFILES = """\
tiny:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('TINY_DB') }}"
      threads: 1
"""

MACROS = """\
{% macro say(word) %}
  {{ log("tiny says " ~ word ~ " from " ~ env_var('TINY_WHO'), info=True) }}
{% endmacro %}
{% macro spin() %}
  {% set ns = namespace(n=0) %}
  {% for i in range(100000) %}{% for j in range(100000) %}{% set ns.n = ns.n + j %}{% endfor %}{% endfor %}
{% endmacro %}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "macros").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(PROJECT)
    (root / "profiles.yml").write_text(PROFILES)
    (root / "macros" / "tiny.sql").write_text(MACROS)
    return root


def start_server(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    path = str(tmp_path / "dbt.sock")
    server = subprocess.Popen([*WRAPPER, "--serve", path], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not os.path.exists(path):  # bound before its imports: connecting then waits
        assert server.poll() is None, "the warm dbt died before listening"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return server, path


def wrapper(project: Path, args: list[str], server: str | None, **popen) -> subprocess.Popen:
    env = {**os.environ, "TINY_DB": str(project / "tiny.duckdb"), "TINY_WHO": "the wrapper",
           "DBT_PROFILES_DIR": str(project), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop(dbt_child.SERVER_ENV, None)
    if server:
        env[dbt_child.SERVER_ENV] = server
    return subprocess.Popen([*WRAPPER, *args], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def test_the_served_command_runs_with_the_wrappers_arguments_directory_environment_and_streams(
        tmp_path: Path, project: Path):
    server, path = start_server(tmp_path)
    proc = wrapper(project, ["run-operation", "say", "--args", "{word: hello}"], path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    # The server's dbt printed into the wrapper's stdout; the environment (TINY_WHO, the
    # profile's TINY_DB) and the directory (the project found in cwd) were the wrapper's.
    assert "tiny says hello from the wrapper" in out, out
    assert server.wait(timeout=30) == 0  # it served the command and ended (one command)
    assert not os.path.exists(path)


def test_dbts_exit_code_comes_back(tmp_path: Path, project: Path):
    plain = wrapper(project, ["run-operation", "no_such_macro"], None)
    plain.communicate(timeout=120)
    assert plain.returncode not in (0, None)
    server, path = start_server(tmp_path)
    proc = wrapper(project, ["run-operation", "no_such_macro"], path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == plain.returncode, out
    assert "no_such_macro" in out
    assert server.wait(timeout=30) == plain.returncode


def test_without_a_server_or_after_its_one_command_the_wrapper_runs_dbt_itself(
        tmp_path: Path, project: Path):
    server, path = start_server(tmp_path)
    first = wrapper(project, ["run-operation", "say", "--args", "{word: one}"], path)
    assert first.communicate(timeout=120)[0].count("tiny says one") == 1
    assert server.wait(timeout=30) == 0
    # The socket is gone: the next command (and one naming a socket never made) runs
    # in the wrapper's own dbt, with the same result.
    for socket_path in (path, str(tmp_path / "never.sock")):
        proc = wrapper(project, ["run-operation", "say", "--args", "{word: two}"], socket_path)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "tiny says two from the wrapper" in out, out


def test_a_signal_to_the_wrapper_reaches_the_served_dbt(tmp_path: Path, project: Path):
    server, path = start_server(tmp_path)
    proc = wrapper(project, ["run-operation", "spin"], path)
    time.sleep(8)  # the macro is running in the server by now
    assert proc.poll() is None and server.poll() is None
    proc.send_signal(signal.SIGINT)  # what dagster-dbt sends a dbt it cancels
    out, _ = proc.communicate(timeout=60)  # the spin runs for hours unless interrupted
    assert proc.returncode != 0
    assert "spin" in out or "interrupt" in out.lower(), out
    assert server.wait(timeout=30) == proc.returncode


def test_a_killed_wrapper_takes_the_served_dbt_with_it(tmp_path: Path, project: Path):
    server, path = start_server(tmp_path)
    proc = wrapper(project, ["run-operation", "spin"], path)
    time.sleep(8)
    assert server.poll() is None
    proc.kill()
    proc.wait(timeout=30)
    assert server.wait(timeout=30) == -signal.SIGKILL


def test_warm_dbt_names_its_server_in_the_environment_and_stops_it_unused():
    assert dbt_child.SERVER_ENV not in os.environ
    with dbt_child.warm_dbt():
        path = os.environ[dbt_child.SERVER_ENV]
        folder = Path(path).parent
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert dbt_child.SERVER_ENV not in os.environ
    assert not folder.exists()
    with dbt_child.warm_dbt(enabled=False):
        assert dbt_child.SERVER_ENV not in os.environ


def test_a_killed_runs_socket_folder_is_removed_by_the_next_warm_dbt(tmp_path, monkeypatch):
    """A SIGKILL skips the `finally` that removes the socket folder: the next warm dbt
    removes the folders of processes that are gone, and leaves a live one's."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    gone = tmp_path / f"{dbt_child.FOLDER_PREFIX}{dead.pid}-abc"
    alive = tmp_path / f"{dbt_child.FOLDER_PREFIX}{os.getppid()}-def"
    unnamed = tmp_path / f"{dbt_child.FOLDER_PREFIX}xyz"  # not one this code names
    for folder in (gone, alive, unnamed):
        folder.mkdir()
        (folder / "dbt.sock").write_text("")
    with dbt_child.warm_dbt():
        mine = Path(os.environ[dbt_child.SERVER_ENV]).parent
        assert mine.parent == tmp_path and mine.name.startswith(
            f"{dbt_child.FOLDER_PREFIX}{os.getpid()}-")
    assert not gone.exists() and alive.exists() and unnamed.exists() and not mine.exists()
