"""The SQL sinks' local stand-in: the same tables and transactions in an embedded DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from pydantic import Field

from honey_duck.io import core
from honey_duck.io.sink import Target
from honey_duck.io.sql.dialect import Cursor, Dialect, Table, json_text, parse_type
from honey_duck.io.sql.session import Streamer, arrow_batches, committing
from honey_duck.io.sql.target import SqlIOManager, SqlTarget

_SCALARS: dict[type[pl.DataType], str] = {
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


class DuckDBDialect(Dialect):
    """DuckDB, standing in for a server: its type names, `$n` placeholders, ON CONFLICT."""

    name = "DuckDB"
    max_identifier = 1024

    def column_type(self, dtype: pl.DataType) -> str:
        if isinstance(dtype, pl.Struct):
            return "JSON"  # as PostgreSQL keeps them (jsonb), so both read back alike
        if isinstance(dtype, pl.List | pl.Array):
            return (
                "JSON"
                if isinstance(dtype.inner, pl.Struct)
                else f"{self.column_type(dtype.inner)}[]"
            )
        if isinstance(dtype, pl.Decimal):
            return f"DECIMAL({dtype.precision or 38},{dtype.scale})"
        if isinstance(dtype, pl.Datetime):
            return "TIMESTAMP WITH TIME ZONE" if dtype.time_zone else "TIMESTAMP"
        sql_type = _SCALARS.get(dtype.base_type())
        if sql_type is None:
            raise ValueError(f"DuckDB has no type for polars {dtype}")
        return sql_type

    def wire(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        casts = []
        for name, dtype in frame.collect_schema().items():
            if self.column_type(dtype) == "JSON":
                casts.append(json_text(name, dtype).alias(name))
            elif isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
                casts.append(core.column(name).cast(pl.String))
        return frame.with_columns(casts) if casts else frame

    def polars_type(self, sql_type: str) -> pl.DataType:
        canonical = {pl.Categorical, pl.Enum, pl.Null}
        return parse_type(
            sql_type, {t.lower(): d() for d, t in _SCALARS.items() if d not in canonical}
        )

    def read_column(self, name: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        col = self.quote(name)
        if sql_type == "INTERVAL":
            return f"CAST(epoch({col}) * 1000000 AS BIGINT)", pl.Duration("us")
        if sql_type == "JSON":
            return f"CAST({col} AS VARCHAR)", pl.Struct({})
        if sql_type == "TIMESTAMP WITH TIME ZONE":  # DuckDB says Etc/UTC; PostgreSQL says UTC
            return col, pl.Datetime("us", "UTC")
        return col, None

    def stored_columns(self, cursor: Cursor, table: Table) -> dict[str, str] | None:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            [table.schema, table.name],
        )
        return dict(cursor.fetchall()) or None

    def lift_definitions(self, cursor: Cursor, table: Table) -> tuple[bool, list[str]]:
        cursor.execute(
            "SELECT constraint_column_names FROM duckdb_constraints()"
            " WHERE schema_name = $1 AND table_name = $2 AND constraint_type = 'PRIMARY KEY'",
            [table.schema, table.name],
        )
        keys = [list(row[0]) for row in cursor.fetchall()]
        statements = [self.add_primary_key(table, k) for k in keys]
        cursor.execute(
            "SELECT index_name, sql FROM duckdb_indexes()"
            " WHERE schema_name = $1 AND table_name = $2 AND sql IS NOT NULL ORDER BY index_oid",
            [table.schema, table.name],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:  # DuckDB refuses to rename a table that has indexes
            cursor.execute(f"DROP INDEX {self.quote(table.schema)}.{self.quote(name)}")
        return bool(keys), statements + [sql for _, sql in indexes]

    def has_unique_key(self, cursor: Cursor, table: Table, keys: Sequence[str]) -> bool:
        cursor.execute(
            "SELECT constraint_column_names FROM duckdb_constraints()"
            " WHERE schema_name = $1 AND table_name = $2"
            " AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
            [table.schema, table.name],
        )
        return any(set(row[0]) == set(keys) for row in cursor.fetchall())


class LocalSqlTarget(SqlTarget):
    """A SQL sink's tables in an embedded DuckDB file: same transactions, no server."""

    word = "duckdb"

    def __init__(self, database: str, default_schema: str, batch_rows: int) -> None:
        super().__init__(default_schema)
        self.database, self.batch_rows = database, batch_rows

    def dialect(self) -> Dialect:
        return DuckDBDialect()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        import duckdb

        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        connection = duckdb.connect(self.database)
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
        return "could not set lock on file" in str(exc).lower() or super().transient(exc)

    def uri(self, location: Table, partitions: Any = None) -> str:
        return f"duckdb://{Path(self.database).resolve()}?table={location}"


class LocalSqlIOManager(SqlIOManager):
    """A SQL sink's tables in an embedded DuckDB file: same transactions, no server."""

    database: str = Field(description="Path of the DuckDB file.")

    def stand_in(self) -> tuple[str, str] | None:
        return "duckdb", f"an embedded DuckDB file, {self.database}, stands in for the server"

    @classmethod
    def target_class(cls) -> type[Target]:
        return LocalSqlTarget

    def target(self) -> LocalSqlTarget:
        return LocalSqlTarget(self.database, self.default_schema, self.batch_rows)
