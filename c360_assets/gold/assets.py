"""Gold as Dagster assets: the dbt project through dagster-dbt, published as Delta.

One `@dbt_assets` multi-asset over `dbt_project/`: every dbt model is an asset
`gold/<relation>` (group `gold`), the silver Delta sources carry the silver assets' keys
(so bronze -> silver -> gold is one lineage graph), and dbt tests are asset checks
(error severity blocks). After a successful build on the embedded target, the models
marked `meta: c360_publish` are copied to `<lake>/gold/<relation>` as Delta, each only
where its content changed (`publish.py`: a journal makes an interrupted publish redo
every table). When silver, config and the dbt project are what the last complete publish
was built from, the step builds and publishes nothing.
"""


import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from c360_assets.bronze.assets import OWNERS
from c360_assets.bronze.contract import SourceSpec
from c360_assets.gold import scope
from c360_assets.gold.inputs import (
    DBT_PROJECT_DIR,
    FULL_TAG,
    build_digest,
    dbt_target,
    gold_inputs,
    project_files,
)
from c360_assets.gold.publish import (
    interrupted,
    last_build,
    publish_tables,
    set_last_build,
    up_to_date,
)
from c360_assets.gold.scope import SCOPED_ENV
from c360_assets.gold.settings import dbt_vars_json
from c360_assets.lib import change_log, failpoints, layout
from c360_assets.lib.config import C360Config
from c360_assets.lib.registry import Registry
from c360_assets.ops.automation import FOLLOW_UPSTREAM
from c360_assets.resources import C360Paths
from c360_assets.silver.identity_build import log_position

GOLD_POOL = "duckdb_gold"  # one writer of the embedded gold DuckDB file at a time
PUBLISH_META = "c360_publish"


@functools.cache
def dbt_project() -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR,
                      target=dbt_target())


def dbt_executable() -> str:
    """`c360-dbt` (the `dbt` next to this Python, tied to the life of the process that
    starts it: `gold/dbt_child.py`), else that `dbt`, else PATH's."""
    here = Path(sys.executable).parent
    for name in ("c360-dbt", "dbt"):
        if (here / name).exists():
            return str(here / name)
    return "dbt"


class GoldDbtResource(DbtCliResource):
    """dagster-dbt's resource without its in-process dbt adapter.

    Before each `dbt` subprocess, dagster-dbt loads dbt's profile, project and adapter in
    the calling process (about 4 s here) for the optional `fetch_row_counts()` /
    `fetch_column_metadata()` steps; c360 uses neither (row counts come from the DuckDB
    file), so the handle is never made. dagster-dbt treats a missing handle as it does
    under the dbt Fusion engine. `tests/unit/test_gold_dbt_resource.py` holds the hook's
    name to the pinned dagster-dbt.
    """

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:  # type: ignore[override]
        return None


def dbt_resource() -> DbtCliResource:
    """dagster-dbt's resource over `c360-dbt` (which answers `--version` at once)."""
    return GoldDbtResource(project_dir=dbt_project(), dbt_executable=dbt_executable(),
                           target=dbt_target())


@functools.cache
def manifest_path() -> Path:
    """The project's `manifest.json`, (re)parsed when missing or older than a project file.

    Parsed into a private target folder and moved into place, so concurrent processes
    never read a half-written manifest. Parsing needs no data and no connection.
    """
    manifest = dbt_project().manifest_path
    newest = max(p.stat().st_mtime for p in project_files() if p.is_file())
    if manifest.exists() and manifest.stat().st_mtime >= newest:
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="parse-", dir=manifest.parent))
    try:
        dbt_resource().cli(["parse"], target_path=scratch).wait()
        os.replace(scratch / "manifest.json", manifest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest


@functools.cache
def dbt_project_manifest() -> dict[str, Any]:
    return json.loads(manifest_path().read_text(encoding="utf-8"))


class GoldTranslator(DagsterDbtTranslator):
    """dbt models -> `gold/<relation>` in group `gold`; sources keep their `meta.dagster`
    asset keys (the silver assets)."""

    def get_asset_spec(self, manifest: Any, unique_id: str, project: Any) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] not in ("model", "seed", "snapshot"):
            return spec
        relation = props.get("alias") or props["name"]
        publish = bool(props.get("config", {}).get("meta", {}).get(PUBLISH_META))
        metadata = dict(spec.metadata)
        if publish:
            metadata["published_as"] = f"<lake>/gold/{relation}"
        return spec.replace_attributes(
            key=dg.AssetKey(["gold", relation]),
            group_name="gold",
            kinds={"dbt", dbt_target() if dbt_target() != "duckdb" else "duckdb"},
            owners=OWNERS,
            tags={**spec.tags, "layer": "gold"},
            description=(props.get("description") or "").strip() or spec.description,
            metadata=metadata,
            automation_condition=FOLLOW_UPSTREAM,
        )


