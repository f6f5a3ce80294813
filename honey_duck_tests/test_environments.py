"""The same graph accepts the same things in every environment, and says the sink's own word.

`local` lands the server-backed sinks in embedded DuckDB files; what a user sees fail there must
be what fails in `dev` and `prod`: the same refusals when the definitions load, the same
capabilities, errors that name the sink (never the stand-in's `duckdb`).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from honey_duck import environments
from honey_duck.seam import SinkIOManager, check_assets
from honey_duck.sinks import SINKS
from honey_duck.targets.standin import StandInIOManager
from honey_duck_tests.contract.runs import error_of, run

_LOCAL = environments.environment("local", home=Path("/nonexistent/honey_duck"))
# the sinks whose `local` manager is an embedded stand-in for a server
SERVER_BACKED = [w for w, s in SINKS.items() if isinstance(s.manager(_LOCAL), StandInIOManager)]


def managers(word: str, home: Path) -> dict[str, SinkIOManager]:
    """The sink's manager in each environment that has one of ours."""
    found = {}
    for name in environments.ENVIRONMENTS:
        manager = SINKS[word].manager(environments.environment(name, home=home))
        if isinstance(manager, SinkIOManager):
            found[name] = manager
    return found


@pytest.mark.parametrize("word", SERVER_BACKED)
def test_a_stand_in_keeps_the_word_and_capabilities_of_its_sink(word: str, tmp_path) -> None:
    by_env = managers(word, tmp_path)
    assert by_env["local"].stand_in() is not None, f"{word}: local has no stand-in"
    assert {m.word() for m in by_env.values()} == {word}
    assert len({m.target_capabilities() for m in by_env.values()}) == 1, word
    # `prod`'s variables resolve only when a run starts: its target is built then
    assert {by_env[name].target().word for name in ("local", "dev")} == {word}


def test_local_refuses_an_append_without_keys_to_kafka_when_the_definitions_load(
    tmp_path,
) -> None:
    """A compacted topic needs a key for every message: `local` refuses what `dev` refuses."""

    @dg.asset(name="log", key_prefix=["kafka"], metadata={"write_mode": "append"})
    def log() -> pl.DataFrame:
        return pl.DataFrame({"id": [1]})

    for name in ("local", "dev"):
        manager = SINKS["kafka"].manager(environments.environment(name, home=tmp_path))
        with pytest.raises(dg.DagsterInvalidDefinitionError) as refused:
            check_assets([log], {"io_manager": manager})
        message = str(refused.value)
        assert "`kafka/log` (kafka sink)" in message, (name, message)
        assert "without `upsert_keys`" in message and "append" in message, (name, message)


@pytest.mark.parametrize("word", SERVER_BACKED)
def test_errors_of_the_local_stand_in_name_the_sink_it_stands_in_for(word: str, tmp_path) -> None:
    manager = SINKS[word].manager(environments.environment("local", home=tmp_path))
    keyed = {"upsert_keys": ["id"]} if manager.target_capabilities().keyed else {}
    metadata = {"write_mode": "upsert", "upsert_keys": ["id"], **keyed}
    result = run(manager, lambda: pl.DataFrame({"id": [1, 1]}), metadata=metadata)
    message = error_of(result)
    assert f"{word} sink, `t/table`" in message, message
    assert "duckdb sink" not in message


def test_a_file_sinks_word_is_its_sinks_not_its_formats(tmp_path) -> None:
    """The pipeline's storage writes Parquet files but is not the `parquet` sink."""
    from honey_duck.definitions import pipeline_resources
    from honey_duck.sinks._files import file_environments

    env = environments.environment("local", home=tmp_path)
    storage = pipeline_resources(env)["io_manager"]
    assert isinstance(storage, SinkIOManager) and storage.word() == "storage"
    local, dev, prod = file_environments("archive", fmt="csv")
    for make in (local, dev, prod):
        assert make(env).word() == "archive"
    result = run(local(env), lambda: pl.DataFrame({"id": [1, 1]}), metadata={
        "write_mode": "upsert", "upsert_keys": ["id"],
    })  # fmt: skip
    assert "archive sink, `t/table`" in error_of(result)
