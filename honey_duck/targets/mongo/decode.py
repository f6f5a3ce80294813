"""Reading: pymongoarrow's Arrow batches back to the polars types of the schema record."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from honey_duck import seam
from honey_duck.targets.mongo.errors import failure
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


def _nan_field(i: int, schema: Mapping[str, Any]) -> str:
    """The name under which a read projects float column i's BSON type (not a column's)."""
    name = f"__hd_type_{i}"
    while name in schema:
        name += "_"
    return name


def _decimals(column: pa.Array, dtype: pl.Decimal) -> pl.Series:
    """Decimal128 (BID) storage bytes as a polars Decimal, exact."""
    storage = column.storage if hasattr(column, "storage") else column
    n = len(storage)
    valid = np.asarray(storage.is_valid())
    raw = storage.cast(pa.binary(16)).fill_null(b"\x00" * 16)
    words = np.frombuffer(raw.buffers()[1], dtype="<u8")[2 * raw.offset :][: 2 * n]
    low, high = words[0::2].copy(), words[1::2].copy()
    negative = (high >> np.uint64(63)).astype(bool)
    exponent = (high >> np.uint64(49)) & np.uint64(0x3FFF)
    if (valid & (exponent != np.uint64(6176 - dtype.scale))).any():
        raise ValueError(
            f"a Decimal128 of scale other than {dtype.scale} is stored where the schema record"
            " says the column holds scale {dtype.scale}: the collection was written by another"
            " program"
        )
    high = high & np.uint64((1 << 49) - 1)
    neg_low = ~low + np.uint64(1)
    neg_high = ~high + (low == 0).astype(np.uint64)
    low = np.where(negative, neg_low, low)
    high = np.where(negative, neg_high, high)
    out = np.empty((n, 2), dtype="<u8")
    out[:, 0], out[:, 1] = low, high
    precision = dtype.precision or 38
    array = pa.Array.from_buffers(
        pa.decimal128(precision, dtype.scale),
        n,
        [pa.array(valid).buffers()[1], pa.py_buffer(out.tobytes())],
        null_count=int(n - valid.sum()),
    )
    return pl.Series(array)


def _restore(column: pa.Array | pa.ChunkedArray, dtype: pl.DataType, name: str) -> pl.Series:
    """One column as pymongoarrow read it, back in the type it was written with."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(dtype, pl.Decimal):
        return _decimals(column, dtype).alias(name)
    if hasattr(column, "storage"):  # pymongoarrow's binary extension type
        column = column.storage
    series = pl.Series(name, column)
    if dtype == pl.Date:
        return series.cast(pl.Date)
    if isinstance(dtype, pl.Datetime):
        series = series.cast(pl.Datetime(dtype.time_unit))
        if dtype.time_zone:
            series = series.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
        return series
    if dtype == pl.Time or isinstance(dtype, pl.Duration):
        return series.cast(pl.Int64).cast(dtype)
    return series.cast(dtype)


def decode_batch(raw: bytes, schema: pl.Schema, codec_options: Any) -> pl.DataFrame:
    """One server batch (BSON documents back to back) as a typed polars frame."""
    import bson
    from pymongoarrow.api import Schema
    from pymongoarrow.context import PyMongoArrowContext

    flat = {c: t for c, t in schema.items() if not nested(t)}
    fields = {c: _arrow_type(t) for c, t in flat.items()}
    floats = [i for i, t in enumerate(flat.values()) if t in (pl.Float32, pl.Float64)]
    for i in floats:
        fields[_nan_field(i, schema)] = pa.string()
    columns: dict[str, pl.Series] = {}
    if fields:
        context = PyMongoArrowContext(Schema(fields), codec_options=codec_options)
        context.process_bson_stream(raw)
        table = context.finish()
        for i, (name, dtype) in enumerate(flat.items()):
            series = _restore(table.column(name), dtype, name)
            if i in floats:  # pymongoarrow reads NaN as null; the BSON type tells them apart
                nan = series.is_null() & (
                    pl.Series(table.column(_nan_field(i, schema))) == "double"
                )
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


def scan(target: MongoTarget, location: Collection, schema: pl.Schema, query: dict) -> pl.LazyFrame:
    """A LazyFrame fed one server batch at a time, on a client of its own."""

    flat = [c for c, t in schema.items() if not nested(t)]
    projection: dict[str, Any] = {"_id": 0, **{c: 1 for c in schema}}
    for i, column in enumerate(flat):
        if schema[column] in (pl.Float32, pl.Float64):
            projection[_nan_field(i, schema)] = {"$type": f"${column}"}

    def frames(batch_size: int | None) -> Iterator[pl.DataFrame]:
        from pymongo import errors

        client = target.client()
        try:
            collection = client[location.database][location.name]
            cursor = collection.find_raw_batches(
                query, projection=projection, batch_size=batch_size or target.batch_rows
            )
            for raw in cursor:
                yield decode_batch(raw, schema, collection.codec_options)
        except errors.PyMongoError as exc:
            raise failure(exc) from None
        finally:
            client.close()

    return seam.scan_frames(frames, schema)
