"""What differs between SQL targets: types, quoting, placeholders, catalog queries, merges.

The transactional write (`honey_duck.targets.sql.session`) is the same for every SQL target; a
dialect is all it asks of one, besides how rows reach a table (its loader).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import polars as pl

from honey_duck import seam


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

    def add_primary_key(self, table: Table, keys: Sequence[str]) -> str:
        names = ", ".join(self.quote(k) for k in keys)
        return f"ALTER TABLE {self.table(table)} ADD PRIMARY KEY ({names})"

    def lift_definitions(self, cursor: Cursor, table: Table) -> tuple[bool, list[str]]:
        """Statements that rebuild the table's keys and indexes on its replacement (run after
        the old table is dropped, so their names are free again), and whether one of them is
        the primary key; an engine that cannot rename an indexed table drops them here."""
        return False, []

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
    col = seam.column(column)
    # polars JSON-encodes structs only, so a list travels wrapped in one: {"v":[...]}
    text = (
        col.struct.json_encode()
        if isinstance(dtype, pl.Struct)
        else pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    )
    return pl.when(col.is_null()).then(None).otherwise(text)


def widen(column: str, dtype: pl.DataType) -> pl.Expr | None:
    """The cast a server without unsigned, 8-bit, categorical or nanosecond types needs."""
    col = seam.column(column)
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
    dialect: Dialect, partitions: seam.PartitionSlice, schema: dict[str, pl.DataType]
) -> Predicate:
    """The exact rows of `partitions`: one range for contiguous windows, else an OR of parts."""
    params: list[Any] = []

    def bound(column: str, value: seam.Bound) -> str:
        dtype = schema[column]
        col = dialect.quote(column)
        if isinstance(value, seam.Window):
            params.extend([_edge(dtype, value.start), _edge(dtype, value.end)])
            n = len(params)
            return f"{col} >= {dialect.param(n - 1)} AND {col} < {dialect.param(n)}"
        params.append(seam.typed_key(column, value, dtype))  # the key, typed like its column
        return f"{col} = {dialect.param(len(params))}"

    covering = partitions.covering_window()
    if covering is not None:
        return Predicate(bound(*covering), params)
    parts = [
        "(" + " AND ".join(bound(c, v) for c, v in part.bounds.items()) + ")"
        for part in partitions.parts
    ]
    return Predicate(" OR ".join(parts), params)
