"""SQL sinks: one transactional write for every SQL target, with the target's dialect as a seam.

A write stages the rows in a table, then in the same transaction either swaps the staging table
in (`replace`), deletes exactly the partition slice and inserts (`partitions`), inserts
(`append`), or merges by key (`upsert`). Readers see the old table or the new, never a mix.
A dialect says how its target types, quotes, loads and merges; nothing else differs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Literal, Protocol

import dagster as dg
import polars as pl
import pyarrow as pa
from pydantic import Field

from honey_duck.io import core


class Cursor(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ...) -> Any: ...
    def fetchall(self) -> list[tuple]: ...


@dataclass(frozen=True)
class Table:
    """A fully qualified table name, quoted by its dialect."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Column:
    """A column's target type; equal by SQL type, shown with the data's type when it has one."""

    sql: str
    label: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Column) and self.sql == other.sql

    def __hash__(self) -> int:
        return hash(self.sql)

    def __str__(self) -> str:
        return self.label


class Dialect:
    """What differs between SQL targets: types, quoting, placeholders, loads and merges."""

    name: str = "sql"
    max_identifier: int = 63

    # -- naming ---------------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        if not identifier or len(identifier.encode()) > self.max_identifier or "\0" in identifier:
            raise ValueError(
                f"{identifier!r} cannot be a {self.name} identifier (1 to"
                f" {self.max_identifier} bytes, no NUL)"
            )
        return '"' + identifier.replace('"', '""') + '"'

    def table(self, table: Table) -> str:
        return f"{self.quote(table.schema)}.{self.quote(table.name)}"

    def param(self, index: int) -> str:
        return f"${index}"

    # -- types ----------------------------------------------------------------------------

    def column_type(self, dtype: pl.DataType) -> str:
        """The target type of a polars type; raise ValueError for types it cannot hold."""
        raise NotImplementedError

    def wire(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """Cast columns to what the bulk path sends for their target types."""
        return frame

    def polars_type(self, sql_type: str) -> pl.DataType:
        """The polars type a stored column reads back as (JSON columns: String)."""
        raise NotImplementedError

    def read_column(self, name: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        """A select expression for a stored column, and the polars type to cast it to."""
        return self.quote(name), None

    def stored_columns(self, cursor: Cursor, table: Table) -> dict[str, str] | None:
        """The stored column types in order, or None when the table does not exist."""
        raise NotImplementedError

    # -- statements -----------------------------------------------------------------------

    def create_schema(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}"

    def create_table(
        self, table: Table, columns: dict[str, str], keys: Sequence[str] = (), temporary=False
    ) -> str:
        body = [f"{self.quote(c)} {t}" for c, t in columns.items()]
        if keys:
            body.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in keys)})")
        kind = "TEMPORARY TABLE" if temporary else "TABLE"
        name = self.quote(table.name) if temporary else self.table(table)
        return f"CREATE {kind} {name} ({', '.join(body)})"

    def add_column(self, table: Table, column: str, sql_type: str) -> str:
        return f"ALTER TABLE {self.table(table)} ADD COLUMN {self.quote(column)} {sql_type}"

    def rename(self, table: Table, to: str) -> str:
        return f"ALTER TABLE {self.table(table)} RENAME TO {self.quote(to)}"

    def drop(self, table: Table, temporary: bool = False) -> str:
        name = self.quote(table.name) if temporary else self.table(table)
        return f"DROP TABLE IF EXISTS {name}"

    def insert_from(self, target: Table, source: str, columns: Sequence[str]) -> str:
        names = ", ".join(self.quote(c) for c in columns)
        return f"INSERT INTO {self.table(target)} ({names}) SELECT {names} FROM {source}"

    def upsert_from(
        self,
        target: Table,
        source: str,
        columns: Sequence[str],
        keys: Sequence[str],
        partial: bool = False,
    ) -> list[str]:
        """Merge `source` into `target` by `keys`, writing only `columns` (`partial`: the
        table has more columns, whose stored values matched rows keep)."""
        names = ", ".join(self.quote(c) for c in columns)
        updates = ", ".join(
            f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in columns if c not in keys
        )
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        conflict = ", ".join(self.quote(k) for k in keys)
        return [
            f"INSERT INTO {self.table(target)} ({names}) SELECT {names} FROM {source}"
            f" ON CONFLICT ({conflict}) {action}"
        ]

    def has_unique_key(self, cursor: Cursor, table: Table, keys: Sequence[str]) -> bool:
        """Whether `keys` are covered by a primary key or unique index (ON CONFLICT needs one)."""
        return True


