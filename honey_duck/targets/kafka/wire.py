"""What each polars type is in a message's JSON value, what is refused, and the way back.

Values are JSON built by polars in bulk from each batch. Types JSON cannot carry as polars
writes them travel in a wire form: Decimal as its text, Time as `HH:MM:SS.fffffffff`, Duration
as an integer count of its unit, Binary as base64, a zoned Datetime as its UTC instant. NaN and
infinity (JSON has neither) and dates outside years 1..9999 are refused before anything is
written, naming the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from honey_duck import seam
from honey_duck.seam import dtypes

_INTS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
# what a list or struct may hold: JSON carries these exactly at any depth
_NESTED_LEAVES = (*_INTS, pl.Boolean, pl.String, pl.Null)


def _no_json_form(dtype: pl.DataType) -> str | None:
    if isinstance(dtype, pl.Array):
        return "fixed-size arrays are not supported; cast the column to a List"
    if dtype.base_type() in (pl.Object, pl.Int128, pl.UInt128):
        return f"{dtype} has no JSON form that reads back exactly"
    return None


def unsupported(dtype: pl.DataType) -> str | None:
    """Why a column of `dtype` cannot travel as JSON exactly, or None."""
    if why := dtypes.first(dtype, _no_json_form):
        return why
    if not dtype.is_nested():
        return None
    inexact = [t for t in dtypes.leaves(dtype) if t.base_type() not in _NESTED_LEAVES]
    if not inexact:
        return None
    return (
        f"{inexact[0]} inside a list or struct is not carried exactly in JSON here (only"
        " integers, booleans and strings are); unnest the column or cast it"
    )


def wire_type(dtype: pl.DataType) -> pl.DataType:
    """The type a column has in the JSON values (what `str.json_decode` parses it as)."""
    if isinstance(dtype, pl.Decimal | pl.Categorical | pl.Enum) or dtype in (pl.Time, pl.Binary):
        return pl.String()
    if isinstance(dtype, pl.Duration):
        return pl.Int64()
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        return pl.Datetime(dtype.time_unit, "UTC")
    return dtype


def to_wire(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column as it is written into the JSON values."""
    col = seam.column(name)
    if isinstance(dtype, pl.Decimal | pl.Categorical | pl.Enum):
        col = col.cast(pl.String)
    elif dtype == pl.Time:
        col = col.dt.to_string("%H:%M:%S%.9f")
    elif dtype == pl.Binary:
        col = col.bin.encode("base64")
    elif isinstance(dtype, pl.Duration):
        col = col.cast(pl.Int64)
    elif isinstance(dtype, pl.Datetime) and dtype.time_zone:
        col = col.dt.convert_time_zone("UTC")
    return col.alias(name)


def from_wire(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column read from JSON (as `wire_type`), back to the type it was written with.

    A text that does not convert becomes null here, never an error: the reader's exactness
    check (`exact.py`) then refuses its message, naming the column and the key.
    """
    col = seam.column(name)
    if isinstance(dtype, pl.Decimal | pl.Categorical | pl.Enum):
        col = col.cast(dtype, strict=False)
    elif dtype == pl.Time:
        col = col.str.to_time("%H:%M:%S%.9f", strict=False)
    elif dtype == pl.Binary:
        col = col.str.decode("base64", strict=False)
    elif isinstance(dtype, pl.Duration):
        col = col.cast(dtype, strict=False)
    elif isinstance(dtype, pl.Datetime) and dtype.time_zone:
        col = col.dt.convert_time_zone(dtype.time_zone)
    return col.alias(name)


def json_values(schema: Mapping[str, pl.DataType], columns: Sequence[str] | None = None) -> pl.Expr:
    """One JSON object per row of `columns` (default: all), built by polars in bulk."""
    names = list(schema) if columns is None else list(columns)
    if not names:
        return pl.lit("{}")
    return pl.struct([to_wire(c, schema[c]) for c in names]).struct.json_encode()


def refusals(schema: pl.Schema) -> list[seam.Refusal]:
    """Values JSON cannot carry exactly: NaN and infinity, dates outside years 1..9999."""
    found = []
    for name, dtype in schema.items():
        col = seam.column(name)
        if dtype in (pl.Float32, pl.Float64):
            found.append(
                seam.Refusal(
                    name,
                    ~col.is_finite(),
                    "JSON has no NaN or infinity (a consumer would read null or fail);"
                    " replace them with null or a sentinel",
                )
            )
        elif dtype == pl.Date or isinstance(dtype, pl.Datetime):
            if isinstance(dtype, pl.Datetime) and dtype.time_zone:
                col = col.dt.convert_time_zone("UTC")
            found.append(
                seam.Refusal(
                    name,
                    ~col.dt.year().is_between(1, 9999),
                    "a date outside years 1..9999 has no ISO 8601 form JSON readers accept",
                )
            )
    return found


def decode(values: Sequence[bytes] | pl.Series, schema: pl.Schema) -> pl.DataFrame:
    """JSON values (one object per row) as a frame typed by the recorded `schema`.

    `str.json_decode` with the wire types: unlike `read_ndjson` it reads every integer width
    (nested ones too) and a column named "", and a field absent from an older message is null.
    """
    if len(values) == 0:
        return pl.DataFrame(schema=schema)
    wire = pl.Struct({c: wire_type(t) for c, t in schema.items()})
    if isinstance(values, pl.Series) and values.dtype == pl.String:
        text = values
    else:
        text = pl.Series("v", values, dtype=pl.Binary).cast(pl.String)
    frame = text.str.json_decode(wire).struct.unnest()
    return frame.select(from_wire(c, t) for c, t in schema.items())
