"""The code location: one graph in every environment, clear errors, the main command."""

import ast
import json
import subprocess
import sys
from importlib import metadata

import dagster as dg
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from honey_duck import environments
from honey_duck.definitions import build
from honey_duck.sinks import SINKS

TABLES = ["artworks_summary", "sales_enriched", "sales_monthly"]
PIPELINE = {
    "artists": "source",
    "artworks": "source",
    "sales": "source",
    "artworks_summary": "transform",
    "sales_enriched": "transform",
    "sales_monthly": "transform",
}
# The snapshot: every asset key and its group. A change here is a change to every environment.
EXPECTED = PIPELINE | {f"{sink}/{table}": sink for sink in SINKS for table in TABLES}


def graph_of(name: str, tmp_path) -> dict[str, str]:
    defs = build(environments.environment(name, home=tmp_path))
    graph = defs.resolve_asset_graph()
    return {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}


@pytest.mark.parametrize("name", environments.ENVIRONMENTS)
def test_every_environment_has_the_same_assets_and_groups(name: str, tmp_path) -> None:
    assert graph_of(name, tmp_path) == EXPECTED


def test_every_sink_has_its_io_manager_under_its_own_word(tmp_path) -> None:
    for name in environments.ENVIRONMENTS:
        defs = build(environments.environment(name, home=tmp_path))
        groups = {a.group_names_by_key[k] for a in defs.assets or [] for k in a.keys}
        for sink in SINKS:
            assert f"{sink}_io_manager" in defs.resources, (name, sink)
            assert sink in groups, (name, sink)


def test_every_destination_has_a_test_file_that_reads_back_what_landed() -> None:
    """A destination added without its read-back test fails here, naming the file it lacks."""
    folder = environments.REPO_ROOT / "honey_duck_tests" / "sinks"
    for sink in SINKS:
        path = folder / f"test_{sink}.py"
        assert path.is_file(), f"the {sink} sink has no {path.relative_to(environments.REPO_ROOT)}"
        tree = ast.parse(path.read_text())
        tests = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        ]
        landed = [t for t in tests if "local_run" in {a.arg for a in t.args.args}]
        # or a class of the contract suite that checks what `local` landed
        landed += [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and {getattr(b, "id", "") for b in node.bases} & {"LandedContract", "FileContract"}
        ]
        assert landed, f"{path.name} has no test of what the local environment landed (local_run)"


