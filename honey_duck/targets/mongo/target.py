"""The MongoDB sink: Arrow batches encoded to BSON in bulk, staged and renamed into place.

Writing never builds a Python dict per row: each batch's columns become BSON element bytes
with numpy (`encode_batch`), cut into `RawBSONDocument`s that pymongo sends as they are.
Reading goes through pymongoarrow (`find_raw_batches` + `PyMongoArrowContext`), one Arrow
table per server batch, cast back to the exact polars types of the schema record kept in the
`_honey_duck_schemas` collection of the same database.

    replace        staging collection, its indexes, renameCollection(dropTarget=True)
    replace_slice  delete the slice and insert its rows in one transaction (a replica set);
                   without transactions, a pending marker that readers refuse until a
                   rerun of the slice completes
    upsert         unique index on the keys, unordered UpdateOne($set, upsert=True) batches
    append         insert batches (in one transaction where the server has them)
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import dagster as dg
import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from honey_duck import seam
from honey_duck.seam import Capabilities, Session, SinkIOManager, Target, Write
from honey_duck.seam.faults import ConnectFailed, OutcomeUnknown
from honey_duck.seam.records import SchemaRecord, now

RECORDS = "_honey_duck_schemas"
STAGING = ".__hd_staging."
MAX_DOCUMENT = 16 * 1024 * 1024  # BSON's limit on one document
SEND_ROWS = 10_000  # rows encoded and sent at a time (pymongo splits them into messages)
# the instants a BSON datetime holds that the server can decode (years 1 to 9999)
MIN_MS, MAX_MS = -62_135_596_800_000, 253_402_300_799_999
MS_PER_UNIT = {"ms": 1, "us": 1_000, "ns": 1_000_000}
DAY_MS = 86_400_000

# BSON element types
DOUBLE, STRING, DOCUMENT, BINARY, BOOL, DATETIME, NULL = 1, 2, 3, 5, 8, 9, 10
INT32, INT64, DECIMAL128 = 0x10, 0x12, 0x13

INT32_TYPES = (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16)
INT64_TYPES = (pl.Int64, pl.UInt32, pl.UInt64, pl.Time, pl.Duration)
# what a list or struct may hold: values whose Python form BSON keeps exactly
NESTED_LEAVES = (*INT32_TYPES, pl.Int64, pl.UInt32, pl.Float32, pl.Float64, pl.String,
                 pl.Boolean, pl.Binary, pl.Null, pl.Categorical, pl.Enum)  # fmt: skip


def _nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


def _name_problem(name: str) -> str | None:
    """Why MongoDB cannot take `name` as a field name as it is, or None."""
    if name == "":
        return "an empty field name"
    if "\x00" in name:
        return "a field name cannot hold NUL"
    if name.startswith("$"):
        return "a field name starting with `$` is an operator to MongoDB"
    if "." in name:
        return "a dot in a field name is a path to MongoDB's queries and updates"
    if name == "_id":
        return "`_id` is the document id MongoDB gives each row"
    return None


def _field_problem(name: str) -> str | None:
    """Why a struct field cannot be named `name` (`_id` is special only at the top)."""
    return None if name == "_id" else _name_problem(name)


def _leaf_problem(dtype: pl.DataType) -> str | None:
    """Why a list or struct holding `dtype` cannot be stored exactly, or None."""
    if isinstance(dtype, pl.List | pl.Array):
        return _leaf_problem(dtype.inner)
    if isinstance(dtype, pl.Struct):
        for field in dtype.fields:
            if why := _field_problem(field.name):
                return f"struct field `{field.name}`: {why}"
            if why := _leaf_problem(field.dtype):
                return why
        return None
    if dtype.base_type() in NESTED_LEAVES:
        return None
    return (
        "MongoDB lists and structs here hold only signed integers up to 64 bits, unsigned ones"
        f" up to 32, floats, text, booleans and bytes, not {dtype}"
    )


def _scalar_problem(dtype: pl.DataType) -> str | None:
    """Why a column of `dtype` (not a list or struct) cannot be stored, or None."""
    known = (*INT32_TYPES, *INT64_TYPES, pl.Float32, pl.Float64, pl.String, pl.Boolean,
             pl.Binary, pl.Null, pl.Date, pl.Datetime, pl.Decimal, pl.Categorical,
             pl.Enum)  # fmt: skip
    if dtype.base_type() in known:
        return None
    return f"BSON has no type that holds polars {dtype} exactly"


# ---------------------------------------------------------------------------------------------
# Encoding: a polars batch as BSON documents, column by column, in numpy
# ---------------------------------------------------------------------------------------------


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
    if _nested(dtype):
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


# ---------------------------------------------------------------------------------------------
# Decoding: pymongoarrow's Arrow batches back to the recorded polars types
# ---------------------------------------------------------------------------------------------


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

    flat = {c: t for c, t in schema.items() if not _nested(t)}
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
    nested = [c for c, t in schema.items() if _nested(t)]
    if nested:
        documents = bson.decode_all(raw, codec_options)
        for name in nested:
            values = [d.get(name) for d in documents]
            columns[name] = pl.Series(name, values, dtype=schema[name])
    height = next(iter(columns.values())).len() if columns else 0
    return pl.DataFrame([columns[c] for c in schema], height=height)


# ---------------------------------------------------------------------------------------------
# Filters: partition slices as queries on the stored BSON values
# ---------------------------------------------------------------------------------------------


def _bson_value(value: Any, dtype: pl.DataType) -> Any:
    """A Python value of a polars column as the column stores it in BSON."""
    import bson

    if value is None:
        return None
    (document,) = encode_batch(pl.DataFrame({"v": pl.Series([value], dtype=dtype)})).to_pylist()
    options = bson.CodecOptions(datetime_conversion=bson.DatetimeConversion.DATETIME_MS)
    return bson.decode(document, options)["v"]


def _moment(moment: datetime, dtype: pl.DataType) -> Any:
    """A window edge as the BSON datetime a Date or Datetime column stores for it."""
    from bson.datetime_ms import DatetimeMS

    if dtype == pl.Date:
        return DatetimeMS(
            int(datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp() * 1000)
        )
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        moment = (
            moment.replace(tzinfo=UTC)
            if moment.tzinfo is None
            else moment.replace(tzinfo=None).replace(tzinfo=UTC)
        )
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return DatetimeMS(int(moment.timestamp() * 1000))


def slice_filter(partitions: seam.PartitionSlice | None, schema: Mapping[str, Any]) -> dict:
    """The query matching exactly the rows of `partitions` (all rows when None)."""
    if partitions is None:
        return {}

    def bound(column: str, value: seam.Bound) -> dict:
        if column not in schema:
            raise KeyError(f"partition column `{column}` is not stored (columns: {list(schema)})")
        dtype = schema[column]
        if isinstance(value, seam.Window):
            return {column: {"$gte": _moment(value.start, dtype), "$lt": _moment(value.end, dtype)}}
        return {column: _bson_value(seam.typed_key(column, value, dtype), dtype)}

    covering = partitions.covering_window()
    if covering is not None:
        return bound(*covering)
    ors = []
    for part in partitions.parts:
        if not part.bounds:
            return {}
        clauses = [bound(c, b) for c, b in part.bounds.items()]
        ors.append(clauses[0] if len(clauses) == 1 else {"$and": clauses})
    return ors[0] if len(ors) == 1 else {"$or": ors}


# ---------------------------------------------------------------------------------------------
# Where an asset lives, and the target
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    database: str
    name: str

    def __str__(self) -> str:
        return f"{self.database}.{self.name}"


def _transient_mongo(exc: BaseException) -> bool:
    from pymongo import errors

    if isinstance(exc, errors.OperationFailure):
        labels = ("TransientTransactionError", "RetryableWriteError")
        return any(exc.has_error_label(label) for label in labels)
    return isinstance(exc, errors.AutoReconnect | errors.ServerSelectionTimeoutError)


class MongoTarget(Target):
    """A MongoDB database: bulk BSON in, pymongoarrow out."""

    word = "mongo"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self,
        connection: MongoConnection,
        database: str,
        batch_rows: int,
        transactions: bool | None,
    ) -> None:
        from pymongo import uri_parser

        url = connection.url
        self.url, self.database, self.batch_rows = url, database, batch_rows
        self.transactions, self.timeout_ms = transactions, connection.timeout_ms
        try:
            parsed = uri_parser.parse_uri(url, validate=False, warn=True)
        except Exception as exc:  # its message may quote the URL, password and all
            shown = re.sub(r"//[^@/]*@", "//***@", str(exc)).replace(url, "***")
            raise ValueError(f"the MongoDB URL is not valid: {shown}") from None
        self.password = parsed.get("password")
        self.where = ",".join(f"{h}:{p}" for h, p in parsed.get("nodelist") or [])

    # -- what it keeps --------------------------------------------------------------------

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if _nested(dtype):
            return _leaf_problem(dtype)
        return _scalar_problem(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        named = [f"`{c}`: {why}" for c in schema if (why := _name_problem(c))]
        if named:
            raise ValueError(
                "column names MongoDB cannot take as field names: " + "; ".join(named)
                + "; rename the columns in the asset"
            )  # fmt: skip
        refusals = []
        for name, dtype in schema.items():
            col = seam.column(name)
            if dtype == pl.UInt64:
                refusals.append(seam.Refusal(
                    name, col > 2**63 - 1,
                    "BSON's largest integer is 2**63 - 1 (a signed 64-bit int)",
                ))  # fmt: skip
            elif isinstance(dtype, pl.Decimal) and (dtype.precision or 38) > 34:
                limit = pl.lit(
                    Decimal(10**34).scaleb(-dtype.scale), dtype=pl.Decimal(38, dtype.scale)
                )
                refusals.append(seam.Refusal(
                    name, col.abs() >= limit, "Decimal128 holds at most 34 significant digits",
                ))  # fmt: skip
            elif dtype == pl.Date:
                days = col.cast(pl.Int32)
                refusals.append(seam.Refusal(
                    name, (days < MIN_MS // DAY_MS) | (days > MAX_MS // DAY_MS),
                    "the server holds dates of the years 1 to 9999 only",
                ))  # fmt: skip
            elif isinstance(dtype, pl.Datetime):
                per_ms = MS_PER_UNIT[dtype.time_unit]
                raw = col.to_physical()
                refusals.append(seam.Refusal(
                    name, raw % per_ms != 0,
                    "a BSON datetime keeps milliseconds; this value has a finer part",
                ))  # fmt: skip
                refusals.append(seam.Refusal(
                    name, (raw < MIN_MS * per_ms) | (raw > MAX_MS * per_ms + per_ms - 1),
                    "the server holds datetimes of the years 1 to 9999 (UTC) only",
                ))  # fmt: skip
            elif dtype in (pl.String, pl.Binary):
                size = col.str.len_bytes() if dtype == pl.String else col.bin.size()
                refusals.append(seam.Refusal(
                    name, size > MAX_DOCUMENT - 1024,
                    f"a MongoDB document holds at most {MAX_DOCUMENT:,} bytes",
                ))  # fmt: skip
        return refusals

    # -- where ----------------------------------------------------------------------------

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> Collection:
        meta = {k: seam.metadata_value(v) for k, v in metadata.items()}
        name = meta.get("collection") or ".".join(key.path)
        problem = _collection_problem(name)
        if problem:
            raise ValueError(f"collection name {name!r}: {problem}")
        return Collection(meta.get("database") or self.database, name)

    def table_name(self, location: Collection) -> str:
        return str(location)

    def uri(self, location: Collection, partitions: Any = None) -> str:
        return f"mongodb://{self.where}/{location}"

    def secrets(self) -> Sequence[str | None]:
        return [self.password, self.url] if self.password else []

    def transient(self, exc: BaseException) -> bool:
        if isinstance(exc, OutcomeUnknown):
            return exc.__cause__ is not None and self.transient(exc.__cause__)
        return super().transient(exc) or _transient_mongo(exc)

    # -- connecting -----------------------------------------------------------------------

    def client(self) -> Any:
        import pymongo

        return pymongo.MongoClient(
            self.url,
            serverSelectionTimeoutMS=self.timeout_ms,
            connectTimeoutMS=self.timeout_ms,
            appname="honey_duck",
            tz_aware=False,
        )

    @contextmanager
    def session(self) -> Iterator[MongoSession]:
        from pymongo import errors

        client = self.client()
        try:
            try:
                hello = client.admin.command("hello")
            except errors.PyMongoError as exc:
                auth = isinstance(exc, errors.OperationFailure) and exc.code in (13, 18)
                raise ConnectFailed(
                    f"cannot connect to MongoDB at {self.where}: {exc}",
                    transient=not auth and _transient_mongo(exc),
                ) from None
            transactions = self.transactions
            if transactions is None:
                transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
            with client.start_session() as session:
                yield MongoSession(self, client, session, transactions)
        finally:
            client.close()


def _collection_problem(name: str) -> str | None:
    if not name or "\x00" in name or "$" in name:
        return "MongoDB collection names are non-empty and hold no NUL or `$`"
    if name.startswith("system.") or STAGING in name or name == RECORDS:
        return "reserved by MongoDB or by this sink"
    return None


# ---------------------------------------------------------------------------------------------
# The session: the contract's verbs on one client
# ---------------------------------------------------------------------------------------------


def _staging_name(name: str) -> str:
    return f"{name}{STAGING}{socket.gethostname()}.{os.getpid()}"


class MongoSession(Session):
    def __init__(self, target: MongoTarget, client: Any, session: Any, transactions: bool) -> None:
        self.target, self.client, self.session = target, client, session
        self.transactions = transactions

    def db(self, location: Collection) -> Any:
        return self.client[location.database]

    # -- the schema record ------------------------------------------------------------------

    def _record_doc(self, location: Collection) -> dict | None:
        return self.db(location)[RECORDS].find_one({"_id": location.name}, session=self.session)

    def record(self, location: Collection) -> SchemaRecord | None:
        """The record describing what the collection holds now.

        A replace saves the new schema as `next` (with its staging collection's name) before
        its rename and makes it `current` after; a record still holding `next` says which
        side of the rename the writer stopped at: its staging collection still there means
        the rename never happened.
        """
        doc = self._record_doc(location)
        if doc is None:
            return None
        pending = doc.get("next")
        if pending:
            staged = self.db(location).list_collection_names(
                filter={"name": pending["staging"]}, session=self.session
            )
            if not staged:  # renamed into place, then the writer stopped
                return SchemaRecord.from_json(pending["record"])
        current = doc.get("current")
        return SchemaRecord.from_json(current) if current else None

    def save_record(
        self, location: Collection, schema: Mapping[str, Any], keys: Sequence[str], **extra: Any
    ) -> None:
        record = SchemaRecord(pl.Schema(schema), tuple(keys), now())
        self.db(location)[RECORDS].update_one(
            {"_id": location.name},
            {"$set": {"current": record.to_json()}, "$unset": {"next": "", "pending_slices": ""}}
            if not extra
            else {"$set": {"current": record.to_json(), **extra}},
            upsert=True,
            session=self.session,
        )

    def stored_schema(self, location: Collection, partitions: Any = None) -> pl.Schema | None:
        record = self.record(location)
        return None if record is None else record.schema

    # -- helpers --------------------------------------------------------------------------

    def _keys(self, write: Write, location: Collection) -> tuple[str, ...]:
        """The upsert keys this collection is kept unique on (this write's, else recorded)."""
        if write.keys:
            return write.keys
        record = self.record(location)
        return record.keys if record else ()

    def _batches(self, write: Write) -> Iterator[pl.DataFrame]:
        """The incoming rows, in the schema's column order, in bounded batches.

        Each `batch_rows` batch is sent in slices of at most `SEND_ROWS` rows: the BSON of
        one slice (three copies while it is built) is what a write holds beyond the batch.
        """
        present = [c for c in write.schema if c in write.incoming]
        for batch in seam.iter_batches(write.frame.select(present), write.batch_rows):
            yield from batch.iter_slices(SEND_ROWS)

    def _insert(self, collection: Any, write: Write, session: Any = None) -> int:
        rows = 0
        for batch in self._batches(write):
            collection.insert_many(raw_documents(batch), ordered=True, session=session)
            rows += batch.height
        return rows

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A multi-document transaction (its commit's outcome may be unknown on a failure)."""
        from pymongo import errors

        self.session.start_transaction()
        try:
            yield self.session
        except BaseException:
            if self.session.in_transaction:
                self.session.abort_transaction()
            raise
        try:
            self.session.commit_transaction()
        except errors.PyMongoError as exc:
            if exc.has_error_label("UnknownTransactionCommitResult"):
                raise OutcomeUnknown(f"the commit's outcome is unknown: {exc}") from exc
            raise

    def _unique_index(self, collection: Any, keys: Sequence[str], session: Any = None) -> None:
        if keys:
            collection.create_index(
                [(k, 1) for k in keys], unique=True, name="_hd_keys_" + "_".join(keys),
                session=session,
            )  # fmt: skip

    def _count(self, collection: Any, query: dict, session: Any = None) -> int:
        return collection.count_documents(query, session=session)

    # -- the verbs --------------------------------------------------------------------------

    def replace(self, write: Write) -> int:
        from pymongo import errors

        location: Collection = write.location
        db = self.db(location)
        staging = _staging_name(location.name)
        self._sweep(location, staging)
        db.drop_collection(staging)
        db.create_collection(staging)
        try:
            rows = self._stage(write, staging)
            self.client.admin.command(
                "renameCollection", f"{location.database}.{staging}",
                to=str(location), dropTarget=True,
            )  # fmt: skip
        except errors.AutoReconnect as exc:  # the rename may have happened: the retry's sweep
            raise OutcomeUnknown(f"the rename's outcome is unknown: {exc}") from exc  # decides
        except BaseException:
            # `next` first (a `next` whose staging collection is gone reads as renamed); a
            # failing clean-up stops there and must not hide the failure being raised
            with contextlib.suppress(Exception):
                db[RECORDS].update_one({"_id": location.name}, {"$unset": {"next": ""}})
                db.drop_collection(staging)
            raise
        self.save_record(location, write.schema, self._keys(write, location))
        return rows

    def _stage(self, write: Write, staging: str) -> int:
        """Load the staging collection, give it the target's indexes, and note it as `next`."""
        location: Collection = write.location
        db = self.db(location)
        indexes = [i for i in db[location.name].list_indexes() if i["name"] != "_id_"]
        keys = self._keys(write, location)
        rows = self._insert(db[staging], write)
        for index in indexes:
            options = {k: v for k, v in index.items() if k not in ("key", "v", "ns")}
            db[staging].create_index(list(index["key"].items()), **options)
        if keys and not any(i.get("unique") and list(i["key"]) == list(keys) for i in indexes):
            self._unique_index(db[staging], keys)
        record = SchemaRecord(pl.Schema(write.schema), tuple(keys), now())
        db[RECORDS].update_one(
            {"_id": location.name},
            {"$set": {"next": {"staging": staging, "record": record.to_json()}}},
            upsert=True,
        )
        return rows

    def _sweep(self, location: Collection, ours: str) -> None:
        """Drop staging collections of writers that died on this host, and their `next`."""
        db = self.db(location)
        host = socket.gethostname()
        prefix = f"{location.name}{STAGING}{host}."
        doc = self._record_doc(location) or {}
        pending = (doc.get("next") or {}).get("staging")
        for name in db.list_collection_names():
            if not name.startswith(prefix):
                continue
            pid = name[len(prefix) :]
            if name != ours and pid.isdigit() and seam.pid_alive(int(pid)):
                continue
            if name == pending:
                db[RECORDS].update_one({"_id": location.name}, {"$unset": {"next": ""}})
            db.drop_collection(name)
        if pending and not db.list_collection_names(filter={"name": pending}):
            record = self.record(location)  # renamed, never promoted: promote it now
            if record is not None:
                self.save_record(location, record.schema, record.keys)

    def replace_slice(self, write: Write) -> int:
        location: Collection = write.location
        collection = self.db(location)[location.name]
        query = slice_filter(write.partitions, write.schema)
        keys = self._keys(write, location)
        if self.transactions:
            if location.name not in self.db(location).list_collection_names():
                self.db(location).create_collection(location.name)
            self._unique_index(collection, keys)
            with self._transaction() as session:
                collection.delete_many(query, session=session)
                self._insert(collection, write, session)
                self.save_record(location, write.schema, keys)
                return self._count(collection, query, session)
        # Without transactions: a marker names the slice while it is half-replaced; a reader
        # refuses the collection until a rerun of the slice completes and clears it.
        label = write.partitions.label() if write.partitions else ""
        records = self.db(location)[RECORDS]
        records.update_one(
            {"_id": location.name}, {"$addToSet": {"pending_slices": label}}, upsert=True
        )
        self._unique_index(collection, keys)
        collection.delete_many(query)
        self._insert(collection, write)
        record = SchemaRecord(pl.Schema(write.schema), tuple(keys), now())
        records.update_one(
            {"_id": location.name},
            {"$set": {"current": record.to_json()}, "$pull": {"pending_slices": label}},
        )
        return self._count(collection, query)

    def append(self, write: Write) -> int:
        location: Collection = write.location
        collection = self.db(location)[location.name]
        keys = self._keys(write, location)
        if self.transactions:
            if location.name not in self.db(location).list_collection_names():
                self.db(location).create_collection(location.name)
            with self._transaction() as session:
                self._insert(collection, write, session)
                self.save_record(location, write.schema, keys)
                return self._count(
                    collection, slice_filter(write.partitions, write.schema), session
                )
        try:
            self._insert(collection, write)
        except Exception as exc:
            raise OutcomeUnknown(f"an append stopped part-way: {exc}") from exc
        self.save_record(location, write.schema, keys)
        return self._count(collection, slice_filter(write.partitions, write.schema))

    def upsert(self, write: Write) -> int:
        from pymongo import UpdateOne

        location: Collection = write.location
        collection = self.db(location)[location.name]
        keys = list(write.keys)
        self._unique_index(collection, keys)
        for batch in self._batches(write):
            documents = raw_documents(batch)
            filters = raw_documents(batch.select(keys))
            operations = [
                UpdateOne(f, {"$set": d}, upsert=True)
                for f, d in zip(filters, documents, strict=True)
            ]
            collection.bulk_write(operations, ordered=False)
        self.save_record(location, write.schema, keys)
        return self._count(collection, slice_filter(write.partitions, write.schema))

    def read(
        self,
        location: Collection,
        columns: Sequence[str] | None,
        partitions: seam.PartitionSlice | None,
    ) -> pl.LazyFrame:
        doc = self._record_doc(location) or {}
        if doc.get("pending_slices"):
            raise ValueError(
                f"partitions {doc['pending_slices']} of `{location}` were being replaced without"
                " a transaction when their writer stopped: rerun them before reading"
            )
        record = self.record(location)
        if record is None:
            raise ValueError(f"`{location}` was never written by this sink (no schema record)")
        stored = record.schema
        if columns is not None:
            missing = [c for c in columns if c not in stored]
            if missing:
                raise KeyError(f"columns {missing} are not stored in `{location}`")
        wanted = pl.Schema({c: stored[c] for c in (columns or stored.names())})
        return scan(self.target, location, wanted, slice_filter(partitions, stored))


def scan(target: MongoTarget, location: Collection, schema: pl.Schema, query: dict) -> pl.LazyFrame:
    """A LazyFrame fed one server batch at a time, on a client of its own."""

    flat = [c for c, t in schema.items() if not _nested(t)]
    projection: dict[str, Any] = {"_id": 0, **{c: 1 for c in schema}}
    for i, column in enumerate(flat):
        if schema[column] in (pl.Float32, pl.Float64):
            projection[_nan_field(i, schema)] = {"$type": f"${column}"}

    def frames(batch_size: int | None) -> Iterator[pl.DataFrame]:
        client = target.client()
        try:
            collection = client[location.database][location.name]
            cursor = collection.find_raw_batches(
                query, projection=projection, batch_size=batch_size or target.batch_rows
            )
            for raw in cursor:
                yield decode_batch(raw, schema, collection.codec_options)
        finally:
            client.close()

    return seam.scan_frames(frames, schema)


# ---------------------------------------------------------------------------------------------
# The IO manager
# ---------------------------------------------------------------------------------------------


class MongoConnection(dg.Config):
    """Where the server is and who to connect as: a MongoDB URL, credentials inside."""

    url: str = Field(
        default="mongodb://localhost:27017/",
        description="A MongoDB URL (`mongodb://user:password@host:port/`); use dg.EnvVar.",
    )
    timeout_ms: int = Field(default=5_000, description="Server selection and connect timeout.")


class MongoIOManager(SinkIOManager):
    """Writes polars frames to MongoDB collections: bulk BSON, staging + rename, transactions.

    Example::

        mongo_io_manager = MongoIOManager(
            connection=MongoConnection(url=dg.EnvVar("MONGO_URL")), database="analytics"
        )
    """

    connection: MongoConnection = Field(
        default_factory=MongoConnection, description="The server, and who to connect as."
    )
    database: str = Field(default="honey_duck", description="The database of the collections.")
    transactions: bool | None = Field(
        default=None,
        description="Replace partitions in a transaction (None: when the server is a replica set).",
    )

    @classmethod
    def target_class(cls) -> type[Target]:
        return MongoTarget

    def target(self) -> MongoTarget:
        return MongoTarget(self.connection, self.database, self.batch_rows, self.transactions)
