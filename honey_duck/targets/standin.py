"""`local`'s stand-in for a server-backed sink: its tables in an embedded DuckDB file.

`local` runs with no server anywhere, so PostgreSQL, Redshift, MongoDB, Kafka (and every
server-backed sink to come) land their tables in a DuckDB file instead, through the SQL family's
transactional writes. A stand-in is the sink it stands in for in everything a user can see
fail: it reports that sink's word, keeps its capabilities (a compacted topic's stand-in refuses
an append without keys, as the topic would) and refuses what it refuses, plus what DuckDB itself
cannot keep; only where the rows are differs (its `dagster/storage_kind` is `duckdb`).
"""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import polars as pl
import pyarrow as pa
from pydantic import Field

from honey_duck import seam
from honey_duck.seam import Capabilities, Landing, SinkIOManager, Target
from honey_duck.targets.sql.dialect import Cursor, Definitions, Dialect, ScalarTypes, Table
from honey_duck.targets.sql.refusals import MICROSECONDS, Limits, Range
from honey_duck.targets.sql.session import Streamer, arrow_batches, committing
from honey_duck.targets.sql.target import SqlIOManager, SqlTarget, table_for

# What DuckDB holds: dates and timestamps are 32 and 64 bits wide, only the lowest timestamp
# is refused by DuckDB itself (the highest ones read back as `infinity`, the same bits).
DUCKDB = Limits(
    dates=None,
    timestamps=Range(-MICROSECONDS, MICROSECONDS, "from 290308 BC to 294247 AD"),
    keeps_nul=True,
)


