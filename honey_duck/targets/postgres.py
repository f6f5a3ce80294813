"""The PostgreSQL sink: Arrow batches over binary COPY (ADBC), staged and swapped atomically."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import polars as pl
import pyarrow as pa
from pydantic import Field

from honey_duck.connections import PostgresConfig
from honey_duck.seam import Target
from honey_duck.seam.faults import connect_failed
from honey_duck.targets.sql.dialect import (
    Cursor,
    Definitions,
    Dialect,
    ScalarTypes,
    Table,
    json_text,
)
from honey_duck.targets.sql.refusals import POSTGRES
from honey_duck.targets.sql.session import Streamer, arrow_batches, committing
from honey_duck.targets.sql.target import SqlIOManager, SqlTarget

# SQLSTATE classes and codes worth a retry: connection failures, serialization failures,
# deadlocks, lock timeouts, too many connections, and a server shutting down, crashed or in
# recovery (57P01..57P03).
TRANSIENT_STATES = ("08", "40001", "40P01", "53300", "55P03", "57P01", "57P02", "57P03")


class PostgresDialect(Dialect):
    """PostgreSQL: `format_type` names, `$n` placeholders, ON CONFLICT upserts."""

    name = "PostgreSQL"
    max_identifier = 63  # NAMEDATALEN - 1; longer names are silently truncated by the server
    max_columns = 1600
    limits = POSTGRES
    scalars: ClassVar[ScalarTypes] = {
        pl.Int16: "smallint",
        pl.Int8: "smallint",
        pl.UInt8: "smallint",
        pl.Int32: "integer",
        pl.UInt16: "integer",
        pl.Int64: "bigint",
        pl.UInt32: "bigint",
        pl.UInt64: "numeric(20,0)",
        pl.Float32: "real",
        pl.Float64: "double precision",
        pl.String: "text",
        pl.Categorical: "text",
        pl.Enum: "text",
        pl.Null: "text",
        pl.Boolean: "boolean",
        pl.Date: "date",
        pl.Time: "time without time zone",
        pl.Duration: "interval",
        pl.Binary: "bytea",
    }

    def json_wire(self, name: str, dtype: pl.DataType) -> pl.Expr:
        # jsonb's binary COPY form is a version byte (1) followed by the JSON text.
        return "\x01" + json_text(name, dtype)

    def read_column(self, name: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        col = self.quote(name)
        if sql_type == "interval":
            return f"(EXTRACT(EPOCH FROM {col}) * 1000000)::bigint", pl.Duration("us")
        if sql_type == "interval[]":  # ADBC hands intervals over in a type polars cannot read
            items = (
                f"SELECT (EXTRACT(EPOCH FROM item) * 1000000)::bigint"
                f" FROM unnest({col}) WITH ORDINALITY AS items(item, n) ORDER BY n"
            )
            micros = f"CASE WHEN {col} IS NULL THEN NULL ELSE ARRAY({items}) END"
            return micros, pl.List(pl.Duration("us"))
        if sql_type in ("jsonb", "json"):
            return f"{col}::text", pl.Struct({})  # decoded from JSON text on the way out
        if sql_type.startswith("numeric"):  # ADBC hands NUMERIC over as text, cast back here
            array = sql_type.endswith("[]")
            item = sql_type.removesuffix("[]")
            dtype = self.polars_type(item) if "(" in item else pl.Float64()
            return f"{col}::text{'[]' * array}", pl.List(dtype) if array else dtype
        return col, None

    def stored_columns(self, cursor: Cursor, table: Table) -> dict[str, str] | None:
        cursor.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
            " FROM pg_attribute a JOIN pg_class c ON a.attrelid = c.oid"
            " JOIN pg_namespace n ON c.relnamespace = n.oid"
            f" WHERE n.nspname = {self.param(1)} AND c.relname = {self.param(2)}"
            " AND c.relkind IN ('r', 'p')"
            " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [table.schema, table.name],
        )
        rows = cursor.fetchall()
        return {name: sql_type for name, sql_type in rows} or None

    def keys_and_indexes(self, cursor: Cursor, table: Table) -> Definitions:
        # Constraints first (they bring their own indexes), then the indexes no constraint
        # owns; both as the server itself prints them, under their original names.
        cursor.execute(
            "SELECT conname::text, contype::text, pg_get_constraintdef(oid) FROM pg_constraint"
            f" WHERE conrelid = to_regclass({self.param(1)}) AND contype IN ('p', 'u', 'x', 'c')"
            " ORDER BY contype = 'p' DESC, conname",
            [self.table(table)],
        )
        constraints = cursor.fetchall()
        statements = [
            f"ALTER TABLE {self.table(table)} ADD CONSTRAINT {self.quote(name)} {definition}"
            for name, _, definition in constraints
        ]
        cursor.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i"
            f" WHERE i.indrelid = to_regclass({self.param(1)}) AND NOT EXISTS"
            " (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            " ORDER BY i.indexrelid",
            [self.table(table)],
        )
        # pg_get_indexdef names the table as it is now, which is the swapped-in one's name.
        statements += [row[0] for row in cursor.fetchall()]
        return Definitions(statements, any(kind == "p" for _, kind, _ in constraints))

    def has_unique_key(self, cursor: Cursor, table: Table, keys: Any) -> bool:
        cursor.execute(
            "SELECT array_agg(a.attname::text) FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            f" WHERE i.indrelid = to_regclass({self.param(1)}) AND i.indisunique"
            " GROUP BY i.indexrelid",
            [self.table(table)],
        )
        return any(set(row[0]) == set(keys) for row in cursor.fetchall())


def adbc_transient(exc: BaseException) -> bool:
    """Whether an ADBC error on PostgreSQL may pass on retry: I/O, a timeout, a SQLSTATE above."""
    import adbc_driver_manager

    state = getattr(exc, "sqlstate", None) or ""
    status = getattr(exc, "status_code", None)
    network = status in (
        adbc_driver_manager.AdbcStatusCode.IO,
        adbc_driver_manager.AdbcStatusCode.TIMEOUT,
    )
    return network or state.startswith(TRANSIENT_STATES)


def ingest(
    cursor: Cursor, table: Table, frame: pl.LazyFrame, batch_rows: int, temporary: bool
) -> None:
    """Stream a frame's Arrow batches into an existing table with ADBC's binary COPY."""
    cursor.adbc_ingest(  # type: ignore[attr-defined]
        table.name,
        arrow_batches(frame, batch_rows),
        mode="append",
        db_schema_name=None if temporary else table.schema,
        temporary=temporary,
    )


class PostgresTarget(SqlTarget):
    """A PostgreSQL database: ADBC's binary COPY in, Arrow out."""

    word = "postgres"
    # PostgreSQL keeps quoted names apart by case, but `local`'s stand-in cannot: refused
    # everywhere, so that no environment takes what another refuses
    case_folding = "the postgres sink in any environment (`local`'s DuckDB folds case)"

    def __init__(self, connection: PostgresConfig, default_schema: str, batch_rows: int) -> None:
        super().__init__(default_schema)
        self.connection, self.batch_rows = connection, batch_rows

    def dialect(self) -> Dialect:
        return PostgresDialect()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        import adbc_driver_postgresql.dbapi as adbc

        try:
            connection = adbc.connect(self.connection.url())
        except Exception as exc:
            raise connect_failed(
                "PostgreSQL", self.connection.where(), exc, TRANSIENT_STATES
            ) from None
        with committing(connection, connection.cursor()) as cursor:
            yield cursor

    def load(self, cursor: Cursor, table: Table, frame: pl.LazyFrame, temporary: bool) -> None:
        ingest(cursor, table, frame, self.batch_rows, temporary)

    def fetch(
        self, cursor: Cursor, sql: str, params: list[Any], schema: Mapping[str, pl.DataType]
    ) -> pl.DataFrame:
        cursor.execute(sql, params)
        return pl.from_arrow(cursor.fetch_arrow_table())  # type: ignore[attr-defined,return-value]

    def streamer(self) -> Streamer:
        return self.stream

    def stream(self, sql: str, params: list[Any]) -> Iterator[pa.RecordBatch]:
        """The rows of a SELECT as ADBC's Arrow batches, on a connection of their own."""
        with self.transaction() as cursor:
            cursor.execute(sql, params)
            yield from cursor.fetch_record_batch()  # type: ignore[attr-defined]

    def transient(self, exc: BaseException) -> bool:
        return super().transient(exc) or adbc_transient(exc)

    def uri(self, location: Table, partitions: Any = None) -> str:
        c = self.connection
        return f"postgresql://{c.host}:{c.port}/{c.database}?table={location}"

    def secrets(self) -> Sequence[str | None]:
        return self.connection.secrets()


class PostgresIOManager(SqlIOManager):
    """Writes polars frames to PostgreSQL tables: binary COPY, staging, one transaction.

    Example::

        PostgresIOManager(
            connection=PostgresConfig(host="db", password=dg.EnvVar("PGPASSWORD")),
            default_schema="analytics",
        )
    """

    connection: PostgresConfig = Field(
        default_factory=PostgresConfig, description="Where the server is; password via EnvVar."
    )

    @classmethod
    def from_url(cls, url: str, **config: Any) -> PostgresIOManager:
        """Build from a `postgresql://user:password@host:port/database` URL."""
        return cls(connection=PostgresConfig.from_url(url), **config)

    @classmethod
    def target_class(cls) -> type[Target]:
        return PostgresTarget

    def target(self) -> PostgresTarget:
        return PostgresTarget(self.connection, self.default_schema, self.batch_rows)