TRANSLATOR = GoldTranslator(DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True))


# dbt rotates its log at this size and keeps five older files (dbt's own rotation).
DBT_LOG_MAX_BYTES = 5 * 2**20


@contextlib.contextmanager
def _lake_env(lake: Path, scoped: bool = False) -> Iterator[None]:
    """dbt runs as a subprocess that reads the lake location from `C360_LAKE`, the size
    at which it rotates its log from `DBT_LOG_FILE_MAX_BYTES`, and whether this build is
    scoped from `C360_GOLD_SCOPED` (an environment variable, not a dbt var: the vars stay
    the same from build to build, so dbt's partial parse keeps working)."""
    settings = {"C360_LAKE": str(lake),
                "DBT_LOG_FILE_MAX_BYTES": os.environ.get("DBT_LOG_FILE_MAX_BYTES",
                                                         str(DBT_LOG_MAX_BYTES)),
                SCOPED_ENV: "true" if scoped else "false"}
    before = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _published_relations(manifest: dict, keys: set[dg.AssetKey]) -> list[str]:
    names = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        relation = node.get("alias") or node["name"]
        if (dg.AssetKey(["gold", relation]) in keys
                and node.get("config", {}).get("meta", {}).get(PUBLISH_META)):
            names.append(relation)
    return sorted(names)


def _failed_nodes(invocation: Any) -> list[str]:
    """`<node> <status>: <first line of its message>` for each failed dbt node."""
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except Exception:  # noqa: BLE001 - dbt died before writing results: its log says why
        return []
    failed = []
    for result in results:
        if result["status"] not in ("error", "fail"):
            continue
        parts = result["unique_id"].split(".")
        name = parts[-2] if parts[0] == "test" else parts[-1]  # tests end in a hash
        lines = [line.strip() for line in (result.get("message") or "").splitlines()
                 if line.strip()]
        # dbt's first line is generic ("Runtime Error in model x"); the cause follows.
        cause = next((line for line in lines if "Error:" in line), lines[0] if lines else "")
        failed.append(f"{name} {result['status']}" + (f": {cause}" if cause else ""))
    return failed


def _row_counts(lake: Path, relations: list[str]) -> dict[str, int]:
    if not relations or not layout.gold_db(lake).exists():
        return {}
    with duckdb.connect(str(layout.gold_db(lake)), read_only=True) as con:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()}
        return {r: con.execute(f'SELECT count(*) FROM main."{r}"').fetchall()[0][0]
                for r in relations if r in present}


def _all_models(manifest: dict) -> set[dg.AssetKey]:
    return {dg.AssetKey(["gold", node.get("alias") or node["name"]])
            for node in manifest["nodes"].values() if node["resource_type"] == "model"}


def build_gold_asset(config: C360Config, registry: Registry, sources: tuple[SourceSpec, ...]
                     ) -> dg.AssetsDefinition:
    dbt_vars = dbt_vars_json(config, registry, sources)

    @dbt_assets(manifest=manifest_path(), project=dbt_project(), name="gold_dbt",
                dagster_dbt_translator=TRANSLATOR, pool=GOLD_POOL)
    def gold_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, c360: C360Paths):
        """dbt build of the gold models and their tests, then publish to <lake>/gold/."""
        with c360.writer(context):
            yield from _build_and_publish(context, dbt, c360, config, dbt_vars)

    return gold_dbt


