"""What the SQL sinks refuse before anything is written, the same in `local` and in `dev`.

Each frame below is one a server would reject half-way through a load (a raw COPY error), or
one a target would change on the way in without a word. Both the `local` stand-in (DuckDB) and
the `dev` manager (a real PostgreSQL server; S3 staging for Redshift) must refuse it through a
Dagster run, in one sentence naming the sink's word and the column, with nothing written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import psycopg
import pytest

from honey_duck import environments, sinks
from honey_duck.seam import SinkIOManager
from honey_duck_tests.contract.runs import error_of, run


def _raw(values: list[int], dtype: pl.DataType) -> pl.Series:
    return pl.Series(values, dtype=pl.Int64).cast(dtype)


@dataclass(frozen=True)
class Case:
    frame: pl.DataFrame
    column: str | None  # the column the refusal must name (None: it names none)
    per_value: bool = True  # a value refusal: it also names the first refused row


def _cases() -> dict[str, Case]:
    nanoseconds = pl.Series([1_000, 1_001]).cast(pl.Datetime("ns"))
    return {
        "text holding NUL": Case(pl.DataFrame({"id": [1], "note": ["a\x00b"]}), "note"),
        "nanoseconds": Case(pl.DataFrame({"at": nanoseconds}), "at"),
        "a time with nanoseconds": Case(pl.DataFrame({"t": _raw([1_000, 1], pl.Time)}), "t"),
        "a date before 4713 BC": Case(
            pl.DataFrame({"d": _raw([0, -2_440_589], pl.Int32).cast(pl.Date)}), "d"
        ),
        "milliseconds past 64-bit microseconds": Case(
            pl.DataFrame({"at": _raw([2**62], pl.Datetime("ms"))}), "at"
        ),
        "a millisecond duration past 64-bit microseconds": Case(
            pl.DataFrame({"took": _raw([2**62], pl.Duration("ms"))}), "took"
        ),
        "NUL inside a struct": Case(pl.DataFrame({"s": [{"v": "a"}, {"v": "\x00"}]}), "s"),
        "NaN inside a struct": Case(pl.DataFrame({"s": [{"x": 1.0}, {"x": float("nan")}]}), "s"),
        "binary inside a struct": Case(pl.DataFrame({"s": [{"b": b"\x00"}]}), "s", False),
        "names that differ only in case": Case(
            pl.DataFrame({"Caps": [1], "CAPS": [2]}), "CAPS", False
        ),
        "a name longer than any server keeps": Case(
            pl.DataFrame({"n" * 128: [1]}), "n" * 128, False
        ),
        "an empty name": Case(pl.DataFrame({"": [1]}), "", False),
        "1,601 columns": Case(pl.DataFrame({f"c{i}": [i] for i in range(1_601)}), None, False),
    }


REDSHIFT_ONLY = {
    "a 70,000-byte string": Case(pl.DataFrame({"id": [1, 2], "v": ["a", "x" * 70_000]}), "v"),
    "70,000 bytes in 35,000 characters": Case(pl.DataFrame({"v": ["é" * 35_000]}), "v"),
    "a 70,000-byte string inside a list": Case(pl.DataFrame({"v": [["a", "x" * 70_000]]}), "v"),
    "a 1,100,000-byte binary": Case(pl.DataFrame({"b": [b"\x01" * 1_100_000]}), "b"),
}
# Redshift's own limit is 127 bytes; its `dev` stand-in, PostgreSQL, keeps 63: both refuse,
# each naming its own limit
WORDED_APART = {("redshift", "a name longer than any server keeps")}

CASES = [(word, case) for word in ("postgres", "redshift") for case in _cases()]
CASES += [("redshift", case) for case in REDSHIFT_ONLY]


@dataclass
class Environments:
    local: environments.Environment
    dev: environments.Environment
    postgres_url: str
    bucket: str
    s3: Any


@pytest.fixture
def envs(tmp_path: Path, postgres_server: str, s3_server: Any) -> Environments:
    bucket = s3_server.create_bucket("refusals")
    variables = {
        sinks.postgres.URL.name: postgres_server,
        sinks._files.BUCKET.name: bucket,
        **s3_server.env(),
    }
    return Environments(
        local=environments.environment("local", home=tmp_path / "local"),
        dev=environments.environment("dev", home=tmp_path / "dev", variables=variables),
        postgres_url=postgres_server,
        bucket=bucket,
        s3=s3_server,
    )


def _case(word: str, name: str) -> Case:
    return {**_cases(), **REDSHIFT_ONLY}[name]


def _tables_in(envs: Environments, word: str, schema: str) -> list[str]:
    """The tables of `schema` in `local`'s DuckDB file and on `dev`'s server."""
    found = []
    database = Path(envs.local.path(f"{word}_local.duckdb"))
    if database.exists():
        with duckdb.connect(str(database)) as connection:
            found += [
                f"local: {name}"
                for (name,) in connection.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                    [schema],
                ).fetchall()
            ]
    with psycopg.connect(envs.postgres_url) as connection:
        found += [
            f"dev: {name}"
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                [schema],
            ).fetchall()
        ]
    return found


@pytest.mark.parametrize(("word", "name"), CASES, ids=[f"{w}: {c}" for w, c in CASES])
def test_local_and_dev_refuse_the_frame_before_writing_in_the_sinks_word(
    envs: Environments, word: str, name: str
) -> None:
    case = _case(word, name)
    module = getattr(sinks, word)
    managers: dict[str, SinkIOManager] = {
        "local": module.local(envs.local),
        "dev": module.dev(envs.dev),
    }
    schema = f"r_{time.time_ns() % 10**10}"
    messages = {}
    for env, io in managers.items():
        result = run(io, lambda: case.frame, metadata={"schema": schema})
        message = error_of(result)
        assert f"SinkError: {word} sink, `t/table`: " in message, f"{env}: {message}"
        assert case.column is None or f"`{case.column}`" in message, f"{env}: {message}"
        if case.per_value:
            assert "the first is row" in message, f"{env}: {message}"
        messages[env] = message
    if (word, name) not in WORDED_APART:
        assert messages["local"] == messages["dev"]
    assert _tables_in(envs, word, schema) == []
    staged = envs.s3.client().list_objects_v2(Bucket=envs.bucket)
    assert staged.get("KeyCount", 0) == 0


@pytest.mark.parametrize("word", ["postgres", "redshift"])
def test_local_and_dev_declare_the_same_word_and_capabilities(
    envs: Environments, word: str
) -> None:
    module = getattr(sinks, word)
    local, dev = module.local(envs.local), module.dev(envs.dev)
    assert local.word() == dev.word() == local.target().word == dev.target().word == word
    assert local.target_capabilities() == dev.target_capabilities()
    assert local.target().storage_kind == "duckdb" and dev.target().storage_kind == word


def test_names_differing_only_in_case_land_nowhere_and_the_rest_still_lands(
    envs: Environments,
) -> None:
    """The refusal is of the names, not of the sink: renamed, the same frame lands on both."""
    schema = f"c_{time.time_ns() % 10**10}"
    frame = pl.DataFrame({"Caps": [1], "CAPS_2": [2]})
    seen: list[pl.DataFrame] = []
    for io in (sinks.postgres.local(envs.local), sinks.postgres.dev(envs.dev)):
        result = run(
            io, lambda: frame, metadata={"schema": schema}, consume=lambda table: seen.append(table)
        )
        assert result.success, error_of(result)
    assert [back.equals(frame) for back in seen] == [True, True]
    assert sorted(_tables_in(envs, "postgres", schema)) == ["dev: table", "local: table"]


def test_a_stand_in_checks_a_table_name_as_its_sink_does(envs: Environments) -> None:
    """A 64-byte table name would be cut by PostgreSQL: the stand-in refuses it too."""
    long_name = "t" * 64
    for io in (sinks.postgres.local(envs.local), sinks.postgres.dev(envs.dev)):
        result = run(io, lambda: pl.DataFrame({"id": [1]}), metadata={"table": long_name})
        message = error_of(result)
        assert "SinkError: postgres sink, `t/table`: the table name" in message, message
        assert "1 to 63 bytes" in message
