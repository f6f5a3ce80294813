"""What BSON can hold: the element types, which polars types map to them, and the refusals."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from honey_duck import seam
from honey_duck.targets.mongo.names import name_problem

MAX_DOCUMENT = 16 * 1024 * 1024  # BSON's limit on one document
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


def nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


def field_problem(name: str) -> str | None:
    """Why a struct field cannot be named `name` (`_id` is special only at the top)."""
    return None if name == "_id" else name_problem(name)


def leaf_problem(dtype: pl.DataType) -> str | None:
    """Why a list or struct holding `dtype` cannot be stored exactly, or None."""
    if isinstance(dtype, pl.List | pl.Array):
        return leaf_problem(dtype.inner)
    if isinstance(dtype, pl.Struct):
        for field in dtype.fields:
            if why := field_problem(field.name):
                return f"struct field `{field.name}`: {why}"
            if why := leaf_problem(field.dtype):
                return why
        return None
    if dtype.base_type() in NESTED_LEAVES:
        return None
    return (
        "MongoDB lists and structs here hold only signed integers up to 64 bits, unsigned ones"
        f" up to 32, floats, text, booleans and bytes, not {dtype}"
    )


def scalar_problem(dtype: pl.DataType) -> str | None:
    """Why a column of `dtype` (not a list or struct) cannot be stored, or None."""
    known = (*INT32_TYPES, *INT64_TYPES, pl.Float32, pl.Float64, pl.String, pl.Boolean,
             pl.Binary, pl.Null, pl.Date, pl.Datetime, pl.Decimal, pl.Categorical,
             pl.Enum)  # fmt: skip
    if dtype.base_type() in known:
        return None
    return f"BSON has no type that holds polars {dtype} exactly"


def refusals(schema: pl.Schema) -> list[seam.Refusal]:
    """Values of these columns BSON would not keep exactly (and names it cannot take).

    A row too big for one document is `sizes.oversized`'s to refuse.
    """
    named = [f"`{c}`: {why}" for c in schema if (why := name_problem(c))]
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
            limit = pl.lit(Decimal(10**34).scaleb(-dtype.scale), dtype=pl.Decimal(38, dtype.scale))
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
    return refusals
