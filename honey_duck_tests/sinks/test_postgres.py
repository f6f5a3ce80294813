"""The PostgreSQL sink against a real server, and its local stand-in against an embedded DuckDB.

Every test runs on both targets and reads back with the target's own client (psycopg, duckdb),
not only through our `load_input`.
"""

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from honey_duck.connections import PostgresConfig
from honey_duck.targets.postgres import PostgresIOManager
from honey_duck.targets.sql.target import SqlIOManager
from honey_duck.targets.standin import StandInIOManager
from honey_duck_tests.contract.reconciling import reconciled
from honey_duck_tests.contract.runs import (
    MONTHLY,
    MULTI,
    backfill_then_rerun_march,
    error_of,
    months,
    run,
)
from honey_duck_tests.sinks import roundtrip
from honey_duck_tests.sinks.readback import assert_reconciled


@dataclass
class Target:
    """One SQL target under test: how to build its IO manager and query it natively."""

    name: str
    manager: Callable[..., SqlIOManager]
    query: Callable[[str], list[tuple]]
    schema: str  # a fresh schema per test, so tests never see each other's tables
    url: str = ""  # the server's URL, for tests that need the native client's options

    def table(self, name: str = "table") -> str:
        return f'"{self.schema}"."{name}"'


@pytest.fixture(params=["postgres", "local"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    schema = f"t_{request.node.name[:20].strip('[]_').lower()}_{time.time_ns() % 10**8}"
    schema = "".join(c if c.isalnum() else "_" for c in schema)
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_server")

        def query(sql: str) -> list[tuple]:
            with psycopg.connect(url, autocommit=True) as connection:
                cursor = connection.execute(sql)
                return cursor.fetchall() if cursor.description else []

        return Target(
            "postgres",
            lambda **c: PostgresIOManager.from_url(url, default_schema=schema, **c),
            query,
            schema,
            url,
        )
    database = str(tmp_path / "local.duckdb")

    def local_query(sql: str) -> list[tuple]:
        with duckdb.connect(database) as connection:
            return connection.execute(sql).fetchall()

    return Target(
        "local",
        lambda **c: StandInIOManager.of(
            PostgresIOManager(), database=database, default_schema=schema, **c
        ),
        local_query,
        schema,
    )


def meta(target: Target, **more: Any) -> dict[str, Any]:
    return {"schema": target.schema, **more}


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


def test_every_type_round_trips_and_replace_is_idempotent(target: Target) -> None:
    frame = typed_frame()
    seen: dict[str, pl.DataFrame] = {}
    io = target.manager()
    for _ in range(2):
        result = run(
            io,
            lambda: frame.lazy(),
            metadata=meta(target),
            consume=lambda table: seen.update(table=table),
        )
        assert result.success, error_of(result)
    assert target.query(f"SELECT count(*) FROM {target.table()}") == [(3,)]
    native = target.query(
        f"SELECT amount, name, tags, day FROM {target.table()} ORDER BY id"
    )  # the target's own client, not our reader
    assert native[0][0] == Decimal("12.34")
    assert native[0][1] == 'Zoë "the" artist, Jr.'
    assert list(native[0][2]) == ["a", "b"]
    assert native[2][3] == date(1999, 12, 31)
    back = seen["table"]
    assert back.select(pl.exclude("info")).equals(frame.select(pl.exclude("info")))
    assert back["info"].to_list() == frame["info"].to_list()
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/row_count"].value == 3
    assert metadata["dagster/table_name"].value == f"{target.schema}.table"
    assert "password" not in str(metadata)


def test_upsert_updates_and_inserts_and_append_appends(target: Target) -> None:
    io = target.manager()
    upsert = meta(target, write_mode="upsert", upsert_keys=["id"])
    first = pl.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    assert run(io, lambda: first, metadata=upsert).success
    second = pl.DataFrame({"id": [3, 4], "v": ["C", "D"]})
    result = run(io, lambda: second, metadata=upsert)
    assert result.success, error_of(result)
    rows = target.query(f"SELECT id, v FROM {target.table()} ORDER BY id")
    assert rows == [(1, "a"), (2, "b"), (3, "C"), (4, "D")]
    appended = run(io, lambda: second, metadata=meta(target, write_mode="append"))
    assert not appended.success  # the primary key the upsert table was created with holds
    assert "duplicate key" in error_of(appended).lower() or "constraint" in error_of(appended)


def test_an_upsert_that_lacks_a_column_keeps_its_stored_values(target: Target) -> None:
    io = target.manager()
    upsert = meta(target, write_mode="upsert", upsert_keys=["id"])
    first = pl.DataFrame({"id": [1, 2], "v": ["a", "b"], "note": ["keep", "me"]})
    assert run(io, lambda: first, metadata=upsert).success
    second = pl.DataFrame({"id": [2, 3], "v": ["B", "c"]})
    result = run(io, lambda: second, metadata={**upsert, "schema_policy": "evolve"})
    assert result.success, error_of(result)
    rows = target.query(f"SELECT id, v, note FROM {target.table()} ORDER BY id")
    assert rows == [(1, "a", "keep"), (2, "B", "me"), (3, "c", None)]


def test_static_integer_keys_match_typed_and_other_spellings_are_refused(target: Target) -> None:
    io = target.manager()
    stores = dg.StaticPartitionsDefinition(["1", "2", "01"])
    frame = pl.DataFrame({"store": [1, 1], "v": ["a", "b"]})
    where = meta(target, partition_expr="store")
    for key in ("1", "2"):
        piece = frame.with_columns(store=pl.lit(int(key), dtype=pl.Int64))
        done = run(io, piece.clone, metadata=where, partitions_def=stores, partition_key=key)
        assert done.success, error_of(done)
    redo = run(io, lambda: frame.head(1), metadata=where, partitions_def=stores, partition_key="1")
    assert redo.success, error_of(redo)
    odd = run(io, lambda: frame, metadata=where, partitions_def=stores, partition_key="01")
    assert "partition key '01' is not how column `store` (Int64) spells 1" in error_of(odd)
    rows = target.query(f"SELECT store, count(*) FROM {target.table()} GROUP BY 1 ORDER BY 1")
    assert rows == [(1, 1), (2, 2)]


def test_duplicate_upsert_keys_fail_before_anything_is_written(target: Target) -> None:
    io = target.manager()
    upsert = meta(target, write_mode="upsert", upsert_keys=["id"])
    assert run(io, lambda: pl.DataFrame({"id": [1], "v": ["a"]}), metadata=upsert).success
    result = run(io, lambda: pl.DataFrame({"id": [5, 5], "v": ["x", "y"]}), metadata=upsert)
    assert "appear more than once" in error_of(result)
    assert target.query(f"SELECT id, v FROM {target.table()}") == [(1, "a")]


def test_a_range_backfills_in_one_run_and_a_rerun_replaces_one_partition(target: Target) -> None:
    per_month = f"SELECT extract(month FROM d)::int, c, count(*) FROM {target.table()} GROUP BY 1, 2 ORDER BY 1"  # noqa: E501

    def first() -> None:
        assert target.query(per_month) == [(m, "first", 2) for m in (1, 2, 3, 4)]

    backfill_then_rerun_march(target.manager(), meta(target, partition_expr="d"), first)
    assert target.query(per_month) == [
        (1, "first", 2),
        (2, "first", 2),
        (3, "second", 1),
        (4, "first", 2),
    ]


def test_multi_partitions_replace_exactly_their_key_set(target: Target) -> None:
    io = target.manager()
    partitioned = meta(target, partition_expr={"month": "d", "channel": "c"})

    def produce(context: dg.AssetExecutionContext) -> pl.DataFrame:
        key = context.partition_key.keys_by_dimension
        return months([int(key["month"][5:7])], key["channel"])

    for month, channel in [
        ("2024-01-01", "online"),
        ("2024-01-01", "gallery"),
        ("2024-02-01", "online"),
    ]:
        key = dg.MultiPartitionKey({"month": month, "channel": channel})
        result = run(io, produce, metadata=partitioned, partitions_def=MULTI, partition_key=key)
        assert result.success, error_of(result)
    again = dg.MultiPartitionKey({"month": "2024-01-01", "channel": "online"})
    assert run(io, produce, metadata=partitioned, partitions_def=MULTI, partition_key=again).success
    rows = target.query(f"SELECT c, count(*) FROM {target.table()} GROUP BY c ORDER BY c")
    assert rows == [("gallery", 2), ("online", 4)]  # Jan online replaced, nothing else touched


def test_strict_refuses_drift_before_writing_and_evolve_adds_a_column(target: Target) -> None:
    io = target.manager()
    first = pl.DataFrame(
        {"id": [1], "amount": pl.Series([Decimal("1.50")], dtype=pl.Decimal(12, 2))}
    )
    assert run(io, lambda: first, metadata=meta(target)).success
    drifted = pl.DataFrame({"id": [2], "amount": [2.5], "note": ["new"]})
    message = error_of(run(io, lambda: drifted, metadata=meta(target)))
    assert "column `amount` is Float64" in message
    assert "in the data but " in message and "(12,2) in the target" in message
    assert "column `note` is new" in message
    assert target.query(f"SELECT id FROM {target.table()}") == [(1,)]
    added = pl.DataFrame({"id": [2], "note": ["new"]})
    evolve = meta(target, schema_policy="evolve", write_mode="append")
    result = run(io, lambda: added, metadata=evolve)
    assert result.success, error_of(result)
    rows = target.query(f"SELECT id, amount, note FROM {target.table()} ORDER BY id")
    assert rows == [(1, Decimal("1.50"), None), (2, None, "new")]


def test_an_empty_frame_creates_a_typed_table(target: Target) -> None:
    empty = typed_frame().clear()
    seen: dict[str, pl.DataFrame] = {}
    result = run(
        target.manager(),
        lambda: empty,
        metadata=meta(target),
        consume=lambda table: seen.update(table=table),
    )
    assert result.success, error_of(result)
    assert target.query(f"SELECT count(*) FROM {target.table()}") == [(0,)]
    assert seen["table"].height == 0
    assert seen["table"].schema["amount"] == pl.Decimal(12, 2)


def test_quoted_spaced_and_capitalised_identifiers_survive(target: Target) -> None:
    odd_schema = f'{target.schema} "Odd" Schema'
    odd_table = 'Sales "Q1" Table'
    frame = pl.DataFrame({"Sale ID": [1, 2], 'Say "hi"': ["a", "b"], "select": [True, False]})
    config = {"schema": odd_schema, "table": odd_table}
    seen: dict[str, pl.DataFrame] = {}
    result = run(
        target.manager(),
        lambda: frame,
        metadata=config,
        consume=lambda table: seen.update(table=table),
    )
    assert result.success, error_of(result)
    quoted = '"' + odd_schema.replace('"', '""') + '"."' + odd_table.replace('"', '""') + '"'
    assert target.query(f'SELECT "Say ""hi""" FROM {quoted} ORDER BY "Sale ID"') == [("a",), ("b",)]
    assert seen["table"].equals(frame)


def test_rows_outside_the_partition_are_refused(target: Target) -> None:
    result = run(
        target.manager(),
        lambda: months([1, 2]),
        metadata=meta(target, partition_expr="d"),
        partitions_def=MONTHLY,
        partition_key="2024-01-01",
    )
    assert "2 rows fall outside partitions 2024-01-01" in error_of(result)


def test_a_replace_killed_mid_load_leaves_the_old_table(postgres_server: str) -> None:
    """The server drops our connection during COPY: the old table stays readable and whole."""
    schema = f"kill_{time.time_ns() % 10**8}"
    io = PostgresIOManager.from_url(postgres_server, default_schema=schema, retries=0)
    assert run(io, lambda: pl.DataFrame({"id": [1, 2, 3]}), metadata={"schema": schema}).success
    big = pl.LazyFrame({"id": pl.int_range(0, 3_000_000, eager=True)})
    stop = threading.Event()

    def kill_the_copy() -> None:
        with psycopg.connect(postgres_server, autocommit=True) as connection:
            while not stop.is_set():
                killed = connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'honey_duck' AND query ILIKE 'COPY%'"
                ).fetchall()
                if killed:
                    return
                time.sleep(0.005)

    killer = threading.Thread(target=kill_the_copy)
    killer.start()
    try:
        result = run(io, lambda: big, metadata={"schema": schema})
    finally:
        stop.set()
        killer.join()
    assert not result.success
    assert "terminat" in error_of(result).lower() or "connection" in error_of(result).lower()
    with psycopg.connect(postgres_server) as connection:
        rows = connection.execute(f'SELECT id FROM "{schema}"."table" ORDER BY id').fetchall()
        leftovers = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE '_hd_%%'",
            [schema],
        ).fetchone()
    assert rows == [(1,), (2,), (3,)]
    assert leftovers == (0,)


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


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    connection = PostgresConfig(port=1, password="s3cret-Pa55", connect_timeout=2)
    io = PostgresIOManager(connection=connection)
    message = error_of(run(io, lambda: pl.DataFrame({"id": [1]})))
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in message
    assert "s3cret-Pa55" not in message


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