def test_a_second_destination_of_one_format_is_a_copy_of_a_sink_module(tmp_path) -> None:
    """The README's fork: `sinks/csv.py` copied with another word lands beside the original."""
    from honey_duck import pipeline
    from honey_duck.definitions import pipeline_resources
    from honey_duck.sinks._files import file_environments
    from honey_duck.sinks._group import sink_assets

    env = environments.environment("local", home=tmp_path)
    assets = sink_assets("archive", kinds={"csv", "polars"})
    local, _, _ = file_environments("archive", fmt="csv")
    resources = {**pipeline_resources(env), "archive_io_manager": local(env)}
    result = dg.materialize(
        [*pipeline.assets, *assets],
        resources=resources,
        selection=dg.AssetSelection.assets(dg.AssetKey(["archive", "artworks_summary"])).upstream(),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert (tmp_path / "output" / "archive" / "artworks_summary.csv").is_file()


def test_an_unknown_environment_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown honey_duck environment 'staging'") as caught:
        environments.current({"HONEY_DUCK_ENV": "staging"})
    assert "local, dev, prod" in str(caught.value)


def test_the_environment_defaults_to_local_and_is_read_from_one_variable(tmp_path) -> None:
    assert environments.current({}).name == "local"
    env = environments.current({"HONEY_DUCK_ENV": "dev", "HONEY_DUCK_HOME": str(tmp_path)})
    assert (env.name, env.home) == ("dev", tmp_path.resolve())


def test_prod_takes_locations_from_environment_variables_only(tmp_path) -> None:
    defs = build(environments.environment("prod", home=tmp_path))
    json_io = defs.resources["json_io_manager"]
    assert isinstance(json_io.base_path, dg.EnvVar)
    assert str(tmp_path) not in repr(defs.resources)


def test_loading_the_module_reads_no_environment(monkeypatch) -> None:
    """`HONEY_DUCK_ENV` is read inside the @dg.definitions function, not at import time."""
    monkeypatch.setenv("HONEY_DUCK_ENV", "nowhere")
    import honey_duck.definitions as module

    with pytest.raises(ValueError, match="valid environments"):
        module.defs()


def test_the_local_environment_materializes_everything(local_run) -> None:
    assert {k.to_user_string() for k in local_run.landed} == set(EXPECTED)
    sales = local_run.storage("sales_enriched").height
    for key, landed in local_run.landed.items():
        if key.path[-1] in ("sales_enriched", "sales_monthly") and landed.rows is not None:
            assert landed.rows == sales, key


def test_every_transform_and_sink_asset_describes_every_column(tmp_path) -> None:
    defs = build(environments.environment("local", home=tmp_path))
    graph = defs.resolve_asset_graph()
    described = 0
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.group_name == "source":
            continue
        schema = node.metadata.get("dagster/column_schema")
        assert schema is not None, f"{key.to_user_string()} declares no columns"
        blank = [c.name for c in schema.columns if not c.description]
        assert not blank, f"{key.to_user_string()}: no description for {blank}"
        described += 1
    assert described == 3 + 3 * len(SINKS)


def test_what_landed_shows_the_declared_column_meanings(local_run) -> None:
    from dagster._core.instance.ref import InstanceRef

    ref = InstanceRef.from_dir(str(local_run.env.home / "dagster_home"))
    with dg.DagsterInstance.from_ref(ref) as instance:
        for key in ("json/sales_enriched", "postgres/artworks_summary", "sales_enriched"):
            event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
            assert event is not None and event.asset_materialization is not None
            schema = event.asset_materialization.metadata["dagster/column_schema"].value
            meanings = {c.name: c.description for c in schema.columns}
            assert meanings["artwork_id"], key
            assert all(meanings.values()), f"{key}: {meanings}"


# Our own dev and test packages (the extras' distributions are found by dev_only_modules).
DEV_PACKAGES = {"honey_duck_dev", "honey_duck_tests"}
# pyarrow looks for pandas whenever it loads, polars for hypothesis; both do without them
PROBED = {"pandas", "hypothesis"}
# Runs in a fresh interpreter: the packages named in argv[1] behave as if not installed, and every
# attempt to import one is recorded; then the code location loads and builds every environment.
AS_DEPLOYED = """
import json, sys

absent, tried = set(json.loads(sys.argv[1])), set()


class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in absent:
            tried.add(name.partition(".")[0])
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, Absent())
from honey_duck import environments
from honey_duck.definitions import build, defs

defs()
for name in environments.ENVIRONMENTS:
    build(environments.environment(name, home=sys.argv[2]))
loaded = {m.partition(".")[0] for m in sys.modules} & absent
print(json.dumps({"tried": sorted(tried), "loaded": sorted(loaded)}))
"""


def dev_only_modules() -> set[str]:
    """Top-level modules of the `dev` extra's distributions that no runtime dependency needs."""

    def runtime(requirement: Requirement) -> bool:
        return requirement.marker is None or requirement.marker.evaluate({"extra": ""})

    def requires(name: str) -> list[Requirement]:
        try:
            return [Requirement(r) for r in metadata.requires(name) or []]
        except metadata.PackageNotFoundError:  # a dependency for another platform
            return []

    dev = {canonicalize_name(r.name) for r in requires("honey_duck") if not runtime(r)}
    needed: set[str] = set()
    pending = [r for r in requires("honey_duck") if runtime(r)]
    while pending:
        name = canonicalize_name(pending.pop().name)
        if name not in needed:
            needed.add(name)
            pending += [r for r in requires(name) if runtime(r)]
    dev_only = dev - needed
    assert {"pytest", "ruff"} <= dev_only, dev_only
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if {canonicalize_name(d) for d in dists} & dev_only
    }


