"""A SQL database as a target on the sink seam: what every SQL target shares.

A SQL target names its dialect, opens a transaction, loads rows into a table and fetches a
SELECT; the flow (`honey_duck.seam`) and the transactional write
(`honey_duck.targets.sql.session`) do the rest.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck import seam
from honey_duck.seam import Landing, SinkIOManager, Target, Write, write_through
from honey_duck.targets.sql.dialect import Column, Cursor, Dialect, Table
from honey_duck.targets.sql.refusals import value_refusals
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

    # who cannot keep apart names that differ only in case, as the refusal says it
    case_folding: ClassVar[str] = "a SQL engine that folds case"

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

    def schema_problems(self, schema: pl.Schema) -> list[str]:
        """Names the engine would reject or cut, too many columns, and names that differ only
        in case: a server would reject them half-way through a write, a stand-in would fold
        them together, so every SQL target refuses them before anything is sent."""
        dialect = self.dialect()
        problems = [
            f"column `{name}`: {why}; rename it in the asset"
            for name in schema
            if (why := dialect.identifier_problem(name))
        ]
        if dialect.max_columns is not None and len(schema) > dialect.max_columns:
            problems.append(
                f"{len(schema)} columns: a {dialect.name} table holds at most"
                f" {dialect.max_columns}; split the asset"
            )
        return problems + seam.case_clashes(list(schema), self.case_folding)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        return value_refusals(self.dialect(), schema)

    def landing(self, dtype: pl.DataType) -> Landing:
        dialect = self.dialect()
        sql_type = dialect.column_type(dtype)
        _, read_as = dialect.read_column("c", sql_type)
        if isinstance(read_as, pl.Struct):
            return Landing(None, note=f"{sql_type}, decoded on read (fields from the values)")
        return Landing(read_as or dialect.polars_type(sql_type))

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> Table:
        return self.checked(table_for(key, metadata, self.default_schema))

    def checked(self, table: Table) -> Table:
        """`table`, when the engine takes its schema and table names; else a ValueError."""
        dialect = self.dialect()
        for part, name in (("schema", table.schema), ("table", table.name)):
            why = dialect.identifier_problem(name)
            if why:
                raise ValueError(
                    f"the {part} name {name!r} of `{table}`: {why}; give metadata `{part}`"
                )
        return table

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