def json_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """A struct or list column as JSON text, null where the value is null (not "null")."""
    col = pl.col(column)
    # polars JSON-encodes structs only, so a list travels wrapped in one: {"v":[...]}
    text = (
        col.struct.json_encode()
        if isinstance(dtype, pl.Struct)
        else pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    )
    return pl.when(col.is_null()).then(None).otherwise(text)


def widen(column: str, dtype: pl.DataType) -> pl.Expr | None:
    """The cast a server without unsigned, 8-bit, categorical or nanosecond types needs."""
    col = pl.col(column)
    if dtype in (pl.Int8, pl.UInt8):
        return col.cast(pl.Int16)
    if dtype == pl.UInt16:
        return col.cast(pl.Int32)
    if dtype == pl.UInt32:
        return col.cast(pl.Int64)
    if dtype == pl.UInt64:
        return col.cast(pl.Decimal(20, 0))
    if isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
        return col.cast(pl.String)
    if isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns":
        return col.cast(pl.Datetime("us", dtype.time_zone))
    if isinstance(dtype, pl.Duration) and dtype.time_unit == "ns":
        return col.cast(pl.Duration("us"))
    return None


def parse_type(sql_type: str, scalars: dict[str, pl.DataType]) -> pl.DataType:
    """The polars type of a stored SQL type: arrays, decimals and timestamps, then `scalars`."""
    lowered = sql_type.lower()
    if lowered.endswith("[]"):
        return pl.List(parse_type(sql_type[:-2], scalars))
    if lowered.startswith(("numeric(", "decimal(")):
        precision, scale = lowered[lowered.index("(") + 1 : -1].split(",")
        return pl.Decimal(int(precision), int(scale))
    if lowered.startswith("timestamp"):
        return pl.Datetime("us", "UTC" if "with time zone" in lowered else None)
    return scalars.get(lowered, pl.String())


class ConnectFailed(ConnectionError):
    """The server could not be reached, or turned us away; `transient` when a retry may help."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class CommitUncertain(RuntimeError):
    """COMMIT raised: if the connection dropped, the server may have applied the write or not."""


# What a server or driver says when a later attempt may connect: refused (restarting), timed
# out, starting up or shutting down (57P03, 57P01), or reset. Bad credentials, an unknown
# database or a pg_hba.conf rule will not change by waiting.
_TRANSIENT_CONNECT = (
    "refused",
    "timeout",
    "timed out",
    "starting up",
    "shutting down",
    "reset",
    "closed the connection",
    "too many clients",
    "could not translate host name",
    "no route to host",
    "network is unreachable",
)
_PERMANENT_CONNECT = ("authentication", "does not exist", "pg_hba.conf", "permission denied")


def connect_failed(target: str, where: str, exc: BaseException) -> ConnectFailed:
    """A ConnectFailed saying where we tried to connect, classed transient or not."""
    message = str(exc).lower()
    state = getattr(exc, "sqlstate", None) or ""
    # 08: connection exceptions; 57P: shutting down, starting up; 53300: too many connections
    transient = not any(p in message for p in _PERMANENT_CONNECT) and (
        state.startswith(("08", "57P", "53300")) or any(p in message for p in _TRANSIENT_CONNECT)
    )
    return ConnectFailed(f"cannot connect to {target} at {where}: {exc}", transient)


@contextmanager
def committing(connection: Any, cursor: Any) -> Iterator[Any]:
    """Yield `cursor`; commit if the block succeeds, roll back if not, and close both."""
    try:
        try:
            yield cursor
        except BaseException:
            with suppress(Exception):  # the connection may be gone; the server then rolled back
                connection.rollback()
            raise
        try:
            connection.commit()
        except Exception as exc:
            raise CommitUncertain(
                f"COMMIT failed ({exc}); if the connection dropped, the write may or may not"
                " have been applied"
            ) from exc
    finally:
        with suppress(Exception):
            cursor.close()
        with suppress(Exception):
            connection.close()


@dataclass(frozen=True)
class Predicate:
    """A SQL condition with its parameters, always bound, never spliced."""

    sql: str
    params: list[Any]


def _edge(dtype: pl.DataType, moment: datetime) -> date | datetime:
    if dtype == pl.Date:
        return moment.date()
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        return moment.replace(tzinfo=None)
    return moment


def slice_predicate(
    dialect: Dialect, partitions: core.PartitionSlice, schema: dict[str, pl.DataType]
) -> Predicate:
    """The exact rows of `partitions`: one range for contiguous windows, else an OR of parts."""
    params: list[Any] = []

    def bound(column: str, value: core.Bound) -> str:
        dtype = schema[column]
        col = dialect.quote(column)
        if isinstance(value, core.Window):
            params.extend([_edge(dtype, value.start), _edge(dtype, value.end)])
            n = len(params)
            return f"{col} >= {dialect.param(n - 1)} AND {col} < {dialect.param(n)}"
        params.append(core.typed_key(column, value, dtype))  # the key, typed like its column
        return f"{col} = {dialect.param(len(params))}"

    covering = partitions.covering_window()
    if covering is not None:
        return Predicate(bound(*covering), params)
    parts = [
        "(" + " AND ".join(bound(c, v) for c, v in part.bounds.items()) + ")"
        for part in partitions.parts
    ]
    return Predicate(" OR ".join(parts), params)


# ---------------------------------------------------------------------------------------------
# The write
# ---------------------------------------------------------------------------------------------

Loader = Callable[[Cursor, Table, pl.LazyFrame, bool], None]
"""Loads a frame's rows into an existing staging table (temporary when the flag is set)."""


