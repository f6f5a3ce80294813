"""The PostgreSQL sink against a real server, and its local stand-in against an embedded DuckDB.

Both run the whole contract suite (`honey_duck_tests/contract`) through a probe that reads back
with the target's own client (psycopg, duckdb); below the probes, what only PostgreSQL has.
"""

import subprocess
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import psycopg
import pytest

from honey_duck.targets.postgres import PostgresIOManager
from honey_duck.targets.standin import StandInIOManager
from honey_duck_tests.contract import sql
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.contract.sql import PostgresProbe, SqlProbe, fresh_schema
from honey_duck_tests.contract.suite import DataContract, LandedContract, ServerContract
from honey_duck_tests.sinks import roundtrip


class StandInProbe(SqlProbe):
    """The `local` stand-in of PostgreSQL: an embedded DuckDB file per test."""

    def __init__(self, database: str, schema: str) -> None:
        def query(sql: str) -> list[tuple]:
            with duckdb.connect(database) as connection:
                return connection.execute(sql).fetchall()

        super().__init__(
            "postgres",
            "DuckDB",
            lambda **c: StandInIOManager.of(
                PostgresIOManager(), database=database, default_schema=schema, **c
            ),
            query,
            schema,
        )


def typed_frame() -> pl.DataFrame:
    """Every type the SQL type maps cover, with nulls."""
    return pl.DataFrame(
        {
            "id": [1, 2, 3],
            "small": pl.Series([1, -2, None], dtype=pl.Int16),
            "price": [1.25, None, 1e-7],
            "name": ['Zoë "the" artist, Jr.', "", None],
            "flag": [True, False, None],
            "day": [date(2024, 1, 2), None, date(1999, 12, 31)],
            "at": [datetime(2024, 1, 2, 3, 4, 5, 123456), None, datetime(2000, 1, 1)],
            "at_utc": pl.Series([datetime(2024, 6, 1, 12), None, datetime(2024, 1, 1)]).dt.replace_time_zone("UTC"),  # noqa: E501
            "amount": pl.Series([Decimal("12.34"), None, Decimal("-0.01")], dtype=pl.Decimal(12, 2)),  # noqa: E501
            "took": [timedelta(seconds=90, microseconds=5), None, timedelta(days=2)],
            "tags": [["a", "b"], None, []],
            "info": [{"k": 1, "v": "x"}, None, {"k": 2, "v": None}],
        }
    )  # fmt: skip


class TestPostgres(ServerContract):
    """The contract on a real PostgreSQL server."""

    word = "postgres"
    typed_frame = staticmethod(typed_frame)
    lazy_frame = staticmethod(sql.lazy_frame)

    @pytest.fixture
    def probe(self, request: pytest.FixtureRequest, postgres_server: str) -> PostgresProbe:
        return PostgresProbe(postgres_server, fresh_schema(request))

    def refused(self, probe: Any, frame: pl.DataFrame) -> dict[str, str]:
        """PostgreSQL text and jsonb cannot hold NUL; the declared refusals besides."""
        nul = roundtrip.holds_nul(frame)
        if nul is not None:
            return {nul: "NUL"}
        return super().refused(probe, frame)


class TestPostgresStandIn(DataContract, LandedContract):
    """The contract on `local`'s stand-in (an embedded DuckDB), and what `local` landed."""

    word = "postgres"
    typed_frame = staticmethod(typed_frame)
    lazy_frame = staticmethod(sql.lazy_frame)

    @pytest.fixture
    def probe(self, request: pytest.FixtureRequest, tmp_path: Path) -> StandInProbe:
        return StandInProbe(str(tmp_path / "local.duckdb"), fresh_schema(request))


@pytest.fixture(params=["postgres", "local"])
def probe(request: pytest.FixtureRequest, tmp_path: Path) -> SqlProbe:
    """Either target, for the tests below that run on both."""
    if request.param == "postgres":
        return PostgresProbe(request.getfixturevalue("postgres_server"), fresh_schema(request))
    return StandInProbe(str(tmp_path / "local.duckdb"), fresh_schema(request))


