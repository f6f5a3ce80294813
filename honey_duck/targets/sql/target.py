"""A SQL database as a target on the sink seam: what every SQL target shares.

A SQL target names its dialect, opens a transaction, loads rows into a table and fetches a
SELECT; the flow (`honey_duck.seam`) and the transactional write
(`honey_duck.targets.sql.session`) do the rest.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck import seam
from honey_duck.seam import Landing, SinkIOManager, Target, Write, write_through
from honey_duck.targets.sql.dialect import Column, Cursor, Dialect, Table, json_text
from honey_duck.targets.sql.session import Loader, SqlSession, Streamer


def sql_column(dialect: Dialect, dtype: pl.DataType) -> Column:
    """A polars type's column in `dialect`: compared by SQL type, shown with both."""
    sql = dialect.column_type(dtype)
    return Column(sql, f"{dtype} ({sql})")


def table_for(key: dg.AssetKey, metadata: Mapping[str, Any], default_schema: str) -> Table:
    """`schema.table` from the asset key (prefix = schema), or `schema` / `table` metadata."""
    path = key.path
    schema = metadata.get("schema") or (path[-2] if len(path) > 1 else default_schema)
    return Table(str(schema), str(metadata.get("table") or path[-1]))


class SqlTarget(Target):
    """What a SQL target adds: a dialect, a transaction, a loader and a fetcher."""

    def __init__(self, default_schema: str) -> None:
        self.default_schema = default_schema

    @abc.abstractmethod
    def dialect(self) -> Dialect: ...

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor in one transaction: committed on success, rolled back on any error."""

    @abc.abstractmethod
    def load(self, cursor: Cursor, table: Table, frame: pl.LazyFrame, temporary: bool) -> None:
        """Load the frame's rows into an existing table, in bulk."""

    @abc.abstractmethod
    def fetch(
        self, cursor: Cursor, sql: str, params: list[Any], schema: Mapping[str, pl.DataType]
    ) -> pl.DataFrame:
        """Run a SELECT and return its rows; `schema` is what each selected column holds."""

    def streamer(self) -> Streamer | None:
        """How to stream a SELECT's Arrow batches on a connection of its own, if the target can."""
        return None

    # -- the seam ---------------------------------------------------------------------------

    def unsupported(self, dtype: pl.DataType) -> str | None:
        try:
            self.dialect().column_type(dtype)
        except ValueError as exc:
            return str(exc)
        return None

    def column_type(self, dtype: pl.DataType) -> Column:
        return sql_column(self.dialect(), dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        return sub_microsecond_refusals(schema, self.dialect().name)

    def landing(self, dtype: pl.DataType) -> Landing:
        dialect = self.dialect()
        sql_type = dialect.column_type(dtype)
        _, read_as = dialect.read_column("c", sql_type)
        if isinstance(read_as, pl.Struct):
            return Landing(None, note=f"{sql_type}, decoded on read (fields from the values)")
        return Landing(read_as or dialect.polars_type(sql_type))

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> Table:
        return table_for(key, metadata, self.default_schema)

    def table_name(self, location: Table) -> str:
        return str(location)

    @contextmanager
    def session(self) -> Iterator[SqlSession]:
        with self.transaction() as cursor:
            yield SqlSession(self.dialect(), cursor, self.load, self.fetch, self.streamer())


class SqlIOManager(SinkIOManager):
    """The configuration every SQL sink shares."""

    default_schema: str = Field(
        default="public", description="Schema for assets whose key has no prefix."
    )


def write(
    cursor: Cursor,
    dialect: Dialect,
    table: Table,
    frame: pl.LazyFrame,
    settings: seam.WriteSettings,
    partitions: seam.PartitionSlice | None,
    load: Loader,
) -> int:
    """Run one write on a cursor the caller owns (and commits): tools, and tests that record."""
    checked = seam.validate(frame, settings, partitions)
    session = SqlSession(dialect, cursor, load)
    incoming = frame.collect_schema()
    plan = Write(table, frame, incoming, {}, None, settings, partitions, checked, 100_000)
    rows, _ = write_through(session, lambda dtype: sql_column(dialect, dtype), str(table), plan)
    return rows


def sub_microsecond_refusals(schema: pl.Schema, server: str) -> list[seam.Refusal]:
    """Refuse nanosecond datetimes and durations with a part below the microsecond: SQL
    timestamps and intervals keep microseconds, so the load would cut them."""
    refusals = []
    for name, dtype in schema.items():
        col = seam.column(name)
        if isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns":
            bad = col.dt.epoch("ns") % 1000 != 0
        elif isinstance(dtype, pl.Duration) and dtype.time_unit == "ns":
            bad = col.dt.total_nanoseconds() % 1000 != 0
        else:
            continue
        why = f"{server} keeps microseconds: a value with nanoseconds would be cut"
        refusals.append(seam.Refusal(name, bad, why))
    return refusals


def nul_refusals(schema: pl.Schema, server: str) -> list[seam.Refusal]:
    """Refuse text holding NUL (`\\x00`): PostgreSQL's text and jsonb cannot store it at all."""
    refusals = []
    for name, dtype in schema.items():
        col = seam.column(name)
        if isinstance(dtype, pl.String | pl.Categorical | pl.Enum):
            bad = col.cast(pl.String).str.contains("\x00", literal=True)
        elif isinstance(dtype, pl.List | pl.Array) and dtype.inner == pl.String:
            bad = col.list.eval(pl.element().str.contains("\x00", literal=True)).list.any()
        elif isinstance(dtype, pl.Struct | pl.List | pl.Array):
            bad = json_text(name, dtype).str.contains("\\u0000", literal=True)
        else:
            continue
        refusals.append(seam.Refusal(name, bad, f"{server} text cannot hold the NUL character"))
    return refusals