@dataclass(frozen=True)
class Written:
    rows: int  # rows in the table (or in the partitions written) after the write
    schema: dict[str, Column]


def arrow_batches(frame: pl.LazyFrame, batch_rows: int) -> pa.RecordBatchReader:
    """A stream of Arrow record batches from a LazyFrame, never collected whole."""
    schema = pl.DataFrame(schema=frame.collect_schema()).to_arrow().schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in core.iter_batches(frame, batch_rows):
            yield from batch.to_arrow().to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def write(
    cursor: Cursor,
    dialect: Dialect,
    table: Table,
    frame: pl.LazyFrame,
    settings: core.WriteSettings,
    partitions: core.PartitionSlice | None,
    load: Loader,
) -> Written:
    """Run one write inside the caller's transaction; the caller commits or rolls back."""
    incoming = frame.collect_schema()
    wanted = {c: Column(dialect.column_type(t), f"{t} ({dialect.column_type(t)})") for c, t in
              incoming.items()}  # fmt: skip
    stored_types = dialect.stored_columns(cursor, table)
    stored = None if stored_types is None else {c: Column(t, t) for c, t in stored_types.items()}
    target = core.check_schema(stored, wanted, settings.schema_policy, f"`{table}`")
    types = {c: col.sql for c, col in target.items()}
    keys = settings.keys if settings.mode is core.WriteMode.UPSERT else ()
    frame = dialect.wire(core.conform(frame, pl.Schema(_polars_types(dialect, incoming, target))))
    columns = list(types)
    stage = Table(table.schema, f"_hd_stage_{uuid.uuid4().hex[:12]}")
    cursor.execute(dialect.create_schema(table.schema))

    if stored is None and (partitions is not None or settings.mode is not core.WriteMode.REPLACE):
        cursor.execute(dialect.create_table(table, types, keys))
    elif stored is not None:
        for column in [c for c in target if c not in stored]:  # schema_policy='evolve'
            cursor.execute(dialect.add_column(table, column, types[column]))
        if keys and not dialect.has_unique_key(cursor, table, keys):
            raise ValueError(
                f"upsert needs a primary key or unique index on ({', '.join(keys)}) in"
                f" `{table}`; create one, or let honey_duck create the table"
            )

    if partitions is None and settings.mode is core.WriteMode.REPLACE:
        # Load a whole new table, then swap it in: readers never see it half-loaded.
        cursor.execute(dialect.create_table(stage, types, settings.keys))
        load(cursor, stage, frame, False)
        if stored is not None:
            old = Table(table.schema, f"_hd_old_{uuid.uuid4().hex[:12]}")
            cursor.execute(dialect.rename(table, old.name))
            cursor.execute(dialect.rename(stage, table.name))
            cursor.execute(dialect.drop(old))
        else:
            cursor.execute(dialect.rename(stage, table.name))
        return Written(_count(cursor, dialect, table, None, incoming), target)

    if settings.mode is core.WriteMode.APPEND and partitions is None:
        load(cursor, table, frame, False)
        return Written(_count(cursor, dialect, table, None, incoming), target)

    cursor.execute(dialect.create_table(stage, types, temporary=True))
    load(cursor, stage, frame, True)
    source = dialect.quote(stage.name)
    if partitions is not None and settings.mode is core.WriteMode.REPLACE:
        where = slice_predicate(dialect, partitions, incoming)
        cursor.execute(f"DELETE FROM {dialect.table(table)} WHERE {where.sql}", where.params)
    if settings.mode is core.WriteMode.UPSERT:
        # Only the columns the data has: a column only the table has keeps its stored values.
        present = [c for c in columns if c in incoming]
        for statement in dialect.upsert_from(
            table, source, present, keys, len(present) < len(columns)
        ):
            cursor.execute(statement)
    else:
        cursor.execute(dialect.insert_from(table, source, columns))
    cursor.execute(dialect.drop(stage, temporary=True))
    return Written(_count(cursor, dialect, table, partitions, incoming), target)