def test_a_server_that_comes_up_during_the_retries_gets_the_write(tmp_path: Path) -> None:
    """Connection refused while the server restarts: the write waits for it, then lands."""
    from honey_duck_dev.services.lifecycle import free_port
    from honey_duck_dev.services.postgres import Postgres

    port = free_port()
    io = PostgresIOManager(connection=PostgresConfig(port=port, connect_timeout=2), retries=4)
    started: list[Postgres] = []

    def start_late() -> None:
        time.sleep(1.0)
        started.append(Postgres.launch(port=port))

    starter = threading.Thread(target=start_late)
    starter.start()
    try:
        result = run(io, lambda: pl.DataFrame({"id": [1, 2]}))
        starter.join()
        assert result.success, error_of(result)
        with psycopg.connect(started[0].url) as connection:
            assert connection.execute('SELECT count(*) FROM t."table"').fetchone() == (2,)
    finally:
        starter.join()
        for server in started:
            server.stop()


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


def _keys_and_indexes(target: Target) -> tuple[list[tuple], list[tuple]]:
    """The table's primary key and index definitions, read from the catalog natively."""
    if target.name == "postgres":
        keys = target.query(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            f" WHERE conrelid = to_regclass('{target.table()}') ORDER BY conname"
        )
        indexes = target.query(
            "SELECT indexname, indexdef FROM pg_indexes"
            f" WHERE schemaname = '{target.schema}' AND tablename = 'table' ORDER BY indexname"
        )
        return keys, indexes
    keys = target.query(
        "SELECT constraint_type, constraint_column_names FROM duckdb_constraints()"
        f" WHERE schema_name = '{target.schema}' AND table_name = 'table'"
        " AND constraint_type = 'PRIMARY KEY'"
    )
    indexes = target.query(
        "SELECT index_name, sql FROM duckdb_indexes()"
        f" WHERE schema_name = '{target.schema}' AND table_name = 'table'"
    )
    return keys, indexes


