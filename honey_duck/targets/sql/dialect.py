"""What differs between SQL targets: types, quoting, placeholders, catalog queries, merges.

The transactional write (`honey_duck.targets.sql.session`) is the same for every SQL target; a
dialect is all it asks of one, besides how rows reach a table (its loader). A dialect's scalar
types are a table (`Dialect.scalars`); decimals, datetimes, lists and JSON go through a few
small hooks, and the walk over a type that uses them is written once, here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import polars as pl

from honey_duck import seam
from honey_duck.seam import dtypes

if TYPE_CHECKING:
    from honey_duck.targets.sql.refusals import Limits


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


@dataclass(frozen=True)
class Definitions:
    """A table's keys and indexes, as the statements that rebuild them on its replacement."""

    statements: list[str]
    has_primary_key: bool = False


ScalarTypes = Mapping[type[pl.DataType], str]
"""Polars type classes and the SQL type each is stored as."""


class Dialect:
    """What differs between SQL targets: types, quoting, placeholders, loads and merges."""

    name: ClassVar[str] = "sql"
    max_identifier: ClassVar[int] = 63
    names_server: ClassVar[str | None] = None  # who limits names, when another server than `name`
    max_columns: ClassVar[int | None] = None  # columns a table may have, if the engine limits it
    # The polars types stored as a plain SQL type, by class. Where several share a SQL type,
    # the first listed is what a column of that type reads back as.
    scalars: ClassVar[ScalarTypes] = {}
    json_type: ClassVar[str] = "jsonb"
    limits: ClassVar[Limits]  # what the engine holds: the refusals follow from it

    # -- naming ---------------------------------------------------------------------------

    def identifier_problem(self, identifier: str) -> str | None:
        """Why `identifier` cannot name a schema, table or column here, or None when it can."""
        if not identifier:
            return "a name cannot be empty"
        if "\0" in identifier:
            return "a name cannot hold the NUL character"
        size = len(identifier.encode())
        if size > self.max_identifier:
            server = self.names_server or self.name
            return f"{server} names are 1 to {self.max_identifier} bytes (this one is {size})"
        return None

    def quote(self, identifier: str) -> str:
        problem = self.identifier_problem(identifier)
        if problem:
            raise ValueError(f"{identifier!r} cannot be a {self.name} identifier: {problem}")
        return '"' + identifier.replace('"', '""') + '"'

    def table(self, table: Table) -> str:
        return f"{self.quote(table.schema)}.{self.quote(table.name)}"

    def param(self, index: int) -> str:
        return f"${index}"

    # -- types ----------------------------------------------------------------------------

    def column_type(self, dtype: pl.DataType) -> str:
        """The SQL type a polars type is stored as; ValueError for a type it cannot hold."""
        if self.stores_as_json(dtype):
            problem = dtypes.first(dtype, self.json_problem)
            if problem:
                raise ValueError(problem)
            return self.json_type
        if isinstance(dtype, pl.List | pl.Array):
            return self.array_type(self.column_type(dtype.inner))
        if isinstance(dtype, pl.Decimal):
            return self.decimal_type(dtype.precision, dtype.scale)
        if isinstance(dtype, pl.Datetime):
            return self.datetime_type(zoned=dtype.time_zone is not None)
        sql_type = self.scalars.get(dtype.base_type())
        if sql_type is None:
            raise ValueError(f"{self.name} has no type for polars {dtype}")
        return sql_type

    def stores_as_json(self, dtype: pl.DataType) -> bool:
        """Whether a column of `dtype` is stored as JSON: structs, and lists of anything but
        scalars (a SQL array holds scalars of one shape)."""
        if isinstance(dtype, pl.Struct):
            return True
        return isinstance(dtype, pl.List | pl.Array) and dtype.inner.is_nested()

    def json_problem(self, dtype: pl.DataType) -> str | None:
        """Why a type cannot travel inside a JSON value, or None when it can."""
        if dtype == pl.Binary:
            return f"{self.name} keeps nested values as JSON, which has no form for binary"
        names = [f.name for f in dtype.fields] if isinstance(dtype, pl.Struct) else []
        if not self.limits.keeps_nul and any("\0" in name for name in names):
            return f"a field name holds the NUL character, which {self.name} JSON cannot hold"
        return None

    def array_type(self, item_type: str) -> str:
        return f"{item_type}[]"

    def decimal_type(self, precision: int | None, scale: int) -> str:
        return f"numeric({precision},{scale})" if precision else "numeric"

    def datetime_type(self, zoned: bool) -> str:
        return f"timestamp {'with' if zoned else 'without'} time zone"

    def polars_type(self, sql_type: str) -> pl.DataType:
        """The polars type a stored column reads back as (JSON columns: String)."""
        lowered = sql_type.lower()
        if lowered.endswith("[]"):
            return pl.List(self.polars_type(sql_type[:-2]))
        if lowered.startswith(("numeric(", "decimal(")):
            precision, scale = lowered[lowered.index("(") + 1 : -1].split(",")
            return pl.Decimal(int(precision), int(scale))
        if lowered.startswith("timestamp"):
            return pl.Datetime("us", "UTC" if "with time zone" in lowered else None)
        for kind, sql in self.scalars.items():  # the first listed for a SQL type reads it
            if sql.lower() == lowered:
                return kind()
        return pl.String()

    def wire(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """Cast columns to what the bulk path sends for their target types."""
        casts = []
        for name, dtype in frame.collect_schema().items():
            json = self.stores_as_json(dtype)
            cast = self.json_wire(name, dtype) if json else self.scalar_wire(name, dtype)
            if cast is not None:
                casts.append(cast.alias(name))
        return frame.with_columns(casts) if casts else frame

    def json_wire(self, name: str, dtype: pl.DataType) -> pl.Expr | None:
        """What a JSON column is sent as (None: as it is)."""
        return json_text(name, dtype)

    def scalar_wire(self, name: str, dtype: pl.DataType) -> pl.Expr | None:
        """What any other column is sent as (None: as it is)."""
        return widen(name, dtype)

    def read_column(self, name: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        """A select expression for a stored column, and the polars type to cast it to."""
        return self.quote(name), None

    # -- catalog --------------------------------------------------------------------------

    def stored_columns(self, cursor: Cursor, table: Table) -> dict[str, str] | None:
        """The stored column types in order, or None when the table does not exist."""
        raise NotImplementedError

    def keys_and_indexes(self, cursor: Cursor, table: Table) -> Definitions:
        """The table's keys and indexes as statements to run on its replacement, once the old
        table is dropped (their names are free again then). Reads only."""
        return Definitions([])

    def drop_indexes_blocking_rename(self, cursor: Cursor, table: Table) -> None:
        """Drop the indexes that keep `table` from being renamed, where the engine has such
        (they are rebuilt from `keys_and_indexes` after the swap)."""

    def has_unique_key(self, cursor: Cursor, table: Table, keys: Sequence[str]) -> bool:
        """Whether `keys` are covered by a primary key or unique index (ON CONFLICT needs one)."""
        return True

    # -- statements -----------------------------------------------------------------------

    def create_schema(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}"

    def create_table(
        self,
        table: Table,
        columns: Mapping[str, str],
        keys: Sequence[str] = (),
        temporary: bool = False,
    ) -> str:
        body = [f"{self.quote(c)} {t}" for c, t in columns.items()]
        if keys:
            body.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in keys)})")
        kind = "TEMPORARY TABLE" if temporary else "TABLE"
        name = self.quote(table.name) if temporary else self.table(table)
        return f"CREATE {kind} {name} ({', '.join(body)})"

    def add_primary_key(self, table: Table, keys: Sequence[str]) -> str:
        names = ", ".join(self.quote(k) for k in keys)
        return f"ALTER TABLE {self.table(table)} ADD PRIMARY KEY ({names})"

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