def _polars_types(
    dialect: Dialect, incoming: pl.Schema, target: dict[str, Column]
) -> dict[str, pl.DataType]:
    """The frame's types for the target's columns; columns only the table has, typed nulls."""
    return {c: incoming.get(c) or dialect.polars_type(col.sql) for c, col in target.items()}


def _count(
    cursor: Cursor,
    dialect: Dialect,
    table: Table,
    partitions: core.PartitionSlice | None,
    schema: pl.Schema,
) -> int:
    sql = f"SELECT COUNT(*) FROM {dialect.table(table)}"
    params: list[Any] = []
    if partitions is not None:
        where = slice_predicate(dialect, partitions, dict(schema))
        sql, params = f"{sql} WHERE {where.sql}", where.params
    cursor.execute(sql, params)
    return int(cursor.fetchall()[0][0])


def read(
    cursor: Cursor,
    dialect: Dialect,
    table: Table,
    columns: Sequence[str] | None,
    partitions: core.PartitionSlice | None,
) -> tuple[str, list[Any], dict[str, pl.DataType | None]]:
    """The SELECT for a table (its columns, its partitions) and the types to cast the result to."""
    stored = dialect.stored_columns(cursor, table)
    if stored is None:
        raise ValueError(f"table `{table}` does not exist; materialize it first")
    names = list(columns) if columns else list(stored)
    missing = [c for c in names if c not in stored]
    if missing:
        raise ValueError(f"columns {missing} are not in `{table}` (it has {list(stored)})")
    selected = {c: dialect.read_column(c, stored[c]) for c in names}
    sql = f"SELECT {', '.join(f'{e} AS {dialect.quote(c)}' for c, (e, _) in selected.items())}"
    sql += f" FROM {dialect.table(table)}"
    params: list[Any] = []
    if partitions is not None:
        schema = {c: dialect.polars_type(stored[c]) for c in partitions.columns}
        where = slice_predicate(dialect, partitions, schema)
        sql, params = f"{sql} WHERE {where.sql}", where.params
    return sql, params, {c: t for c, (_, t) in selected.items()}


# ---------------------------------------------------------------------------------------------
# Retries and errors
# ---------------------------------------------------------------------------------------------


