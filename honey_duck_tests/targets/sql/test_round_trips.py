"""Values the SQL family keeps come back exactly, on PostgreSQL and on `local`'s stand-in."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from honey_duck.targets.postgres import PostgresIOManager
from honey_duck.targets.sql.target import SqlIOManager
from honey_duck.targets.standin import StandInIOManager
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.sinks import roundtrip


@pytest.fixture(params=["postgres", "local"])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> SqlIOManager:
    if request.param == "postgres":
        return PostgresIOManager.from_url(request.getfixturevalue("postgres_server"))
    return StandInIOManager.of(PostgresIOManager(), database=str(tmp_path / "local.duckdb"))


def _round_trip(io: SqlIOManager, frame: pl.DataFrame) -> pl.DataFrame:
    seen: dict[str, pl.DataFrame] = {}
    schema = f"rt_{time.time_ns() % 10**10}"
    result = run(
        io, lambda: frame, metadata={"schema": schema}, consume=lambda table: seen.update(t=table)
    )
    assert result.success, error_of(result)
    return seen["t"]


LISTS = {
    "UInt64": (pl.UInt64, [[2**64 - 1, None], None, []]),
    "UInt8": (pl.UInt8, [[255, 0], None, []]),
    "Decimal": (pl.Decimal(12, 2), [[Decimal("1.25"), None], None, []]),
    "Float32": (pl.Float32, [[1.5, float("nan")], None, []]),
    "Boolean": (pl.Boolean, [[True, None], None, []]),
    "Date": (pl.Date, [[date(2024, 1, 1)], None, []]),
    "Time": (pl.Time, [[clock(1, 2, 3, 4)], None, []]),
    "Datetime": (pl.Datetime("us"), [[datetime(2024, 1, 1, 1, 2, 3, 4)], None, []]),
    "Duration": (pl.Duration("us"), [[timedelta(days=-3, microseconds=5), None], None, []]),
    "Binary": (pl.Binary, [[b"\x00\xff"], None, []]),
    "Categorical": (pl.Categorical, [["a", None], None, []]),
}


def test_a_list_of_each_scalar_type_reads_back_as_declared(manager: SqlIOManager) -> None:
    """A `numeric(20,0)[]` (UInt64) and an `interval[]` (Duration) column used to fail on read."""
    frame = pl.DataFrame(
        {kind: pl.Series(values, dtype=pl.List(item)) for kind, (item, values) in LISTS.items()}
    )
    back = _round_trip(manager, frame)
    landing = manager.target().landing
    assert back.schema == pl.Schema({c: landing(t).dtype for c, t in frame.schema.items()})
    roundtrip.assert_reconciles(landing, frame, back)


def test_long_durations_read_back_to_the_microsecond(manager: SqlIOManager) -> None:
    """DuckDB's `epoch()` is a double: the stand-in read 10**17 + 1 microseconds as 10**17."""
    micros = [10**17 + 1, -(2**62) - 1, 2**63 - 1, 5]
    frame = pl.DataFrame({"took": pl.Series(micros, dtype=pl.Int64).cast(pl.Duration("us"))})
    back = _round_trip(manager, frame)
    assert back.schema == frame.schema
    assert back["took"].to_physical().to_list() == micros


def test_text_that_only_looks_like_an_escaped_nul_lands(manager: SqlIOManager) -> None:
    """A backslash, `u0000` inside a struct is six characters, not NUL: it used to be refused,
    since its JSON text (`\\\\u0000`) holds `\\u0000`."""
    frame = pl.DataFrame({"s": [{"v": "\\u0000"}], "l": [["\\u0000"]]})
    back = _round_trip(manager, frame)
    assert back["s"].to_list() == [{"v": "\\u0000"}]
    assert back["l"].to_list() == [["\\u0000"]]
