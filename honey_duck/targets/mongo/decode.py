"""Reading: pymongoarrow's Arrow batches back to the polars types of the schema record."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from honey_duck import seam
from honey_duck.targets.mongo.errors import failure
from honey_duck.targets.mongo.exact import ABSENT, bson_types, misfits, refuse, unknown_fields
from honey_duck.targets.mongo.names import Collection
from honey_duck.targets.mongo.types import INT32_TYPES, INT64_TYPES, nested

if TYPE_CHECKING:
    from honey_duck.targets.mongo.target import MongoTarget


def _arrow_type(dtype: pl.DataType) -> Any:
    """The pymongoarrow schema type a stored polars type is read as."""
    from pymongoarrow.types import BinaryType, Decimal128Type

    if dtype in INT32_TYPES:
        return pa.int32()
    if dtype in (pl.Float32, pl.Float64):
        return pa.float64()
    if dtype == pl.Boolean:
        return pa.bool_()
    if isinstance(dtype, pl.Decimal):
        return Decimal128Type()
    if dtype == pl.Binary:
        return BinaryType(0)
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return pa.timestamp("ms")
    if dtype in INT64_TYPES or isinstance(dtype, pl.Duration):
        return pa.int64()
    return pa.string()  # String, Categorical, Enum, Null


def _helper_field(label: str, schema: Mapping[str, Any]) -> str:
    """A name for a value the read projects beside the columns (never a column's name)."""
    name = f"__hd_{label}"
    while name in schema:
        name += "_"
    return name


def _type_field(i: int, schema: Mapping[str, Any]) -> str:
    """The name under which a read projects flat column i's BSON type."""
    return _helper_field(f"type_{i}", schema)


def _decimals(column: pa.Array, dtype: pl.Decimal) -> tuple[pl.Series, pl.Series]:
    """Decimal128 (BID) storage bytes as a polars Decimal, exact, and the rows it cannot hold.

    A value with fewer decimal places than the scale (or more, all zeros) is rescaled exactly;
    one with more, a NaN or an infinity, or more digits than the precision, is a misfit.
    """
    storage = column.storage if hasattr(column, "storage") else column
    n = len(storage)
    valid = np.asarray(storage.is_valid())
    raw = storage.cast(pa.binary(16)).fill_null(b"\x00" * 16)
    words = np.frombuffer(raw.buffers()[1], dtype="<u8")[2 * raw.offset :][: 2 * n]
    low, high = words[0::2].copy(), words[1::2].copy()
    negative = (high >> np.uint64(63)).astype(bool)
    special = valid & (((high >> np.uint64(61)) & np.uint64(3)) == np.uint64(3))
    exponent = (high >> np.uint64(49)) & np.uint64(0x3FFF)
    high = high & np.uint64((1 << 49) - 1)
    misfit = special.copy()
    for i in np.flatnonzero(valid & ~special & (exponent != np.uint64(6176 - dtype.scale))):
        # another program's scale: rescaled when exact (Python ints: a rare path)
        shift = int(exponent[i]) - 6176 + dtype.scale
        coefficient = (int(high[i]) << 64) | int(low[i])
        if shift < 0 and coefficient % 10**-shift:
            misfit[i] = True
            continue
        coefficient = coefficient * 10**shift if shift >= 0 else coefficient // 10**-shift
        if coefficient >= 1 << 113:
            misfit[i] = True
            continue
        high[i], low[i] = np.uint64(coefficient >> 64), np.uint64(coefficient & (2**64 - 1))
    precision = dtype.precision or 38
    limit_high, limit_low = np.uint64(10**precision >> 64), np.uint64(10**precision % 2**64)
    misfit |= valid & ((high > limit_high) | ((high == limit_high) & (low >= limit_low)))
    neg_low = ~low + np.uint64(1)
    neg_high = ~high + (low == 0).astype(np.uint64)
    low = np.where(negative, neg_low, low)
    high = np.where(negative, neg_high, high)
    keep = valid & ~misfit
    out = np.empty((n, 2), dtype="<u8")
    out[:, 0], out[:, 1] = np.where(keep, low, 0), np.where(keep, high, 0)
    array = pa.Array.from_buffers(
        pa.decimal128(precision, dtype.scale),
        n,
        [pa.array(keep).buffers()[1], pa.py_buffer(out.tobytes())],
        null_count=int(n - keep.sum()),
    )
    return pl.Series(array), pl.Series(misfit)


def _restore(column: pa.Array | pa.ChunkedArray, dtype: pl.DataType, name: str) -> pl.Series:
    """One column as pymongoarrow read it, in the type it was written with (a value the type
    cannot hold comes back null: `exact.misfits` tells it from a stored null)."""
    if hasattr(column, "storage"):  # pymongoarrow's binary extension type
        column = column.storage
    series = pl.Series(name, column)
    if dtype == pl.Date:
        return series.cast(pl.Date)
    if isinstance(dtype, pl.Datetime):
        series = series.cast(pl.Datetime(dtype.time_unit), strict=False)
        if dtype.time_zone:
            series = series.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
        return series
    if dtype == pl.Time or isinstance(dtype, pl.Duration):
        return series.cast(pl.Int64).cast(dtype, strict=False)
    return series.cast(dtype, strict=False)


def _refuse_types(
    raw: bytes,
    flat: Mapping[str, pl.DataType],
    schema: Mapping[str, Any],
    codec_options: Any,
    where: str,
    first_row: int,
) -> None:
    """Find the value pymongoarrow could not read: the first of a BSON type its column's
    recorded type does not take, read with the projected types alone."""
    from pymongoarrow.api import Schema
    from pymongoarrow.context import PyMongoArrowContext

    fields = {_type_field(i, schema): pa.string() for i in range(len(flat))}
    context = PyMongoArrowContext(Schema(fields), codec_options=codec_options)
    context.process_bson_stream(raw)
    table = context.finish()
    for i, (name, dtype) in enumerate(flat.items()):
        types = pl.Series(table.column(_type_field(i, schema)).combine_chunks())
        bad = ~types.is_in((*ABSENT, *bson_types(dtype)))
        if bad.any():
            why = f"a stored BSON {types.filter(bad)[0]} is not exactly a polars {dtype}"
            refuse(name, where, bad, first_row, why)


def decode_batch(
    raw: bytes,
    schema: pl.Schema,
    codec_options: Any,
    where: str = "",
    first_row: int = 0,
) -> pl.DataFrame:
    """One server batch (BSON documents back to back) as a typed polars frame.

    Every flat column comes with its BSON type per row, projected by `scan`; a value its
    recorded type does not hold exactly is refused (`exact`), naming the column and its row
    (`first_row` is the batch's first).
    """
    import bson
    from pymongoarrow.api import Schema
    from pymongoarrow.context import PyMongoArrowContext

    flat = {c: t for c, t in schema.items() if not nested(t)}
    fields = {c: _arrow_type(t) for c, t in flat.items()}
    for i in range(len(flat)):
        fields[_type_field(i, schema)] = pa.string()
    columns: dict[str, pl.Series] = {}
    if fields:
        context = PyMongoArrowContext(Schema(fields), codec_options=codec_options)
        try:
            context.process_bson_stream(raw)
        except Exception:  # pymongoarrow refuses some values outright (a string for an int64)
            _refuse_types(raw, flat, schema, codec_options, where, first_row)
            raise
        table = context.finish()
        for i, (name, dtype) in enumerate(flat.items()):
            column = table.column(name).combine_chunks()
            types = pl.Series(table.column(_type_field(i, schema)).combine_chunks())
            if isinstance(dtype, pl.Decimal):
                series, misfit = _decimals(column, dtype)
                series = series.alias(name)
                misfit = misfit | ~types.is_in(("decimal", *ABSENT))
            else:
                read = pl.Series(name, column.storage if hasattr(column, "storage") else column)
                series = _restore(column, dtype, name)
                misfit = misfits(read, series, types, dtype)
            first = int(misfit.arg_true()[0]) if misfit.any() else 0
            why = f"a stored BSON {types[first]} is not exactly a polars {dtype}"
            refuse(name, where, misfit, first_row, why)
            if dtype.is_float():  # pymongoarrow reads NaN as null; the BSON type tells them apart
                nan = series.is_null() & (types == "double")
                series = pl.select(
                    pl.when(nan).then(float("nan")).otherwise(series).cast(dtype).alias(name)
                ).to_series()
            columns[name] = series
    structured = [c for c, t in schema.items() if nested(t)]
    if structured:
        documents = bson.decode_all(raw, codec_options)
        for name in structured:
            values = [d.get(name) for d in documents]
            columns[name] = pl.Series(name, values, dtype=schema[name])
    height = next(iter(columns.values())).len() if columns else 0
    return pl.DataFrame([columns[c] for c in schema], height=height)


def scan(
    target: MongoTarget,
    location: Collection,
    schema: pl.Schema,
    query: dict,
    known: Sequence[str] | None = None,
) -> pl.LazyFrame:
    """A LazyFrame fed one server batch at a time, on a client of its own.

    Each document comes with its flat columns' BSON types, which `decode_batch` checks;
    given the record's columns (`known`), documents with other fields are refused first.
    """
    flat = [c for c, t in schema.items() if not nested(t)]
    projection: dict[str, Any] = {"_id": 0, **{c: 1 for c in schema}}
    for i, column in enumerate(flat):
        projection[_type_field(i, schema)] = {"$type": f"${column}"}

    def frames(batch_size: int | None) -> Iterator[pl.DataFrame]:
        from pymongo import errors

        client = target.client()
        rows = 0
        try:
            collection = client[location.database][location.name]
            if known is not None:
                unknown_fields(collection, query, known, str(location))
            cursor = collection.find_raw_batches(
                query, projection=projection, batch_size=batch_size or target.batch_rows
            )
            for raw in cursor:
                frame = decode_batch(raw, schema, collection.codec_options, str(location), rows)
                rows += frame.height
                yield frame
        except errors.PyMongoError as exc:
            raise failure(exc) from None
        finally:
            client.close()

    return seam.scan_frames(frames, schema)