def with_retries(
    attempt: Callable[[], Any],
    transient: Callable[[BaseException], bool],
    retries: int,
    on_retry: Callable[[int, BaseException], None] = lambda n, e: None,
    base_seconds: float = 0.5,
) -> Any:
    """Run `attempt`, retrying transient failures with bounded exponential backoff."""
    for n in range(retries + 1):
        try:
            return attempt()
        except Exception as exc:
            if n == retries or not transient(exc):
                raise
            on_retry(n + 1, exc)
            time.sleep(min(base_seconds * 2**n, 8.0))
    raise AssertionError("unreachable")


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """`text` with every secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@contextmanager
def redacting(*secrets: str | None) -> Iterator[None]:
    """Re-raise errors with any secret removed from their message."""
    try:
        yield
    except Exception as exc:
        message = str(exc)
        cleaned = redact(message, secrets)
        if cleaned != message:
            raise type(exc)(cleaned) if _simple(exc) else RuntimeError(cleaned) from None
        raise


def _simple(exc: Exception) -> bool:
    try:
        type(exc)("x")
    except Exception:
        return False
    return True


def table_for(context: dg.OutputContext | dg.InputContext, default_schema: str) -> Table:
    """`schema.table` from the asset key (prefix = schema), or `schema` / `table` metadata."""
    path = context.asset_key.path
    meta = context.definition_metadata or {}
    if isinstance(context, dg.InputContext) and context.upstream_output is not None:
        meta = context.upstream_output.definition_metadata or {}
    schema = meta.get("schema") or (path[-2] if len(path) > 1 else default_schema)
    return Table(str(schema), str(meta.get("table") or path[-1]))


# ---------------------------------------------------------------------------------------------
# The IO manager every SQL target shares
# ---------------------------------------------------------------------------------------------


class SqlIOManager(dg.ConfigurableIOManager):
    """The Dagster side of every SQL sink; subclasses connect, load and name their dialect."""

    default_schema: str = Field(
        default="public", description="Schema for assets whose key has no prefix."
    )
    schema_policy: Literal["strict", "evolve"] = Field(
        default="strict", description="What to do when the schema differs from the table's."
    )
    batch_rows: int = Field(default=core.DEFAULT_BATCH_ROWS, description="Rows per load batch.")
    retries: int = Field(default=2, description="Retries of a transient failure (reset, lock).")

    storage_kind: ClassVar[str] = "sql"

    # -- what a target supplies -------------------------------------------------------------

    def dialect(self) -> Dialect:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A cursor in one transaction: committed on success, rolled back on any error."""
        raise NotImplementedError
        yield

    def load(self, cursor: Cursor, table: Table, frame: pl.LazyFrame, temporary: bool) -> None:
        raise NotImplementedError

    def fetch(self, cursor: Cursor, sql: str, params: list[Any]) -> pl.DataFrame:
        raise NotImplementedError

    def transient(self, exc: BaseException) -> bool:
        return False

    def uri(self, table: Table) -> str:
        raise NotImplementedError

    def secrets(self) -> list[str | None]:
        return []

    # -- the contract -----------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        if obj is None:
            return
        asset = context.asset_key.to_user_string()
        partitions = None
        try:
            with redacting(*self.secrets()):
                settings = core.WriteSettings.from_context(context, self.schema_policy)
                partitions = core.slice_from_context(context, settings.partition_expr)
                frame = core.as_lazy(obj)
                table = table_for(context, self.default_schema)
                dialect = self.dialect()
                for dtype in frame.collect_schema().values():
                    dialect.column_type(dtype)  # unsupported types fail before any I/O
                with core.stopwatch() as watch:
                    checked = core.validate(frame, settings, partitions)

                    def attempt() -> Written:
                        with self.transaction() as cursor:
                            return write(
                                cursor, dialect, table, frame, settings, partitions, self.load
                            )

                    def retryable(exc: BaseException) -> bool:
                        if isinstance(exc, ConnectFailed):
                            return exc.transient
                        if isinstance(exc, CommitUncertain):  # an append might land twice
                            return settings.mode is not core.WriteMode.APPEND and (
                                exc.__cause__ is not None and self.transient(exc.__cause__)
                            )
                        return self.transient(exc)

                    def log_retry(n: int, exc: BaseException) -> None:
                        message = redact(str(exc), self.secrets())
                        context.log.warning(f"{self.storage_kind}: retry {n} after: {message}")

                    written = with_retries(attempt, retryable, self.retries, log_retry)
        except Exception as exc:
            label = partitions.label() if partitions else None
            raise core.SinkError(self.storage_kind, asset, str(exc), label) from exc
        context.add_output_metadata(
            core.output_metadata(
                table=str(table),
                uri=self.uri(table),
                storage_kind=self.storage_kind,
                schema={c: col.sql for c, col in written.schema.items()},
                rows=written.rows,
                settings=settings,
                seconds=watch.seconds,
                partitions=partitions,
                rows_written=checked.rows,
            )
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        asset = context.asset_key.to_user_string()
        partitions = None
        try:
            with redacting(*self.secrets()):
                table = table_for(context, self.default_schema)
                upstream = context.upstream_output
                expr = (
                    (upstream.definition_metadata or {}).get(core.PARTITION_EXPR)
                    if upstream
                    else None
                )
                partitions = core.slice_from_context(context, expr)
                with self.transaction() as cursor:
                    sql, params, casts = read(
                        cursor, self.dialect(), table, core.input_columns(context), partitions
                    )
                    frame = self.fetch(cursor, sql, params)
                frame = frame.with_columns(
                    _restore(frame[c], t) for c, t in casts.items() if t is not None
                )
        except Exception as exc:
            label = partitions.label() if partitions else None
            raise core.SinkError(self.storage_kind, asset, f"cannot read: {exc}", label) from exc
        return frame.lazy() if core.is_lazy_annotation(context) else frame


def _restore(column: pl.Series, dtype: pl.DataType) -> pl.Series:
    """A column as read over the wire, cast back to the type it was written with."""
    if isinstance(dtype, pl.Struct):  # JSON text: the structure is inferred from the values
        return column.str.json_decode(infer_schema_length=None)
    return column.cast(dtype)
