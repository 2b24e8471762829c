"""The event log storage of the instances c360 makes (`ops/dagster_storage.py`): Dagster's
SQLite files, written through kept engines.

It replaces a private hook of Dagster's SQLite storage (`_connect`): the first test fails
when an upgrade changes what the override relies on. The others hold it to Dagster's own
storage: what one writes the other reads, the run's events are all there, the number of
engines stays bounded, and a wipe leaves no database open.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from c360_assets.ops import dagster_storage
from c360_assets.ops.dagster_storage import KeptEnginesSqliteEventLogStorage
from c360_assets.runner import INSTANCE_YAML, instance_for


def test_the_hook_is_the_one_dagsters_sqlite_storage_uses():
    source = inspect.getsource(SqliteEventLogStorage)
    assert "def _connect(self, shard: str)" in source
    assert "return self._connect(run_id)" in source  # run_connection
    assert "return self._connect(INDEX_SHARD_NAME)" in source  # index_connection
    for attribute in ("self._db_lock", "self._initialized_dbs", "self._initdb(engine)"):
        assert attribute in inspect.getsource(SqliteEventLogStorage._connect)


@dg.asset
def one() -> int:
    return 1


@dg.asset
def two(one: int) -> int:
    return one + 1


def _home(tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    home.mkdir()
    return home


def test_c360s_instances_use_it_and_dagsters_own_storage_reads_what_it_wrote(tmp_path):
    lake = tmp_path / "lake"
    instance = instance_for(lake)
    assert isinstance(instance.event_log_storage, KeptEnginesSqliteEventLogStorage)
    result = dg.materialize([one, two], instance=instance)
    assert result.success
    written = instance.all_logs(result.run_id)
    # The same home read without the storage named: Dagster's default SQLite storage.
    home = Path(instance.root_directory)
    plain_home = _home(tmp_path, "plain")
    (plain_home / "dagster.yaml").write_text(INSTANCE_YAML)
    (plain_home / "history").symlink_to(home / "history")
    plain = dg.DagsterInstance.from_config(str(plain_home))
    assert type(plain.event_log_storage) is SqliteEventLogStorage
    read = plain.all_logs(result.run_id)
    assert [e.dagster_event_type for e in read] == [e.dagster_event_type for e in written]
    assert plain.get_latest_materialization_event(dg.AssetKey("two")) is not None
    assert len(read) > 10


def test_an_older_c360_home_gets_it_and_a_users_own_file_is_left_alone(tmp_path):
    ours = tmp_path / "ours" / "lake"
    (ours.parent / "dagster_home").mkdir(parents=True)
    (ours.parent / "dagster_home" / "dagster.yaml").write_text(INSTANCE_YAML)
    assert isinstance(instance_for(ours).event_log_storage, KeptEnginesSqliteEventLogStorage)
    theirs = tmp_path / "theirs" / "lake"
    (theirs.parent / "dagster_home").mkdir(parents=True)
    own = "telemetry:\n  enabled: false\n"
    (theirs.parent / "dagster_home" / "dagster.yaml").write_text(own)
    assert type(instance_for(theirs).event_log_storage) is SqliteEventLogStorage
    assert (theirs.parent / "dagster_home" / "dagster.yaml").read_text() == own


def test_engines_kept_stay_bounded_and_a_wipe_closes_them(tmp_path, monkeypatch):
    monkeypatch.setattr(dagster_storage, "ENGINES_KEPT", 3)
    instance = instance_for(tmp_path / "lake")
    storage = instance.event_log_storage
    runs = [dg.materialize([one], instance=instance).run_id for _ in range(5)]
    assert 0 < len(storage._kept) <= 3
    assert all(instance.all_logs(run_id) for run_id in runs)  # evicted ones reopen
    storage.wipe()  # deletes the run databases, then empties the index through a new engine
    assert set(storage._kept) <= {"index"}
    assert not instance.all_logs(runs[0])
    assert dg.materialize([one], instance=instance).success  # usable after the wipe
