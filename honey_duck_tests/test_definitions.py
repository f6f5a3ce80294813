"""The code location: one graph in every environment, clear errors, the main command."""

import dagster as dg
import pytest

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
        for sink in SINKS:
            assert f"{sink}_io_manager" in defs.resources, (name, sink)
    assert sorted(SINKS) == [
        "csv", "duckdb", "excel", "feather", "json", "parquet", "postgres", "redshift"
    ]  # fmt: skip


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