class DuckDBDialect(Dialect):
    """DuckDB, standing in for a server: its type names, `$n` placeholders, ON CONFLICT."""

    name = "DuckDB"
    max_identifier = 1024
    limits = DUCKDB
    json_type = "JSON"  # as PostgreSQL keeps them (jsonb), so both read back alike
    scalars: ClassVar[ScalarTypes] = {
        pl.Int8: "TINYINT",
        pl.Int16: "SMALLINT",
        pl.Int32: "INTEGER",
        pl.Int64: "BIGINT",
        pl.UInt8: "UTINYINT",
        pl.UInt16: "USMALLINT",
        pl.UInt32: "UINTEGER",
        pl.UInt64: "UBIGINT",
        pl.Float32: "FLOAT",
        pl.Float64: "DOUBLE",
        pl.String: "VARCHAR",
        pl.Categorical: "VARCHAR",
        pl.Enum: "VARCHAR",
        pl.Null: "VARCHAR",
        pl.Boolean: "BOOLEAN",
        pl.Date: "DATE",
        pl.Time: "TIME",
        pl.Duration: "INTERVAL",
        pl.Binary: "BLOB",
    }

    def decimal_type(self, precision: int | None, scale: int) -> str:
        return f"DECIMAL({precision or 38},{scale})"

    def datetime_type(self, zoned: bool) -> str:
        return "TIMESTAMP WITH TIME ZONE" if zoned else "TIMESTAMP"

    def scalar_wire(self, name: str, dtype: pl.DataType) -> pl.Expr | None:
        # DuckDB has unsigned and 8-bit integers; only categories and nulls become text
        if isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
            return seam.column(name).cast(pl.String)
        return None

    def read_column(self, name: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        return self._read(self.quote(name), sql_type)

    def _read(self, expr: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        if sql_type.endswith("[]"):  # each item as an item of that type reads
            item, dtype = self._read("item", sql_type[:-2])
            if dtype is None:
                return expr, None
            if item == "item":
                return expr, pl.List(dtype)
            return f"list_transform({expr}, lambda item: {item})", pl.List(dtype)
        if sql_type == "INTERVAL":
            return _microseconds(expr), pl.Duration("us")
        if sql_type == "JSON":
            return f"CAST({expr} AS VARCHAR)", pl.Struct({})
        if sql_type == "TIMESTAMP WITH TIME ZONE":  # DuckDB says Etc/UTC; PostgreSQL says UTC
            return expr, pl.Datetime("us", "UTC")
        return expr, None

    def stored_columns(self, cursor: Cursor, table: Table) -> dict[str, str] | None:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            [table.schema, table.name],
        )
        return dict(cursor.fetchall()) or None

    def keys_and_indexes(self, cursor: Cursor, table: Table) -> Definitions:
        cursor.execute(
            "SELECT constraint_column_names FROM duckdb_constraints()"
            " WHERE schema_name = $1 AND table_name = $2 AND constraint_type = 'PRIMARY KEY'",
            [table.schema, table.name],
        )
        keys = [list(row[0]) for row in cursor.fetchall()]
        statements = [self.add_primary_key(table, k) for k in keys]
        statements += [sql for _, sql in self._indexes(cursor, table)]
        return Definitions(statements, bool(keys))

    def drop_indexes_blocking_rename(self, cursor: Cursor, table: Table) -> None:
        # DuckDB refuses to rename a table that has indexes
        for name, _ in self._indexes(cursor, table):
            cursor.execute(f"DROP INDEX {self.quote(table.schema)}.{self.quote(name)}")

    def _indexes(self, cursor: Cursor, table: Table) -> list[tuple[str, str]]:
        """The table's indexes made by a statement (not by a key): name and statement."""
        cursor.execute(
            "SELECT index_name, sql FROM duckdb_indexes()"
            " WHERE schema_name = $1 AND table_name = $2 AND sql IS NOT NULL ORDER BY index_oid",
            [table.schema, table.name],
        )
        return list(cursor.fetchall())

    def has_unique_key(self, cursor: Cursor, table: Table, keys: Sequence[str]) -> bool:
        cursor.execute(
            "SELECT constraint_column_names FROM duckdb_constraints()"
            " WHERE schema_name = $1 AND table_name = $2"
            " AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
            [table.schema, table.name],
        )
        return any(set(row[0]) == set(keys) for row in cursor.fetchall())


def _microseconds(interval: str) -> str:
    """An INTERVAL as whole microseconds, exactly: polars cannot read DuckDB's intervals, and
    `epoch()` is a double, which cuts microseconds from durations of more than 285 years."""
    parts = {"month": 30 * 86_400_000_000, "day": 86_400_000_000, "hour": 3_600_000_000}
    parts |= {"minute": 60_000_000, "microseconds": 1}  # `microseconds`: the seconds too
    return "(" + " + ".join(f"datepart('{p}', {interval}) * {n}" for p, n in parts.items()) + ")"


class StandInTarget(SqlTarget):
    """A server-backed sink's tables in an embedded DuckDB file, declaring what that sink does."""

    storage_kind = "duckdb"
    case_folding = "DuckDB (where `local` keeps this sink's rows)"

    def __init__(
        self,
        database: str,
        default_schema: str,
        batch_rows: int,
        stands_in_for: Target,
        capabilities: Capabilities,
    ) -> None:
        super().__init__(default_schema)
        self.database, self.batch_rows = database, batch_rows
        self.real = stands_in_for
        self.word = stands_in_for.word
        self.capabilities = capabilities  # type: ignore[misc]

    def dialect(self) -> Dialect:
        return DuckDBDialect()

    # -- what the sink it stands in for refuses, and what DuckDB cannot keep ------------------

    def unsupported(self, dtype: pl.DataType) -> str | None:
        return self.real.unsupported(dtype) or super().unsupported(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        real = self.real.refusals(schema)
        if isinstance(self.real, SqlTarget):
            # The family's limits hold DuckDB's (its dates and timestamps reach further, it
            # keeps NUL; both keep microseconds and no NaN in JSON): the sink's refusals are
            # DuckDB's too, in the sink's own words.
            return real
        return [*real, *super().refusals(schema)]

    def schema_problems(self, schema: pl.Schema) -> list[str]:
        # the sink's own sentences when it refuses the names, so that `local` says what `dev`
        # says; DuckDB's (it folds case) only when the sink would take them
        return self.real.schema_problems(schema) or super().schema_problems(schema)

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> Table:
        table = table_for(key, metadata, self.default_schema)
        if isinstance(self.real, SqlTarget):
            self.real.checked(table)  # the names this file uses, as the sink's server takes them
        else:
            self.real.locate(key, metadata)  # a topic or collection name the sink would refuse
        return self.checked(table)

    def landing(self, dtype: pl.DataType) -> Landing:
        return super().landing(dtype)  # what DuckDB reads back is what the check compares

    # -- DuckDB ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        import duckdb

        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        connection = connect_when_free(duckdb, self.database)
        connection.begin()
        with committing(connection, connection) as cursor:
            yield cursor

    def load(self, cursor: Cursor, table: Table, frame: pl.LazyFrame, temporary: bool) -> None:
        d = self.dialect()
        name = d.quote(table.name) if temporary else d.table(table)
        cursor.register("_hd_batches", arrow_batches(frame, self.batch_rows))  # type: ignore[attr-defined]
        try:
            cursor.execute(f"INSERT INTO {name} SELECT * FROM _hd_batches")
        finally:
            cursor.unregister("_hd_batches")  # type: ignore[attr-defined]

    def fetch(
        self, cursor: Cursor, sql: str, params: list[Any], schema: Mapping[str, pl.DataType]
    ) -> pl.DataFrame:
        return cursor.execute(sql, params).pl()  # type: ignore[attr-defined]

    def streamer(self) -> Streamer:
        return self.stream

    def stream(self, sql: str, params: list[Any]) -> Iterator[pa.RecordBatch]:
        """The rows of a SELECT as DuckDB's Arrow batches, on a connection of their own."""
        with self.transaction() as cursor:
            result = cursor.execute(sql, params)
            yield from result.to_arrow_reader(self.batch_rows)  # type: ignore[attr-defined]

    def transient(self, exc: BaseException) -> bool:
        # Another process holds the file (DuckDB allows one writer process at a time): it lets
        # go when its transaction ends, so concurrent runs and backfills take turns.
        return _locked_by_another_process(exc) or super().transient(exc)

    def uri(self, location: Table, partitions: Any = None) -> str:
        return f"duckdb://{Path(self.database).resolve()}?table={location}"


# DuckDB lets one process at a time open a file for writing; another process that holds it
# lets go when its run's transaction ends. A writer polls for it this often, this long, before
# the failure goes to the manager's retries (whose backoff, up to 8 s a wait, would let a busy
# neighbour take the file again and again).
LOCK_POLL_SECONDS = 0.05
LOCK_WAIT_SECONDS = 120.0


def _locked_by_another_process(exc: BaseException) -> bool:
    return "could not set lock on file" in str(exc).lower()


def connect_when_free(duckdb: Any, database: str) -> Any:
    """A connection to `database`, waiting (at most LOCK_WAIT_SECONDS) while another process
    holds the file."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return duckdb.connect(database)
        except duckdb.IOException as exc:
            if not _locked_by_another_process(exc) or time.monotonic() > deadline:
                raise
        time.sleep(LOCK_POLL_SECONDS * (0.5 + random.random()))


class StandInIOManager(SqlIOManager):
    """A server-backed sink's tables in an embedded DuckDB file, for `local`: the same
    transactions, and the word, capabilities and refusals of the manager it stands in for.

    Example, in a sink module::

        def local(env: Environment) -> StandInIOManager:
            return StandInIOManager.of(KafkaIOManager(), database=env.path("kafka_local.duckdb"))
    """

    database: str = Field(description="Path of the DuckDB file.")
    stands_in_for: str = Field(
        description="`module:Class` of the IO manager whose sink this file stands in for."
    )
    stands_in_config: dict[str, Any] = Field(
        default_factory=dict,
        description="That manager's plain configuration (what decides its capabilities).",
    )

    @classmethod
    def of(cls, manager: SinkIOManager, database: str, **config: Any) -> StandInIOManager:
        """A stand-in for `manager` (built with its plain configuration only: it never connects)."""
        kind = type(manager)
        plain = {
            name: getattr(manager, name)
            for name in manager.model_fields_set
            if isinstance(getattr(manager, name), str | int | float | bool)
        }
        return cls(
            database=database,
            stands_in_for=f"{kind.__module__}:{kind.__qualname__}",
            stands_in_config=plain,
            **config,
        )

    def real(self) -> SinkIOManager:
        """The manager this file stands in for, from its plain configuration."""
        module, _, name = self.stands_in_for.partition(":")
        kind = getattr(importlib.import_module(module), name)
        return kind(**self.stands_in_config)

    def stand_in(self) -> tuple[str, str] | None:
        return "duckdb", f"an embedded DuckDB file, {self.database}, stands in for the server"

    def word(self) -> str:
        return self.real().word()

    def target_capabilities(self) -> Capabilities:
        return self.real().target_capabilities()

    @classmethod
    def target_class(cls) -> type[Target]:
        return StandInTarget

    def target(self) -> StandInTarget:
        real = self.real()
        return StandInTarget(
            self.database,
            self.default_schema,
            self.batch_rows,
            stands_in_for=real.target(),
            capabilities=real.target_capabilities(),
        )
