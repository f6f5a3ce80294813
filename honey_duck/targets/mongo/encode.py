"""A polars batch as BSON documents, column by column, in numpy.

Writing never builds a Python dict per row: each batch's columns become BSON element bytes
(`encode_batch`), cut into `RawBSONDocument`s that pymongo sends as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from honey_duck.targets.mongo.types import (
    BINARY,
    BOOL,
    DATETIME,
    DAY_MS,
    DECIMAL128,
    DOUBLE,
    INT32,
    INT32_TYPES,
    INT64,
    INT64_TYPES,
    MAX_DOCUMENT,
    MS_PER_UNIT,
    NULL,
    STRING,
    nested,
)  # fmt: skip


@dataclass
class Piece:
    """Bytes of one column for every row: `lengths[i]` bytes of `flat` belong to row i."""

    lengths: np.ndarray  # int64
    flat: np.ndarray  # uint8


def _le_bytes(values: np.ndarray, dtype: str) -> np.ndarray:
    """Little-endian bytes of `values`, one row of bytes per value."""
    array = np.ascontiguousarray(values.astype(dtype, copy=False))
    return array.view(np.uint8).reshape(len(array), -1)


def _fixed(name: bytes, kind: int, valid: np.ndarray, body: np.ndarray) -> Piece:
    """Elements of one fixed-width type (`body`: one row of bytes per value)."""
    n, width = body.shape
    head = 1 + len(name) + 1
    table = np.empty((n, head + width), dtype=np.uint8)
    table[:, 0] = np.where(valid, kind, NULL)
    table[:, 1 : head - 1] = np.frombuffer(name, dtype=np.uint8)
    table[:, head - 1] = 0
    table[:, head:] = body
    lengths = np.where(valid, head + width, head).astype(np.int64)
    if valid.all():
        return Piece(lengths, table.reshape(-1))
    return Piece(lengths, table[np.arange(head + width) < lengths[:, None]])


def _varying(name: bytes, kind: int, series: pl.Series) -> list[Piece]:
    """String (kind 2) or binary (kind 5) elements: a header, the bytes, a NUL for text."""
    arrow = series.to_arrow()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    arrow = arrow.cast(pa.large_binary())
    valid = ~series.is_null().to_numpy()
    offsets = np.frombuffer(arrow.buffers()[1], dtype=np.int64)[
        arrow.offset : arrow.offset + len(arrow) + 1
    ]
    data = (
        np.frombuffer(arrow.buffers()[2], dtype=np.uint8) if len(arrow) else np.zeros(0, np.uint8)
    )
    sizes = np.diff(offsets)
    if kind == STRING:
        head = _fixed(name, STRING, valid, _le_bytes(sizes + 1, "<i4"))
        tail = np.zeros(int(valid.sum()), dtype=np.uint8)
        return [
            head,
            Piece(sizes, data[offsets[0] : offsets[-1]]),
            Piece(valid.astype(np.int64), tail),
        ]
    prefix = np.zeros((len(sizes), 5), dtype=np.uint8)
    prefix[:, :4] = _le_bytes(sizes, "<i4")  # then subtype 0, generic binary
    head = _fixed(name, BINARY, valid, prefix)
    return [head, Piece(sizes, data[offsets[0] : offsets[-1]])]


def _decimal_body(series: pl.Series) -> np.ndarray:
    """Decimal128 (IEEE 754 BID) bytes of a polars Decimal column, exponent -scale."""
    scale = series.dtype.scale  # type: ignore[attr-defined]
    arrow = series.to_arrow()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    words = np.frombuffer(arrow.buffers()[1], dtype="<u8")[2 * arrow.offset :][: 2 * len(arrow)]
    low, high = words[0::2].copy(), words[1::2].copy()
    negative = (high >> np.uint64(63)).astype(bool)
    neg_low = ~low + np.uint64(1)
    neg_high = ~high + (low == 0).astype(np.uint64)
    low = np.where(negative, neg_low, low)
    high = np.where(negative, neg_high, high)
    exponent = np.uint64(6176 - scale) << np.uint64(49)
    high = (
        (high & np.uint64((1 << 49) - 1)) | exponent | (negative.astype(np.uint64) << np.uint64(63))
    )
    out = np.empty((len(low), 2), dtype="<u8")
    out[:, 0], out[:, 1] = low, high
    return out.view(np.uint8).reshape(len(low), 16)


def _pieces(name: str, series: pl.Series) -> list[Piece]:
    """The BSON elements of one column, as pieces in row order."""
    key = name.encode()
    dtype = series.dtype
    valid = ~series.is_null().to_numpy()
    if nested(dtype):
        return [_python_elements(key, series)]
    if dtype == pl.Null:
        return [_fixed(key, NULL, valid, np.zeros((len(series), 0), np.uint8))]
    if isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.String:
        return _varying(key, STRING, series.cast(pl.String))
    if dtype == pl.Binary:
        return _varying(key, BINARY, series)
    if isinstance(dtype, pl.Decimal):
        return [_fixed(key, DECIMAL128, valid, _decimal_body(series))]
    physical = series.to_physical().fill_null(0)
    if dtype == pl.Boolean:
        return [_fixed(key, BOOL, valid, _le_bytes(physical.cast(pl.UInt8).to_numpy(), "u1"))]
    if dtype in (pl.Float32, pl.Float64):
        return [_fixed(key, DOUBLE, valid, _le_bytes(physical.to_numpy(), "<f8"))]
    if dtype in INT32_TYPES:
        return [_fixed(key, INT32, valid, _le_bytes(physical.to_numpy(), "<i4"))]
    if dtype == pl.Date:
        millis = physical.cast(pl.Int64).to_numpy() * DAY_MS
        return [_fixed(key, DATETIME, valid, _le_bytes(millis, "<i8"))]
    if isinstance(dtype, pl.Datetime):
        millis = physical.to_numpy() // MS_PER_UNIT[dtype.time_unit]
        return [_fixed(key, DATETIME, valid, _le_bytes(millis, "<i8"))]
    if dtype in INT64_TYPES or isinstance(dtype, pl.Duration):
        return [_fixed(key, INT64, valid, _le_bytes(physical.cast(pl.Int64).to_numpy(), "<i8"))]
    raise TypeError(f"no BSON encoding for {dtype}")


def _python_elements(key: bytes, series: pl.Series) -> Piece:
    """Lists and structs, value by value through pymongo's own encoder (their slow path)."""
    import bson

    name = key.decode()
    null = bytes([NULL]) + key + b"\x00"
    parts = [null if v is None else bson.encode({name: v})[4:-1] for v in series.to_list()]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    return Piece(lengths, np.frombuffer(b"".join(parts), dtype=np.uint8))