def json_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """A struct or list column as JSON text, null where the value is null (not "null")."""
    col = seam.column(column)
    # polars JSON-encodes structs only, so a list travels wrapped in one: {"v":[...]}
    text = (
        col.struct.json_encode()
        if isinstance(dtype, pl.Struct)
        else pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    )
    return pl.when(col.is_null()).then(None).otherwise(text)


def _wider(dtype: pl.DataType) -> pl.DataType:
    """The type a server without unsigned, 8-bit, categorical or nanosecond types takes."""
    if dtype in (pl.Int8, pl.UInt8):
        return pl.Int16()
    if dtype == pl.UInt16:
        return pl.Int32()
    if dtype == pl.UInt32:
        return pl.Int64()
    if dtype == pl.UInt64:
        return pl.Decimal(20, 0)
    if isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
        return pl.String()
    if isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns":
        return pl.Datetime("us", dtype.time_zone)
    if isinstance(dtype, pl.Duration) and dtype.time_unit == "ns":
        return pl.Duration("us")
    return dtype


def widen(column: str, dtype: pl.DataType) -> pl.Expr | None:
    """The cast such a server needs for a column (list items too), or None when none is."""
    wider = dtypes.map_leaves(dtype, _wider)
    return None if wider == dtype else seam.column(column).cast(wider)