def _build_and_publish(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                       c360: C360Paths, config: C360Config, dbt_vars: str) -> Iterator[Any]:
    """`dbt build` (scoped to the persons silver changed, or full: `gold/scope.py`), then
    publish; nothing at all when silver, config and the project are as they were at the
    last complete publish of the selected tables."""
    selected = set(context.selected_asset_keys)
    inputs = gold_inputs(c360.lake, dbt_vars)
    to_publish = _published_relations(dbt_project_manifest(), selected)
    args = ["build", "--vars", dbt_vars]
    everything = _all_models(dbt_project_manifest()) <= selected
    plan = None
    if dbt_target() == "duckdb":
        was_interrupted = interrupted(c360.lake)
        if was_interrupted:
            context.log.warning("the last gold publish was interrupted: building and "
                                "publishing every table again")
        elif to_publish and up_to_date(c360.lake, to_publish, inputs):
            context.log.info("gold: silver, config and the dbt project are as they were at "
                             "the last publish: nothing to build or publish")
            return
        plan = scope.plan(c360.lake, last_build(c360.lake), build_digest(dbt_vars),
                          everything_selected=everything,
                          forced=("--full asked for it"
                                  if context.run.tags.get(FULL_TAG) == "true" else
                                  "the last publish was interrupted" if was_interrupted
                                  else None))
        context.log.info(f"gold: {plan.describe()}")
        set_last_build(c360.lake, None)  # a build that stops part-way leaves the next full
        if plan.full:
            args.append("--full-refresh")
    with _lake_env(c360.lake, scoped=plan is not None and not plan.full):
        # One target folder per lake, reused: no folder per run piling up under
        # dbt_project/, and dbt's partial parse carries over between runs.
        invocation = dbt.cli(args, context=context,
                             raise_on_error=False, target_path=layout.dbt_target(c360.lake))
        events = []
        for event in invocation.stream():
            events.append(event)
            failpoints.reached("gold.dbt_event")
    ok = invocation.is_successful()
    relations = [k.path[-1] for k in selected if k.path[0] == "gold"]
    published = {}
    if ok and dbt_target() == "duckdb":
        context.log.info(f"publishing {len(to_publish)} gold table(s) to "
                         f"{layout.layer(c360.lake, layout.GOLD)} where their content changed: "
                         f"{', '.join(to_publish)}")
        published = {p.table: p for p in publish_tables(c360.lake, to_publish, inputs)}
        if plan is not None and everything:
            set_last_build(c360.lake, {"silver_versions": plan.silver_versions,
                                       "config": build_digest(dbt_vars)})
            change_log.prune(c360.lake, plan.silver_versions, log_position(c360.lake))
    counts = _row_counts(c360.lake, relations) if dbt_target() == "duckdb" else {}
    for event in events:
        if isinstance(event, dg.Output):
            relation = context.asset_key_for_output(event.output_name).path[-1]
            extra: dict[str, Any] = {}
            if relation in counts:  # a table model is rebuilt whole
                extra["dagster/row_count"] = extra["rows_written"] = counts[relation]
            if plan is not None:
                extra["gold_build"] = plan.describe()
            if relation in published:
                extra["published_to"] = dg.MetadataValue.path(
                    str(layout.gold_table(c360.lake, relation)))
                extra["published_version"] = published[relation].version
                extra["published_new_commit"] = published[relation].committed
            if extra:
                event = event.with_metadata({**event.metadata, **extra})
        yield event
    if not ok:
        failed = _failed_nodes(invocation)
        raise dg.Failure(
            description=f"dbt build failed ({'; '.join(failed) or 'see the dbt log'}); "
                        f"nothing was published to {layout.layer(c360.lake, layout.GOLD)}",
            metadata={"failed": dg.MetadataValue.json(failed),
                      "target_path": dg.MetadataValue.path(str(invocation.target_path))})