def _binary(lengths: np.ndarray, flat: np.ndarray) -> pa.Array:
    """Row i's bytes are the next `lengths[i]` bytes of `flat`, as an Arrow binary array."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(flat))]
    return pa.Array.from_buffers(pa.large_binary(), len(lengths), buffers)


def encode_batch(batch: pl.DataFrame) -> pa.Array:
    """The batch's rows as BSON documents, one Arrow binary value each.

    Each column's elements are built with numpy, then Arrow joins them row by row behind each
    document's length. A row longer than BSON's 16 MB is refused, naming its widest column.
    """
    import pyarrow.compute as pc

    n = batch.height
    pieces = [p for name in batch.columns for p in _pieces(name, batch[name])]
    sizes = np.full(n, 5, dtype=np.int64)
    for piece in pieces:
        sizes += piece.lengths
    if n and sizes.max() > MAX_DOCUMENT:
        row = int(sizes.argmax())
        widest = max(batch.columns, key=lambda c: len(str(batch[c][row])))
        raise ValueError(
            f"column `{widest}`: row {row} would be a {sizes[row]:,}-byte document, over"
            f" MongoDB's {MAX_DOCUMENT:,}-byte limit"
        )
    head = _binary(np.full(n, 4, np.int64), _le_bytes(sizes, "<i4").reshape(-1))
    tail = _binary(np.ones(n, np.int64), np.zeros(n, np.uint8))
    parts = [head, *(_binary(p.lengths, p.flat) for p in pieces), tail]
    return pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.large_binary()))


def raw_documents(batch: pl.DataFrame) -> list[Any]:
    """The batch as `RawBSONDocument`s (one bytes object each), ready for pymongo."""
    from bson.raw_bson import RawBSONDocument

    return list(map(RawBSONDocument, encode_batch(batch).to_pylist()))
