"""Frames in and out of a target: lazy inputs, whole-object rewrites, bounded batches, scans."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dagster as dg
import polars as pl

from honey_duck.seam.schema import conform
from honey_duck.seam.settings import WriteMode, WriteSettings


def as_lazy(obj: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    if isinstance(obj, pl.DataFrame):
        return obj.lazy()
    if isinstance(obj, pl.LazyFrame):
        return obj
    raise TypeError(f"expected a polars DataFrame or LazyFrame, got {type(obj).__name__}")


def combine(
    existing: pl.LazyFrame | None,
    incoming: pl.LazyFrame,
    settings: WriteSettings,
    target: pl.Schema | None = None,
) -> pl.LazyFrame:
    """The full new content of an object a target rewrites whole (a file, a sheet).

    `target` is the object's schema after the write (default: the stored one, else the
    data's). An upsert writes only the data's columns: a matched row keeps its stored values
    of the columns the data lacks (`evolve`), as a SQL upsert of those columns would.
    """
    if target is None:
        target = (existing if existing is not None else incoming).collect_schema()
    new = conform(incoming, target)
    if existing is None or settings.mode is WriteMode.REPLACE:
        return new
    existing = conform(existing, target)
    if settings.mode is WriteMode.APPEND:
        return pl.concat([existing, new], how="vertical")
    keys = list(settings.keys)
    only_stored = [c for c in target if c not in incoming.collect_schema()]
    if only_stored:
        stored_values = existing.select(keys + only_stored)
        new = conform(incoming.join(stored_values, on=keys, how="left"), target)
    kept = existing.join(incoming.select(keys), on=keys, how="anti")
    return pl.concat([kept, new], how="vertical")


def iter_batches(frame: pl.DataFrame | pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    """Yield `frame` in batches of at most `rows` rows; a LazyFrame is streamed, never collected."""
    if isinstance(frame, pl.DataFrame):
        yield from frame.iter_slices(rows)
        return
    for batch in frame.collect_batches(chunk_size=rows):
        if batch.height:
            yield batch


def scan_frames(
    frames: Callable[[int | None], Iterator[pl.DataFrame]], schema: pl.Schema
) -> pl.LazyFrame:
    """A LazyFrame over a target's reader: `frames(batch_size)` yields frames of `schema`,
    one per server batch, when the LazyFrame is collected (never before).

    The pushdowns polars hands an IO source are applied here, once for every target: the
    columns asked for, the predicate, and a row limit that stops the reader early. A reader
    that yields nothing still gives a typed, empty result.
    """
    from polars.io.plugins import register_io_source

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        remaining, produced = n_rows, False
        for frame in frames(batch_size):
            if with_columns is not None:
                frame = frame.select(with_columns)
            if predicate is not None:
                frame = frame.filter(predicate)
            if remaining is not None:
                frame = frame.head(remaining)
                remaining -= frame.height
            produced = True
            yield frame
            if remaining == 0:
                return
        if not produced:
            empty = pl.DataFrame(schema=schema)
            yield empty.select(with_columns) if with_columns is not None else empty

    return register_io_source(source, schema=schema)


def is_lazy_annotation(context: dg.InputContext) -> bool:
    """True when the consuming input is annotated as a LazyFrame."""
    return context.dagster_type.typing_type is pl.LazyFrame


def input_columns(context: dg.InputContext) -> list[str] | None:
    """The `columns` input metadata, if the consumer asked for a subset."""
    columns = (context.definition_metadata or {}).get("columns")
    return list(columns) if columns else None
