"""What a reader refuses: a stored value that does not fit the recorded type exactly.

pymongoarrow casts what it reads to the schema it is given: a double 1.5 in an Int64 field
reads as 1, a datetime at 03:00 in a Date field reads as its day. Another program that wrote
into a collection could change values that way unseen, so each read projects every column's
BSON type (`$type`), asks the server for documents with fields the record does not know,
and refuses, naming the
column and the row (never the value), a value of another BSON type, out of the type's range,
with a time of day in a Date, or with more decimal places than the recorded scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from honey_duck.targets.mongo.types import DAY_MS, INT32_TYPES

ABSENT = ("null", "missing")  # `$type` of a null and of a field the document lacks
DAY_NS = DAY_MS * 1_000_000


class StoredValueRefused(ValueError):
    """A stored value the schema record's type cannot hold exactly (another program wrote it)."""


def bson_types(dtype: pl.DataType) -> tuple[str, ...]:
    """The BSON types (`$type` names) a column of `dtype` may hold and read back exactly."""
    if dtype in INT32_TYPES:
        return ("int",)
    if dtype.is_integer() or dtype == pl.Time or isinstance(dtype, pl.Duration):
        return ("int", "long")  # pymongo writes a Python int as int32 when it fits
    if dtype.is_float():
        return ("double",)
    if dtype == pl.Boolean:
        return ("bool",)
    if isinstance(dtype, pl.Decimal):
        return ("decimal",)
    if dtype == pl.Binary:
        return ("binData",)
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return ("date",)
    if dtype == pl.Null:
        return ()
    return ("string",)  # String, Categorical, Enum


def misfits(
    read: pl.Series, restored: pl.Series, types: pl.Series, dtype: pl.DataType
) -> pl.Series:
    """Rows whose stored value `dtype` does not hold exactly.

    `read` is the column as pymongoarrow read it, `restored` in the recorded type (a value
    the cast could not keep is null there), `types` each row's BSON type name.
    """
    absent = types.is_in(ABSENT)
    lost = restored.is_null() & ~absent
    if dtype.is_float():  # pymongoarrow reads a NaN as null: the decoder puts it back
        lost = lost & (types != "double")
    bad = ~(absent | types.is_in(bson_types(dtype))) | lost
    if dtype == pl.Date:
        bad = bad | (read.cast(pl.Int64) % DAY_MS != 0).fill_null(False)
    elif dtype == pl.Float32:  # a double that a float32 does not hold
        bad = bad | (read.cast(pl.Float32).cast(pl.Float64) != read).fill_null(False)
    elif dtype == pl.Time:
        nanos = read.cast(pl.Int64)
        bad = bad | ((nanos < 0) | (nanos >= DAY_NS)).fill_null(False)
    return bad


def refuse(column: str, where: str, bad: pl.Series, first_row: int, why: str) -> None:
    """Raise for `bad` rows of `column`, if any, naming how many and the first one's number."""
    count = int(bad.sum())
    if count:
        row = first_row + int(bad.arg_true()[0])
        raise StoredValueRefused(
            f"column `{column}` of `{where}`: {why} ({count} row{'s' * (count != 1)} of this"
            f" batch, the first is row {row}); another program wrote it: rewrite the collection"
        )


def unknown_fields(collection: Any, query: dict, known: Sequence[str], where: str) -> None:
    """Raise when documents of the read hold fields the schema record does not list.

    One server-side query (`$jsonSchema` with no other properties allowed), which returns
    nothing for a collection only this sink wrote; it names the fields of the first found.
    """
    allowed = {"additionalProperties": False, "properties": {k: {} for k in ("_id", *known)}}
    odd: dict[str, Any] = {"$nor": [{"$jsonSchema": allowed}]}
    if query:
        odd = {"$and": [query, odd]}
    found = collection.find_one(odd, {"_id": 0})
    if found is None:
        return
    names = sorted(set(found) - set(known))
    count = collection.count_documents(odd)
    raise StoredValueRefused(
        f"documents of `{where}` hold fields the schema record does not know:"
        f" {', '.join(f'`{n}`' for n in names)} ({count} document{'s' * (count != 1)}; the"
        " fields named are the first one's); another program wrote them"
    )