def test_a_replace_keeps_the_keys_and_indexes_of_the_table(target: Target) -> None:
    """An upsert's primary key and a hand-made index outlive a replace without upsert keys."""
    io = target.manager()
    upsert = meta(target, write_mode="upsert", upsert_keys=["id"])
    assert run(io, lambda: pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), metadata=upsert).success
    target.query(f'CREATE INDEX "v by value" ON {target.table()} (v)')
    before = _keys_and_indexes(target)
    assert before[0] and before[1]
    for _ in range(2):  # the second replace swaps out a table the first one swapped in
        replaced = run(
            io, lambda: pl.DataFrame({"id": [2, 3], "v": ["B", "c"]}), metadata=meta(target)
        )
        assert replaced.success, error_of(replaced)
        assert _keys_and_indexes(target) == before
    assert "_hd_" not in str(before)
    again = run(io, lambda: pl.DataFrame({"id": [3, 4], "v": ["C", "d"]}), metadata=upsert)
    assert again.success, error_of(again)
    rows = target.query(f"SELECT id, v FROM {target.table()} ORDER BY id")
    assert rows == [(2, "B"), (3, "C"), (4, "d")]


def test_the_default_retry_window_outlasts_a_server_restart() -> None:
    """The server goes down, the write starts, the server is back 3 s later: the write lands."""
    import shutil
    import tempfile

    from honey_duck_dev.services.lifecycle import free_port
    from honey_duck_dev.services.postgres import Postgres

    # a directory the server's own user can reach (pytest's tmp_path is private to us)
    port, data = free_port(), Path(tempfile.mkdtemp(prefix="honey_duck-restart-"))
    servers = [Postgres.launch(port=port, data_dir=data)]  # kept: the restart is the same cluster
    io = PostgresIOManager(connection=PostgresConfig(port=port, connect_timeout=2))
    assert io.retries == 6  # the defaults, not a setting made for this test
    try:
        assert run(io, lambda: pl.DataFrame({"id": [1]})).success
        servers[0].stop()

        def restart() -> None:
            time.sleep(3.0)
            servers.append(Postgres.launch(port=port, data_dir=data))

        restarter = threading.Thread(target=restart)
        restarter.start()
        result = run(io, lambda: pl.DataFrame({"id": [1, 2]}))
        restarter.join()
        assert result.success, error_of(result)
        with psycopg.connect(servers[-1].url) as connection:
            assert connection.execute('SELECT count(*) FROM t."table"').fetchone() == (2,)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)


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


