"""The transactional write every SQL target shares: the contract's verbs in one transaction.

- `replace`: rows loaded into a new staging table, then swapped in by rename; readers see the
  old table or the new, never a mix.
- `replace_slice`: rows loaded into a temporary table; exactly the slice deleted; inserted.
- `append`: rows loaded into the table (or, partitioned, through a temporary table).
- `upsert`: rows loaded into a temporary table, then merged by key.

The caller (the sink flow) commits when a verb returns and rolls back when it raises.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

from honey_duck import seam
from honey_duck.seam import Session, Write
from honey_duck.seam.faults import OutcomeUnknown
from honey_duck.targets.sql.dialect import Column, Cursor, Definitions, Dialect, Table
from honey_duck.targets.sql.slices import slice_predicate

Loader = Callable[[Cursor, Table, pl.LazyFrame, bool], None]
"""Loads a frame's rows into an existing table (a temporary one when the flag is set)."""

Fetcher = Callable[[Cursor, str, list[Any], Mapping[str, pl.DataType]], pl.DataFrame]
"""Runs a SELECT and returns its rows as a frame typed like the selected columns' types."""


Streamer = Callable[[str, list[Any]], Iterator[pa.RecordBatch]]
"""Runs a SELECT on a connection of its own and yields its rows as Arrow record batches."""


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
            raise OutcomeUnknown(
                f"COMMIT failed ({exc}); if the connection dropped, the write may or may not"
                " have been applied"
            ) from exc
    finally:
        with suppress(Exception):
            cursor.close()
        with suppress(Exception):
            connection.close()


def arrow_batches(frame: pl.LazyFrame, batch_rows: int) -> pa.RecordBatchReader:
    """A stream of Arrow record batches from a LazyFrame, never collected whole."""
    schema = pl.DataFrame(schema=frame.collect_schema()).to_arrow().schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in seam.iter_batches(frame, batch_rows):
            yield from batch.to_arrow().to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


