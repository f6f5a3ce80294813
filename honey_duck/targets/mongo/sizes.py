"""The size of each row's BSON document, as polars expressions (no row is encoded to know it).

The validation pass counts rows whose document would pass MongoDB's 16 MiB limit before the
first write, so a write never stops at its third batch with two applied. The sizes follow
`encode` exactly (a test compares them with the encoded bytes): scalars as `encode` writes
them, lists and structs as pymongo encodes their Python values (an int as int32 when it fits).
"""

from __future__ import annotations

import polars as pl

from honey_duck import seam
from honey_duck.targets.mongo.types import INT32_TYPES, MAX_DOCUMENT, nested

FIXED_WIDTHS: dict[type[pl.DataType], int] = {
    pl.Boolean: 1, pl.Float32: 8, pl.Float64: 8, pl.Date: 8, pl.Datetime: 8, pl.Decimal: 16,
    pl.Int64: 8, pl.UInt32: 8, pl.UInt64: 8, pl.Time: 8, pl.Duration: 8, pl.Null: 0,
    **dict.fromkeys(INT32_TYPES, 4),
}  # fmt: skip


def _text(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A string's body: its length, its UTF-8 bytes and a NUL."""
    if dtype != pl.String:
        value = value.cast(pl.String)
    return 4 + value.str.len_bytes().cast(pl.Int64) + 1


def _index_digits(length: pl.Expr) -> pl.Expr:
    """How many characters the indexes 0 .. length - 1 (a BSON array's keys) take together."""
    length = length.cast(pl.Int64)
    extra = [pl.max_horizontal(length - 10**d, pl.lit(0)) for d in range(1, 19)]
    return length + pl.sum_horizontal(extra)


def _body(value: pl.Expr, dtype: pl.DataType, top: bool) -> pl.Expr:
    """The bytes after an element's type and name, for a non-null `value` of `dtype`.

    `top`: a column of the frame (encoded by `encode`), else a value inside a list or struct
    (encoded by pymongo from its Python form).
    """
    if isinstance(dtype, pl.Array):
        return _body(value.arr.to_list(), pl.List(dtype.inner), top)
    if isinstance(dtype, pl.List):
        inner = _body(pl.element(), dtype.inner, top=False)
        items = pl.element().is_null().not_().cast(pl.Int64) * inner
        values = value.list.eval(items.fill_null(0)).list.sum().cast(pl.Int64)
        heads = 2 * value.list.len().cast(pl.Int64) + _index_digits(value.list.len())
        return 4 + heads + values + 1
    if isinstance(dtype, pl.Struct):
        total: pl.Expr = pl.lit(5, pl.Int64)
        for field in dtype.fields:
            part = value.struct.field(field.name)
            inner = _body(part, field.dtype, top=False)
            size = 2 + len(field.name.encode()) + pl.when(part.is_null()).then(0).otherwise(inner)
            total = total + size.cast(pl.Int64)
        return total
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return _text(value, dtype)
    if dtype == pl.Binary:
        return 4 + 1 + value.bin.size().cast(pl.Int64)
    if not top and dtype.is_integer():  # a Python int: int32 when it fits
        fits = value.cast(pl.Int64, strict=False).is_between(-(2**31), 2**31 - 1)
        return pl.when(fits).then(pl.lit(4, pl.Int64)).otherwise(pl.lit(8, pl.Int64))
    if not top and dtype.is_float():
        return pl.lit(8, pl.Int64)
    return pl.lit(FIXED_WIDTHS[dtype.base_type()], pl.Int64)


def element_size(name: str, dtype: pl.DataType) -> pl.Expr:
    """The bytes column `name` adds to each row's document (a null is its type and name)."""
    value = seam.column(name)
    head = 2 + len(name.encode())
    return (head + pl.when(value.is_null()).then(0).otherwise(_body(value, dtype, True))).cast(
        pl.Int64
    )


def variable(dtype: pl.DataType) -> bool:
    """Whether a column's elements differ in size from row to row beyond null or not."""
    return nested(dtype) or dtype in (pl.String, pl.Binary) or dtype.base_type() in (
        pl.Categorical, pl.Enum,
    )  # fmt: skip


def oversized(schema: pl.Schema) -> list[seam.Refusal]:
    """Rows whose document would pass MongoDB's limit, counted under the row's widest column.

    Nothing is checked when every column is of fixed width (no such row reaches the limit).
    """
    widths = [c for c, t in schema.items() if variable(t)]
    if not widths:
        return []
    sizes = {c: element_size(c, t) for c, t in schema.items()}
    over = 5 + pl.sum_horizontal(list(sizes.values())) > MAX_DOCUMENT
    widest = pl.max_horizontal([sizes[c] for c in widths])
    why = (
        f"a MongoDB document holds at most {MAX_DOCUMENT:,} bytes; the row's would be larger"
        " (this column is its widest part)"
    )
    return [seam.Refusal(c, over & (sizes[c] == widest), why) for c in widths]
