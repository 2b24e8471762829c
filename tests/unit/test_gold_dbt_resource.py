"""c360's dbt resource skips dagster-dbt's in-process adapter (about 4 s per gold run).

The override replaces a private hook of dagster-dbt: these tests fail when an upgrade
renames it (the override would silently stop saving the time) or stops tolerating a
missing handle.
"""

import inspect

from dagster_dbt import DbtCliResource

from c360_assets.gold.assets import GoldDbtResource, dbt_resource


def test_the_hook_is_the_one_dagster_dbt_calls_before_each_dbt_command():
    assert "_initialize_dbt_core_adapter" in vars(DbtCliResource)
    cli = inspect.getsource(DbtCliResource.cli)
    assert "adapter = self._initialize_dbt_core_adapter(args)" in cli
    # dagster-dbt passes the handle on as optional (None under the Fusion engine).
    invocation = inspect.signature(inspect.unwrap(
        __import__("dagster_dbt.core.dbt_cli_invocation", fromlist=["DbtCliInvocation"])
        .DbtCliInvocation.run))
    assert "None" in str(invocation.parameters["adapter"].annotation)


def test_no_adapter_is_made_in_process():
    resource = dbt_resource()
    assert isinstance(resource, GoldDbtResource)
    assert resource._initialize_dbt_core_adapter(["build"]) is None
