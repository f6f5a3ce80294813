"""What every file format shares: the `FileFormat` interface and the helpers formats reuse.

Text formats (JSON, CSV) and Excel do not carry their types, so a schema sidecar records them
(`FileRecord`); their readers parse strictly against it and refuse, naming the row and the
column, a stored value that does not fit the recorded type exactly (`refuse_rows`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from honey_duck import seam
from honey_duck.seam import Landing, dtypes

ROW = "__honey_duck_row"  # the row index a strict reader names failing rows by (from 0)

Destination = str | pl.PartitionBy
"""A local file, or (for formats that `route`) one file per value of a routing column."""


@dataclass(frozen=True)
class Written:
    """What writing a file tells the session: its rows when the format counted them, and how
    the values were encoded where the types alone do not say (kept in the schema sidecar)."""

    rows: int | None = None
    encoding: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileRecord:
    """What a file's schema sidecar says of it: its columns' types and how values were encoded.

    `name` is the file as a person knows it (its path under the asset), for errors.
    """

    schema: pl.Schema
    encoding: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""


def cast_to(frame: pl.LazyFrame, types: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """`frame` with each column cast to `types[column]`, names taken literally."""
    return frame.select(seam.column(c).cast(t) for c, t in types.items())


def to_utc(dtype: pl.DataType) -> pl.DataType:
    """The type an aware datetime travels as in text formats: its UTC instant."""
    # polars writes offsets to the minute: one with seconds (local mean time before about 1900,
    # +00:19:32 in Amsterdam) would shift the value.
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return pl.Datetime(dtype.time_unit, "UTC")
    return dtype


def utc_instants(schema: Mapping[str, pl.DataType]) -> dict[str, pl.DataType]:
    return {c: dtypes.map_leaves(t, to_utc) for c, t in schema.items()}


def is_float(dtype: pl.DataType) -> bool:
    return dtype in (pl.Float32, pl.Float64)


def non_finite(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    return ~expr.is_finite() if is_float(dtype) else None


def refusals_where(schema: pl.Schema, test: dtypes.LeafTest, why: str) -> list[seam.Refusal]:
    """One refusal per column holding a leaf value that `test` finds bad."""
    return [
        seam.Refusal(column, bad, why)
        for column, dtype in schema.items()
        if (bad := dtypes.any_leaf(seam.column(column), dtype, test)) is not None
    ]


def not_as_written(name: str, row: int | None, problem: str) -> ValueError:
    """The error of a strict reader: which file, which row (from 0; None: the whole file),
    and what is wrong there, in words that name columns and never values."""
    where = f"{name or 'the file'}" + ("" if row is None else f", data row {row + 1}")
    return ValueError(
        f"{where}: {problem}; the file no longer holds what was written (changed by hand or by"
        " another program?): materialize the asset again with write_mode `replace`"
    )


Problem = Callable[[int], str]  # what is wrong on a row (counted from 0), in words


def refuse_rows(tests: Sequence[tuple[pl.Expr, Problem]], name: str) -> pl.Expr:
    """True on every row, or an error naming the first failing row of a batch.

    Each test is an expression true where a row is not as written, and what to say then,
    naming columns, never values. The check is one Python call per batch of rows, handed only
    the row numbers and flags: the values are tested by polars before it.
    """
    flags = [test.fill_null(False).alias(f"bad{i}") for i, (test, _) in enumerate(tests)]

    def check(batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest()
        failing = frame.select(pl.col(ROW), pl.any_horizontal(pl.exclude(ROW)).alias("bad"))
        if failing["bad"].any():
            row = int(failing.filter(pl.col("bad"))[ROW][0])
            first = frame.filter(pl.col(ROW) == row).row(0)[1:]
            problem = next(say for (_, say), hit in zip(tests, first, strict=True) if hit)
            raise not_as_written(name, row, problem(row))
        return pl.Series([True] * len(batch), dtype=pl.Boolean)

    return pl.struct(pl.col(ROW), *flags).map_batches(
        check, return_dtype=pl.Boolean, is_elementwise=True
    )


def unknown_columns(found: list[str], recorded: pl.Schema, kind: str = "columns") -> str | None:
    """What is wrong with a file's column names against its record, in words, or None."""
    extra = [c for c in found if c not in recorded]
    missing = [c for c in recorded if c not in found]
    if extra:
        return f"{kind} {extra} are in the file but not in its schema record"
    if missing:
        return f"{kind} {missing} of its schema record are missing from the file"
    if found != list(recorded):
        return f"its {kind} are in another order than its schema record says"
    return None


class FileFormat:
    """One file format; subclasses say how to write, read and which types they keep."""

    name: ClassVar[str]
    ext: ClassVar[str]
    # Text formats do not carry their types, so a schema file beside the data records them.
    sidecar_schema: ClassVar[bool] = True
    # Whether `write` takes a `pl.PartitionBy`: polars' streaming sinks write every partition's
    # file in one pass over the rows.
    routes: ClassVar[bool] = False
    # Whether `scan` reads object storage itself, in ranges (`storage_options`); the others
    # read a local copy. polars' remote CSV and NDJSON readers hold most of the file in
    # memory (a 241 MB CSV raised memory by 214 MB), a copy on disk does not.
    scans_remote: ClassVar[bool] = False

    def unsupported(self, dtype: pl.DataType) -> str | None:
        """Why this format cannot store `dtype`, or None when it can."""
        for leaf in dtypes.leaves(dtype):
            if leaf in (pl.Binary, pl.Object, pl.Null) or isinstance(leaf, pl.Duration):
                return f"{self.name} files cannot hold {leaf}"
        return None

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        """Values of `schema`'s columns this format cannot hold exactly (refused before writing)."""
        return []

    def landing(self, dtype: pl.DataType) -> Landing:
        """What a column of `dtype` reads back as: the type it was written with, by default."""
        return Landing(dtype)

    def write(self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int) -> Written:
        """Write `frame` to the local file `path` (or the routed files of a `PartitionBy`)."""
        raise NotImplementedError

    def scan(
        self,
        path: str,
        record: FileRecord | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        """Read `path` (a URL, with `storage_options`, for formats that `scans_remote`), typed
        and checked by its `record` where the format needs one."""
        raise NotImplementedError
