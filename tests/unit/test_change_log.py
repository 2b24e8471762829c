"""The record change log: what changed since given versions, or None when it cannot say."""

import polars as pl

from c360_assets.lib import change_log, delta, layout


def write(lake, name, rows, append=True):
    path = layout.silver_table(lake, name)
    frame = pl.DataFrame({"record_node_id": rows, "bucket": [0] * len(rows)})
    return delta.write_rows(path, frame, append=append and delta.table_exists(path))


def test_changes_since_versions_gaps_and_pruning(tmp_path):
    lake = tmp_path / "lake"
    since = {}
    for name in change_log.LOGGED:
        since[name] = write(lake, name, ["r0"], append=False)  # a full build: not logged
    assert change_log.records_changed_since(lake, since) is None  # no log yet
    change_log.append(lake, "identity", [], pl.Series(["x"]))  # no version: nothing
    assert not change_log.path(lake).exists()

    v = write(lake, "relationships", ["r1", "r2"])
    change_log.append(lake, "relationships", [v], pl.Series(["r1", "r2", "r1"]))
    v = write(lake, "identity", ["r3"])
    change_log.append(lake, "identity", [v], pl.Series([], dtype=pl.String))  # names none
    got = change_log.records_changed_since(lake, since)
    assert got is not None and got.to_list() == ["r1", "r2"]
    assert change_log.records_changed_since(lake, change_log.data_versions(lake)).len() == 0

    # A commit nobody logged (a crash before its entry): the log cannot tell.
    write(lake, "field_changes", ["r4"])
    assert change_log.records_changed_since(lake, since) is None
    assert change_log.records_changed_since(lake, {**since, "field_changes": None}) is None

    # Pruning what a reader has built from keeps what it has not.
    now = change_log.data_versions(lake)
    change_log.prune(lake, {**since, "relationships": now["relationships"]})
    left = pl.read_delta(str(change_log.path(lake)))
    assert set(left.get_column("table_name")) == {"identity"}
    later = write(lake, "field_changes", ["r5"])
    change_log.append(lake, "field_changes", [later], pl.Series(["r5"]))
    got = change_log.records_changed_since(lake, now)
    assert got is not None and got.to_list() == ["r5"]


def test_a_log_cleanup_that_removed_versions_since_means_it_cannot_tell(tmp_path):
    from deltalake import DeltaTable

    lake = tmp_path / "lake"
    since = {name: write(lake, name, ["r0"], append=False) for name in change_log.LOGGED}
    for _ in range(2):
        v = write(lake, "relationships", ["r1"])
        change_log.append(lake, "relationships", [v], pl.Series(["r1"]))
    assert change_log.records_changed_since(lake, since).to_list() == ["r1"]
    table = DeltaTable(str(layout.silver_table(lake, "relationships")))
    table.alter.set_table_properties({"delta.logRetentionDuration": "interval 0 hours"})
    table.create_checkpoint()
    table.cleanup_metadata()
    assert change_log.records_changed_since(lake, since) is None


def test_a_table_recreated_since_means_it_cannot_tell(tmp_path):
    import shutil

    lake = tmp_path / "lake"
    for name in change_log.LOGGED:
        write(lake, name, ["r0"], append=False)
    for _ in range(3):
        v = write(lake, "identity", ["r1"])
        change_log.append(lake, "identity", [v], pl.Series(["r1"]))
    since = change_log.data_versions(lake)
    shutil.rmtree(layout.silver_table(lake, "identity"))
    write(lake, "identity", ["r2"], append=False)  # version 0 again
    assert change_log.records_changed_since(lake, since) is None