def test_a_transient_failure_is_retried(postgres_server: str) -> None:
    schema = f"retry_{time.time_ns() % 10**8}"
    io = PostgresIOManager.from_url(postgres_server, default_schema=schema, retries=2)
    frame = pl.LazyFrame({"id": pl.int_range(0, 1_000_000, eager=True)})
    killed = threading.Event()

    def kill_once() -> None:
        with psycopg.connect(postgres_server, autocommit=True) as connection:
            for _ in range(2000):
                if connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'honey_duck' AND query ILIKE 'COPY%'"
                ).fetchall():
                    killed.set()
                    return
                time.sleep(0.005)

    killer = threading.Thread(target=kill_once)
    killer.start()
    result = run(io, lambda: frame, metadata={"schema": schema})
    killer.join()
    assert result.success, error_of(result)
    assert killed.is_set(), "the test never caught the COPY to kill it"
    with psycopg.connect(postgres_server) as connection:
        count = connection.execute(f'SELECT count(*) FROM "{schema}"."table"').fetchone()
    assert count == (1_000_000,)


def _connect_error(connect: Callable[[], Any]) -> BaseException:
    try:
        connect().close()
    except Exception as exc:
        return exc
    raise AssertionError("the connection was expected to fail")


def test_refused_connections_are_transient_and_refusals_of_us_are_not(postgres_server: str) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    from honey_duck.seam.faults import connect_failed

    refused = _connect_error(lambda: adbc.connect("postgresql://postgres@127.0.0.1:1/postgres"))
    assert connect_failed("PostgreSQL", "127.0.0.1:1", refused).transient
    base = postgres_server.rsplit("/", 1)[0]
    no_database = _connect_error(lambda: adbc.connect(f"{base}/no_such_database"))
    assert not connect_failed("PostgreSQL", "x", no_database).transient
    no_role = _connect_error(lambda: psycopg.connect(postgres_server, user="no_such_role"))
    assert not connect_failed("Redshift", "x", no_role).transient
    refused_psycopg = _connect_error(lambda: psycopg.connect("host=127.0.0.1 port=1"))
    assert connect_failed("Redshift", "x", refused_psycopg).transient