def test_the_code_location_loads_without_any_dev_or_test_package(tmp_path) -> None:
    absent = DEV_PACKAGES | dev_only_modules()
    done = subprocess.run(
        [sys.executable, "-c", AS_DEPLOYED, json.dumps(sorted(absent)), str(tmp_path)],
        cwd=environments.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["loaded"] == []
    assert set(found["tried"]) <= PROBED, "honey_duck tried to import a dev or test package"


def test_no_module_of_honey_duck_imports_dev_or_test_code() -> None:
    """Lazy imports inside functions too, which loading the definitions would not reach."""
    package = environments.REPO_ROOT / "honey_duck"
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.partition(".")[0] not in DEV_PACKAGES, f"{path} imports {name}"


def test_a_job_per_destination_and_one_for_the_months(tmp_path) -> None:
    from honey_duck.definitions import MONTHLY_JOB

    defs = build(environments.environment("local", home=tmp_path))
    for word in SINKS:
        job = defs.resolve_job_def(f"{word}_tables")
        keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
        assert {f"{word}/sales_enriched", f"{word}/artworks_summary"} <= keys
        assert not any(k.endswith("sales_monthly") for k in keys)  # no partition to pick
        assert not any(k.startswith(f"{other}/") for other in SINKS if other != word for k in keys)
    monthly = defs.resolve_job_def(MONTHLY_JOB)
    keys = {k.to_user_string() for k in monthly.asset_layer.executable_asset_keys}
    one_by_one = {"parquet"}  # the official manager stores one partition per run
    assert keys == {"sales_monthly", *(f"{w}/sales_monthly" for w in set(SINKS) - one_by_one)}
    assert monthly.partitions_def is not None
    assert monthly.backfill_policy == dg.BackfillPolicy.single_run()  # a range in one run
    parquet = defs.resolve_job_def("parquet_monthly")
    assert {k.to_user_string() for k in parquet.asset_layer.executable_asset_keys} == {
        "parquet/sales_monthly"
    }


def test_the_destination_job_lands_its_tables_with_one_click(tmp_path) -> None:
    defs = build(environments.environment("local", home=tmp_path))
    result = defs.resolve_job_def("csv_tables").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    landed = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"csv/sales_enriched", "csv/artworks_summary"} <= landed
    assert (tmp_path / "output" / "csv" / "artworks_summary.csv").is_file()


def test_the_monthly_schedules_and_the_failure_sensor_ship_turned_off(tmp_path) -> None:
    from datetime import UTC, datetime

    repo = build(environments.environment("local", home=tmp_path)).get_repository_def()
    schedules = {s.name: s for s in repo.schedule_defs}
    assert set(schedules) == {"monthly_backfill_schedule", "parquet_monthly_schedule"}
    for schedule in schedules.values():
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
        tick = dg.build_schedule_context(
            scheduled_execution_time=datetime(2025, 3, 2, 3, tzinfo=UTC)
        )
        (request,) = schedule.evaluate_tick(tick).run_requests or []
        assert request.partition_key == "2025-02-01"  # the month that just ended
    (sensor,) = repo.sensor_defs
    assert sensor.name == "run_failure_alert"
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_the_failure_sensor_names_the_run_and_its_failed_step(tmp_path, capfd) -> None:
    from honey_duck.definitions import run_failure_alert

    empty = tmp_path / "no_inputs"
    empty.mkdir()
    defs = build(environments.environment("local", home=tmp_path, input_dir=empty))
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("csv_tables").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
    ).for_run_failure()
    capfd.readouterr()
    run_failure_alert(context)
    logged = capfd.readouterr().err
    assert f"run {result.run_id} of csv_tables failed at artists" in logged


def test_a_local_stand_in_is_labelled_as_what_holds_the_data(tmp_path) -> None:
    key = dg.AssetKey(["postgres", "sales_enriched"])
    local = build(environments.environment("local", home=tmp_path)).resolve_asset_graph().get(key)
    assert local.kinds == {"duckdb", "polars"}  # the badge the UI shows
    assert "postgres_local.duckdb" in local.metadata["honey_duck/stand_in"]
    assert "stands in for the server" in (local.description or "")
    dev = build(environments.environment("dev", home=tmp_path)).resolve_asset_graph().get(key)
    assert dev.kinds == {"postgres", "polars"}
    assert "honey_duck/stand_in" not in dev.metadata


def test_an_assets_overview_shows_where_it_lands_before_it_is_materialized(tmp_path) -> None:
    def metadata(env: str, key: str) -> dict:
        defs = build(environments.environment(env, home=tmp_path))
        return dict(defs.resolve_asset_graph().get(dg.AssetKey.from_user_string(key)).metadata)

    local = metadata("local", "csv/sales_enriched")
    assert local["dagster/table_name"] == "csv.sales_enriched"
    assert local["dagster/uri"] == str(tmp_path / "output" / "csv" / "sales_enriched.csv")
    dev = metadata("dev", "postgres/artworks_summary")
    assert dev["dagster/table_name"] == "postgres.artworks_summary"
    assert dev["dagster/uri"].startswith("postgresql://127.0.0.1:55432/postgres")
    assert "dagster/uri" not in metadata("dev", "postgres/sales_monthly")  # one per partition
    prod = metadata("prod", "mongo/sales_enriched")  # its URL is a variable, read at run time
    assert "dagster/uri" not in prod and "dagster/table_name" not in prod