def test_the_local_stand_in_holds_the_pipeline_tables(local_run) -> None:
    from honey_duck_tests.sinks.readback import assert_duckdb_stand_in_lands

    assert_duckdb_stand_in_lands(local_run, "postgres")


def test_dynamic_partitions_replace_exactly_their_keys(target: Target) -> None:
    """Keys added on an instance at run time: each run replaces its own key's rows only."""
    stores = dg.DynamicPartitionsDefinition(name="stores")
    io = target.manager()
    table = dg.asset(
        name="table",
        key_prefix=["t"],
        metadata=meta(target, partition_expr="store"),
        partitions_def=stores,
    )(
        lambda context: pl.DataFrame(
            {"store": [context.partition_key] * 2, "n": [len(context.partition_key), 0]}
        )
    )
    seen: dict[str, pl.DataFrame] = {}

    @dg.asset(
        ins={"table": dg.AssetIn(["t", "table"])},
        partitions_def=stores,
        io_manager_key="mem",
    )
    def consumer(table: pl.DataFrame) -> None:
        seen["table"] = table

    defs = dg.Definitions(
        assets=[table, consumer], resources={"io_manager": io, "mem": dg.InMemoryIOManager()}
    )
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("stores", ["north", "south"])
        for key in ("north", "south", "north"):
            result = job.execute_in_process(
                partition_key=key, instance=instance, raise_on_error=False
            )
            assert result.success, error_of(result)
            assert seen["table"]["store"].to_list() == [key, key]
    rows = target.query(f"SELECT store, count(*) FROM {target.table()} GROUP BY 1 ORDER BY 1")
    assert rows == [("north", 2), ("south", 2)]