@dataclass
class SqlSession(Session):
    """One transaction on one SQL target."""

    dialect: Dialect
    cursor: Cursor
    load: Loader
    fetch: Fetcher | None = None
    stream: Streamer | None = None  # reads then return a LazyFrame fed batch by batch

    # -- schema -----------------------------------------------------------------------------

    def stored_schema(
        self, location: Table, partitions: seam.PartitionSlice | None
    ) -> dict[str, Column] | None:
        stored = self.dialect.stored_columns(self.cursor, location)
        return None if stored is None else {c: Column(t, t) for c, t in stored.items()}

    def _prepare(self, write: Write) -> tuple[Table, dict[str, str], pl.LazyFrame]:
        """Create or evolve the table as the write needs; the column types and the wire frame."""
        table, stored, dialect = write.location, write.stored, self.dialect
        types = {c: col.sql for c, col in write.schema.items()}
        polars_types = {
            c: write.incoming.get(c) or dialect.polars_type(col.sql)
            for c, col in write.schema.items()
        }  # columns only the table has travel as typed nulls
        frame = dialect.wire(seam.conform(write.frame, pl.Schema(polars_types)))
        self.cursor.execute(dialect.create_schema(table.schema))
        if stored is None:
            whole = write.partitions is None and write.settings.mode is seam.WriteMode.REPLACE
            if not whole:  # a replace creates its table by the swap
                self.cursor.execute(dialect.create_table(table, types, write.keys))
            return table, types, frame
        for column in [c for c in write.schema if c not in stored]:  # schema_policy='evolve'
            self.cursor.execute(dialect.add_column(table, column, types[column]))
        if write.keys and not dialect.has_unique_key(self.cursor, table, write.keys):
            raise ValueError(
                f"upsert needs a primary key or unique index on ({', '.join(write.keys)}) in"
                f" `{table}`; create one, or let honey_duck create the table"
            )
        return table, types, frame

    # -- writing ----------------------------------------------------------------------------

    def replace(self, write: Write) -> int:
        """Load a whole new table, then swap it in: readers never see it half-loaded."""
        table, types, frame = self._prepare(write)
        dialect = self.dialect
        stage = Table(table.schema, f"_hd_stage_{uuid.uuid4().hex[:12]}")
        # The stage has no keys or indexes: its constraint names would leak into the swapped
        # table, and building them once after loading is faster than keeping them up per row.
        self.cursor.execute(dialect.create_table(stage, types))
        self.load(self.cursor, stage, frame, False)
        kept = Definitions([])
        if write.stored is not None:
            # The old table's keys and indexes (an earlier upsert's primary key, an index made
            # by hand) belong to the table, not to this write's settings: keep them.
            kept = dialect.keys_and_indexes(self.cursor, table)
            dialect.drop_indexes_blocking_rename(self.cursor, table)
            old = Table(table.schema, f"_hd_old_{uuid.uuid4().hex[:12]}")
            self.cursor.execute(dialect.rename(table, old.name))
            self.cursor.execute(dialect.rename(stage, table.name))
            self.cursor.execute(dialect.drop(old))
        else:
            self.cursor.execute(dialect.rename(stage, table.name))
        for statement in kept.statements:
            self.cursor.execute(statement)
        if write.settings.keys and not kept.has_primary_key:
            self.cursor.execute(dialect.add_primary_key(table, write.settings.keys))
        return self._count(table, None, write.incoming)

    def replace_slice(self, write: Write) -> int:
        return self._through_stage(write)

    def append(self, write: Write) -> int:
        if write.partitions is not None:
            return self._through_stage(write)
        table, _, frame = self._prepare(write)
        self.load(self.cursor, table, frame, False)
        return self._count(table, None, write.incoming)

    def upsert(self, write: Write) -> int:
        return self._through_stage(write)

    def _through_stage(self, write: Write) -> int:
        """Load into a temporary table, then delete the slice (replace), insert or merge."""
        table, types, frame = self._prepare(write)
        dialect, columns = self.dialect, list(types)
        stage = Table(table.schema, f"_hd_stage_{uuid.uuid4().hex[:12]}")
        self.cursor.execute(dialect.create_table(stage, types, temporary=True))
        self.load(self.cursor, stage, frame, True)
        source = dialect.quote(stage.name)
        mode = write.settings.mode
        if write.partitions is not None and mode is seam.WriteMode.REPLACE:
            where = slice_predicate(dialect, write.partitions, write.incoming)
            self.cursor.execute(
                f"DELETE FROM {dialect.table(table)} WHERE {where.sql}", where.params
            )
        if mode is seam.WriteMode.UPSERT:
            # Only the columns the data has: a column only the table has keeps its stored values.
            present = [c for c in columns if c in write.incoming]
            partial = len(present) < len(columns)
            for statement in dialect.upsert_from(table, source, present, write.keys, partial):
                self.cursor.execute(statement)
        else:
            self.cursor.execute(dialect.insert_from(table, source, columns))
        self.cursor.execute(dialect.drop(stage, temporary=True))
        return self._count(table, write.partitions, write.incoming)

    def _count(
        self, table: Table, partitions: seam.PartitionSlice | None, schema: pl.Schema
    ) -> int:
        sql = f"SELECT COUNT(*) FROM {self.dialect.table(table)}"
        params: list[Any] = []
        if partitions is not None:
            where = slice_predicate(self.dialect, partitions, dict(schema))
            sql, params = f"{sql} WHERE {where.sql}", where.params
        self.cursor.execute(sql, params)
        return int(self.cursor.fetchall()[0][0])

    # -- reading ----------------------------------------------------------------------------

    def read(
        self,
        location: Table,
        columns: Sequence[str] | None,
        partitions: seam.PartitionSlice | None,
    ) -> pl.DataFrame:
        dialect, table = self.dialect, location
        stored = dialect.stored_columns(self.cursor, table)
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
        if partitions is not None and partitions.columns:
            schema = {c: dialect.polars_type(stored[c]) for c in partitions.columns}
            where = slice_predicate(dialect, partitions, schema)
            sql, params = f"{sql} WHERE {where.sql}", where.params
        wire = {  # what each selected expression yields: JSON travels as text
            c: pl.String() if isinstance(t, pl.Struct) else (t or dialect.polars_type(stored[c]))
            for c, (_, t) in selected.items()
        }
        schema = pl.Schema(
            {c: t or dialect.polars_type(stored[c]) for c, (_, t) in selected.items()}
        )  # the exact types the eager read returns
        if self.stream is not None and not any(isinstance(t, pl.Struct) for t in schema.values()):
            # JSON columns take their structure from the values, so those tables read eagerly.
            return _streamed(self.stream, sql, params, selected, schema)
        assert self.fetch is not None, "this session was opened for writing only"
        frame = self.fetch(self.cursor, sql, params, wire)
        return frame.with_columns(
            _restore(frame[c], t) for c, (_, t) in selected.items() if t is not None
        )


def _streamed(
    stream: Streamer,
    sql: str,
    params: list[Any],
    selected: Mapping[str, tuple[str, pl.DataType | None]],
    schema: pl.Schema,
) -> pl.LazyFrame:
    """A LazyFrame that runs `sql` when collected and turns each Arrow batch into rows."""

    def frames(batch_size: int | None) -> Iterator[pl.DataFrame]:
        for batch in stream(sql, params):
            frame = pl.DataFrame(pl.from_arrow(batch))
            yield frame.with_columns(
                _restore(frame[c], t) for c, (_, t) in selected.items() if t is not None
            ).cast(dict(schema))

    return seam.scan_frames(frames, schema)


def _restore(column: pl.Series, dtype: pl.DataType) -> pl.Series:
    """A column as read over the wire, cast back to the type it was written with."""
    if isinstance(dtype, pl.Struct):  # JSON text: the structure is inferred from the values
        return column.str.json_decode(infer_schema_length=None)
    return column.cast(dtype)
