"""The probe of the SQL family (PostgreSQL, its DuckDB stand-in, Redshift on PostgreSQL):
tables in a fresh schema per test, read back with the target's own DB-API client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import psycopg
import pytest

from honey_duck.connections import PostgresConfig
from honey_duck.targets.postgres import PostgresIOManager
from honey_duck_tests.contract.probe import Probe, Server, frame_of, private
from honey_duck_tests.contract.runs import error_of, run

Build = Callable[..., Any]  # (connection: PostgresConfig, **config) -> the IO manager


def fresh_schema(request: pytest.FixtureRequest) -> str:
    """A fresh schema per test, so tests never see each other's tables."""
    schema = f"t_{request.node.name[:20].strip('[]_').lower()}_{time.time_ns() % 10**8}"
    return "".join(c if c.isalnum() else "_" for c in schema)


def quoted(*names: str) -> str:
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


def lazy_frame(n: int, lists: bool = True) -> pl.DataFrame:
    """Narrow and wide types the batched reader must type exactly (`lists=False`: none, for
    a target where a list is JSON, which takes its type from the values and reads eagerly)."""
    frame = pl.DataFrame(
        {
            "id": pl.int_range(0, n, eager=True),
            "small": pl.int_range(0, n, eager=True).cast(pl.Int16),
            "real": pl.int_range(0, n, eager=True).cast(pl.Float32),
            "amount": pl.int_range(0, n, eager=True).cast(pl.Decimal(12, 2)),
            "day": pl.repeat(date(2024, 1, 2), n, eager=True),
            "at": pl.repeat(datetime(2024, 1, 2, 3), n, eager=True).dt.replace_time_zone("UTC"),
            "took": pl.repeat(timedelta(seconds=90), n, eager=True),
            "nothing": pl.repeat(None, n, eager=True, dtype=pl.String),
        }
    )
    return frame.with_columns(tags=pl.repeat(["a"], n, eager=True)) if lists else frame


class SqlProbe(Probe):
    """`query(sql)` runs one statement with the native client and returns its rows;
    `select(sql)` the same for reads (PostgreSQL reads in binary: its text form of a real
    keeps only 7 digits, not the stored value)."""

    decimal_words = "(12,2) in the target"

    def __init__(
        self,
        word: str,
        title: str,
        manager: Callable[..., Any],
        query: Callable[[str], list[tuple]],
        schema: str,
        select: Callable[[str], list[tuple]] | None = None,
    ) -> None:
        self.word, self.title, self.schema = word, title, schema
        self._manager, self.query, self.select = manager, query, select or query

    def manager(self, **config: Any) -> Any:
        return self._manager(**config)

    def location(self, table: str) -> dict[str, Any]:
        return (
            {"schema": self.schema, "table": table} if table != "table" else {"schema": self.schema}
        )

    def table(self, table: str = "table") -> str:
        return quoted(self.schema, table)

    def table_name(self, table: str) -> str:
        return f"{self.schema}.{table}"

    def native(self, table: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        return self.read(self.table(table), schema)

    def read(self, where: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        names = ", ".join(quoted(c) for c in schema)
        found = self.select(f"SELECT {names} FROM {where}")
        return frame_of({c: [r[i] for r in found] for i, c in enumerate(schema)}, schema)

    def exists(self, table: str) -> bool:
        return bool(
            self.query(
                "SELECT 1 FROM information_schema.tables"
                f" WHERE table_schema = '{self.schema}' AND table_name = '{table}'"
            )
        )

    def update(self, table: str, id: int, column: str, value: Any) -> None:
        self.query(f"UPDATE {self.table(table)} SET {quoted(column)} = {value!r} WHERE id = {id}")

    def delete(self, table: str, id: int) -> None:
        self.query(f"DELETE FROM {self.table(table)} WHERE id = {id}")

    def leftovers(self) -> list[str]:
        found = self.query(
            "SELECT table_name FROM information_schema.tables"
            f" WHERE table_schema = '{self.schema}' AND table_name LIKE '\\_hd\\_%' ESCAPE '\\'"
        )
        return [r[0] for r in found]

    def odd_location(self) -> dict[str, Any]:
        return {"schema": f'{self.schema} "Odd" Schema', "table": 'Sales "Q1" Table'}

    def read_odd(self, meta: Mapping[str, Any], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        return self.read(quoted(meta["schema"], meta["table"]), schema)


def psql(url: str) -> Callable[[str], list[tuple]]:
    def query(sql: str, binary: bool = False) -> list[tuple]:
        with psycopg.connect(url, autocommit=True) as connection:
            cursor = connection.execute(sql, binary=binary)
            return cursor.fetchall() if cursor.description else []

    return query


KILLER = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE application_name = 'honey_duck' AND query ILIKE 'COPY%'"
)


class PostgresProbe(SqlProbe):
    """PostgreSQL on the session's server; the fault tests' own private clusters. `build`
    makes the manager from a connection (another sink of the family that runs on PostgreSQL
    here, Redshift's `engine="postgres"`, gives its own)."""

    def __init__(
        self, url: str, schema: str, word: str = "postgres", build: Build | None = None
    ) -> None:
        query = psql(url)
        self.build: Build = build or (
            lambda connection, **c: PostgresIOManager(
                connection=connection, default_schema=schema, **c
            )
        )
        super().__init__(
            word,
            "PostgreSQL",
            lambda **c: self.build(PostgresConfig.from_url(url), **c),
            query,
            schema,
            select=lambda sql: query(sql, binary=True),  # type: ignore[call-arg]
        )
        self.url = url

    def unreachable(self) -> tuple[Any, str, str]:
        connection = PostgresConfig(port=1, password="s3cret-Pa55", connect_timeout=2)
        # retries=0: the error is the point, not the backoff (a restart test waits for that)
        return self.build(connection, retries=0), "127.0.0.1:1", "s3cret-Pa55"

    def killed_write(self, table: str) -> None:
        """The server drops our connection during COPY (pg_terminate_backend)."""
        io = self.manager(retries=0)
        big = pl.LazyFrame({"id": pl.int_range(0, 3_000_000, eager=True)}).with_columns(
            v=pl.lit("new")
        )
        stop = threading.Event()

        def kill_the_copy() -> None:
            with psycopg.connect(self.url, autocommit=True) as connection:
                while not stop.is_set():
                    if connection.execute(KILLER).fetchall():
                        return
                    time.sleep(0.005)

        killer = threading.Thread(target=kill_the_copy)
        killer.start()
        try:
            result = run(io, lambda: big, metadata=self.meta(table))
        finally:
            stop.set()
            killer.join()
        message = error_of(result).lower()
        assert "terminat" in message or "connection" in message, message
        assert self.leftovers() == []  # the transaction took its staging table with it

    def private_server(self) -> AbstractContextManager[Server]:
        from honey_duck_dev.services.postgres import Postgres

        return private(
            Postgres.launch,
            lambda server: self.build(PostgresConfig(port=server.port, connect_timeout=2)),
            lambda server, table: psql(server.url)(f"SELECT count(*) FROM {self.table(table)}")[0][
                0
            ],
            "honey_duck-restart-",
        )