def test_a_lazyframe_consumer_reads_in_batches_with_exact_types(target: Target) -> None:
    """The read is a LazyFrame fed batch by batch from its own connection, typed exactly."""
    n = 5_000
    frame = pl.DataFrame(
        {
            "id": pl.int_range(0, n, eager=True),
            "small": pl.int_range(0, n, eager=True).cast(pl.Int16),
            "real": pl.int_range(0, n, eager=True).cast(pl.Float32),
            "amount": pl.int_range(0, n, eager=True).cast(pl.Decimal(12, 2)),
            "day": pl.repeat(date(2024, 1, 2), n, eager=True),
            "at": pl.repeat(datetime(2024, 1, 2, 3), n, eager=True).dt.replace_time_zone("UTC"),
            "took": pl.repeat(timedelta(seconds=90), n, eager=True),
            "tags": pl.repeat(["a"], n, eager=True),
            "nothing": pl.repeat(None, n, eager=True, dtype=pl.String),
        }
    )
    io = target.manager(batch_rows=1_000)
    seen: dict[str, Any] = {}

    def consume(table: pl.LazyFrame) -> None:
        seen["lazy"] = table
        seen["batches"] = [b.height for b in table.collect_batches(chunk_size=1_000)]
        seen["some"] = table.filter(pl.col("id") >= n - 3).select("id", "small").collect()

    result = run(io, lambda: frame, metadata=meta(target), consume=consume)
    assert result.success, error_of(result)
    assert isinstance(seen["lazy"], pl.LazyFrame)
    assert "PYTHON SCAN" in seen["lazy"].explain()  # not a DataFrame made lazy after the fact
    assert sum(seen["batches"]) == n and len(seen["batches"]) > 1
    assert seen["lazy"].collect_schema() == frame.schema
    back = seen["lazy"].collect().sort("id")
    assert back.schema == frame.schema and back.equals(frame)
    assert seen["some"]["id"].to_list() == [n - 3, n - 2, n - 1]
    assert seen["some"].schema == pl.Schema({"id": pl.Int64, "small": pl.Int16})


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