def test_psql_sees_what_we_wrote(postgres_server: str) -> None:
    schema = f"psql_{time.time_ns() % 10**8}"
    io = PostgresIOManager.from_url(postgres_server, default_schema=schema)
    assert run(io, lambda: typed_frame(), metadata={"schema": schema}).success
    out = subprocess.run(
        [
            "psql",
            postgres_server,
            "-At",
            "-c",
            f'SELECT id, amount, day, tags FROM "{schema}"."table" ORDER BY id',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == ["1|12.34|2024-01-02|{a,b}", "2|||", "3|-0.01|1999-12-31|{}"]


def _keys_and_indexes(probe: SqlProbe) -> tuple[list[tuple], list[tuple]]:
    """The table's primary key and index definitions, read from the catalog natively."""
    if isinstance(probe, PostgresProbe):
        keys = probe.query(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            f" WHERE conrelid = to_regclass('{probe.table()}') ORDER BY conname"
        )
        indexes = probe.query(
            "SELECT indexname, indexdef FROM pg_indexes"
            f" WHERE schemaname = '{probe.schema}' AND tablename = 'table' ORDER BY indexname"
        )
        return keys, indexes
    keys = probe.query(
        "SELECT constraint_type, constraint_column_names FROM duckdb_constraints()"
        f" WHERE schema_name = '{probe.schema}' AND table_name = 'table'"
        " AND constraint_type = 'PRIMARY KEY'"
    )
    indexes = probe.query(
        "SELECT index_name, sql FROM duckdb_indexes()"
        f" WHERE schema_name = '{probe.schema}' AND table_name = 'table'"
    )
    return keys, indexes


def test_a_replace_keeps_the_keys_and_indexes_of_the_table(probe: SqlProbe) -> None:
    """An upsert's primary key and a hand-made index outlive a replace without upsert keys."""
    io = probe.manager()
    upsert = probe.meta(write_mode="upsert", upsert_keys=["id"])
    assert run(io, lambda: pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), metadata=upsert).success
    probe.query(f'CREATE INDEX "v by value" ON {probe.table()} (v)')
    before = _keys_and_indexes(probe)
    assert before[0] and before[1]
    for _ in range(2):  # the second replace swaps out a table the first one swapped in
        replaced = run(
            io, lambda: pl.DataFrame({"id": [2, 3], "v": ["B", "c"]}), metadata=probe.meta()
        )
        assert replaced.success, error_of(replaced)
        assert _keys_and_indexes(probe) == before
    assert "_hd_" not in str(before)
    again = run(io, lambda: pl.DataFrame({"id": [3, 4], "v": ["C", "d"]}), metadata=upsert)
    assert again.success, error_of(again)
    rows = probe.query(f"SELECT id, v FROM {probe.table()} ORDER BY id")
    assert rows == [(2, "B"), (3, "C"), (4, "d")]


_WRITER = """
import sys
import polars as pl
from honey_duck.targets.standin import StandInIOManager
from honey_duck_tests.contract.reconciling import reconciled
from honey_duck_tests.contract.runs import error_of, run

database, name = sys.argv[1], sys.argv[2]
from honey_duck.targets.postgres import PostgresIOManager

io = StandInIOManager.of(PostgresIOManager(), database=database)
for i in range(10):
    frame = pl.DataFrame({"id": list(range(20_000)), "run": [i] * 20_000})
    result = run(io, lambda: frame, metadata={"table": name})
    if not result.success:
        sys.exit(f"{name} run {i}: {error_of(result)}")
"""


def test_two_processes_write_different_tables_of_one_duckdb_file(tmp_path: Path) -> None:
    """DuckDB lets one process at a time hold the file: writers take turns, none fails."""
    import sys

    database = str(tmp_path / "shared.duckdb")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, database, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("left", "right")
    ]
    outcomes = [(w.wait(timeout=300), w.stderr.read() if w.stderr else "") for w in writers]
    assert [code for code, _ in outcomes] == [0, 0], [err[-2000:] for _, err in outcomes]
    with duckdb.connect(database, read_only=True) as connection:
        for name in ("left", "right"):
            rows = connection.execute(f'SELECT count(*), max(run) FROM t."{name}"').fetchall()
            assert rows == [(20_000, 9)]


_HOLDER = """
import sys, time
import duckdb
connection = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
connection.close()
"""


def test_a_writer_waits_for_the_process_holding_the_duckdb_file_without_retrying(
    tmp_path: Path,
) -> None:
    """A run holding the file lets go when it ends: the next writer polls for it, so it needs
    none of the manager's retries (whose backoff let a busy neighbour starve it)."""
    import sys

    database = str(tmp_path / "held.duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, database, "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        io = StandInIOManager.of(PostgresIOManager(), database=database, retries=0)
        started = time.monotonic()
        result = run(io, lambda: pl.DataFrame({"id": [1, 2]}), metadata={"table": "t"})
        assert result.success, error_of(result)
        assert time.monotonic() - started > 0.5  # it did wait for the holder
    finally:
        holder.wait(timeout=30)
    with duckdb.connect(database, read_only=True) as connection:
        assert connection.execute('SELECT count(*) FROM t."t"').fetchall() == [(2,)]


def test_text_holding_nul_is_refused_before_writing_naming_the_column(postgres_server: str) -> None:
    """PostgreSQL text and jsonb cannot hold NUL: refused by the validation pass, not mid-COPY."""
    schema = f"nul_{time.time_ns() % 10**8}"
    io = PostgresIOManager.from_url(postgres_server, default_schema=schema)
    data: dict[str, pl.DataFrame] = {}
    for column, values in {
        "name": ["ok", "a\x00b"],
        "tags": [["ok"], ["a\x00"]],
        "info": [{"k": "ok"}, {"k": "\x00"}],
    }.items():
        data["frame"] = pl.DataFrame({"id": [1, 2], column: values})
        message = error_of(run(io, lambda: data["frame"], metadata={"schema": schema}))
        assert f"column `{column}`" in message and "NUL" in message, message
    with psycopg.connect(postgres_server) as connection:
        exists = connection.execute("SELECT to_regclass(%s)", [f'"{schema}"."table"']).fetchone()
    assert exists == (None,)  # nothing was written
