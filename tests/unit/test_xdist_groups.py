"""The suite's parallel run depends on `xdist_group`: tests sharing an expensive lake run
on one worker (`pytest -n 2`, `--dist loadgroup` in pyproject). pytest-xdist tags a
grouped test's node id with `@<group>`; when a pytest release breaks that (pytest 9.2,
pytest-xdist issue 1386) the groups are ignored silently and the suite builds its lakes
two or three times. This fails instead."""

from __future__ import annotations

import os

import pytest


@pytest.mark.xdist_group("grouping-guard")
def test_xdist_groups_reach_the_scheduler(request: pytest.FixtureRequest) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        pytest.skip("not under pytest-xdist: no scheduler to group for")
    assert request.config.getoption("dist") == "no"  # a worker runs what it is sent
    assert request.config.getvalue("loadgroup"), "the suite runs with --dist loadgroup"
    assert request.node.nodeid.endswith("@grouping-guard"), (
        f"xdist did not tag {request.node.nodeid!r} with its group: --dist loadgroup "
        "ignores xdist_group with this pytest (see pyproject's pytest pin)")