def test_the_reconciliation_check_names_rows_changed_or_deleted_with_the_native_client(
    target: Target, tmp_path: Path
) -> None:
    frame = pl.DataFrame({"id": [1, 2, 3], "price": [1.5, 2.5, 3.5], "name": ["a", "b", None]})
    table = "reconciled"
    metadata = meta(target, table=table, reconcile_keys=["id"])
    run = reconciled(tmp_path, target.manager(), frame, metadata=metadata)
    verdict = run.write()
    assert verdict.passed, verdict.description
    assert table in verdict.metadata["honey_duck/target"]
    assert verdict.metadata["honey_duck/target_rows"] == 3
    target.query(f"UPDATE {target.table(table)} SET price = 2.75 WHERE id = 2")
    verdict = run.check()
    assert not verdict.passed
    assert "values of `price` differ" in verdict.description, verdict.description
    assert "changed id [2]" in verdict.description
    assert verdict.metadata["honey_duck/differing_columns"] == ["price"]
    target.query(f"DELETE FROM {target.table(table)} WHERE id = 3")
    verdict = run.check()
    assert "2 rows where the asset has 3" in verdict.description, verdict.description
    assert "missing id [3]" in verdict.description


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=roundtrip.frames())
def test_any_frame_of_the_claimed_types_round_trips(target: Target, frame: pl.DataFrame) -> None:
    """What reads back, through our reader and the native client, equals what was written."""
    table = f"p_{time.time_ns()}"
    seen: dict[str, pl.DataFrame] = {}
    result = run(
        target.manager(),
        lambda: frame,
        metadata=meta(target, table=table),
        consume=lambda table: seen.update(t=table),
    )
    quoted = f'"{target.schema}"."{table}"'
    nul = roundtrip.holds_nul(frame)
    if nul is not None and target.name == "postgres":
        message = error_of(result)
        assert f"column `{nul}`" in message and "NUL" in message, message
        assert target.query(f"SELECT to_regclass('{quoted}')") == [(None,)]
        return
    declared = target.manager().target().refusals(frame.schema)
    refused = roundtrip.refused_columns(declared, frame)  # nanoseconds it would cut
    if refused:
        message = error_of(result)
        assert any(f"column `{c}`" in message for c in refused), message
        assert not target.query(
            "SELECT 1 FROM information_schema.tables"
            f" WHERE table_schema = '{target.schema}' AND table_name = '{table}'"
        )
        return
    assert result.success, error_of(result)
    back = seen["t"]
    roundtrip.assert_columns_equal(frame, {c: back[c].to_list() for c in back.columns})
    roundtrip.assert_reconciles(target.manager().target().landing, frame, back)
    names = ", ".join('"' + c.replace('"', '""') + '"' for c in frame.columns)
    if target.name == "postgres":  # binary: the text form of a real keeps only 7 digits
        with psycopg.connect(target.url) as connection:
            rows = connection.execute(f"SELECT {names} FROM {quoted}", binary=True).fetchall()
    else:
        rows = target.query(f"SELECT {names} FROM {quoted}")
    native = {c: [row[i] for row in rows] for i, c in enumerate(frame.columns)}
    roundtrip.assert_columns_equal(frame, native)


def test_postgres_reconciliation_checks_pass_after_the_main_command(local_run) -> None:
    """Every postgres asset's check read it back and found the transform's rows, value for value."""
    assert_reconciled(local_run, "postgres")
