"""Values a SQL target cannot keep exactly, refused before anything is written.

The rules are written once for the family; a dialect declares what its engine holds (`limits`)
and how it stores each type (a native column, an array, or JSON), and the rules follow: a
value the server would reject half-way through a load, or would change on the way in, is
counted in the validation pass and refused there, naming the column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from honey_duck import seam
from honey_duck.seam import dtypes
from honey_duck.targets.sql.dialect import Dialect, json_text

MICROSECONDS = 2**63 - 1  # the most microseconds 64 bits hold (about 292,471 years)
JULIAN_1970 = 2_440_588  # the Julian day of 1970-01-01; day 0 is 4714-11-24 BC (PostgreSQL's first)


@dataclass(frozen=True)
class Range:
    """The values of one kind an engine keeps, both ends included, and that said in words."""

    first: int
    last: int
    words: str


@dataclass(frozen=True)
class Limits:
    """What an engine holds, as the refusals need it (None: no limit we know of)."""

    dates: Range | None  # days since 1970-01-01 (None: every date polars holds)
    timestamps: Range  # microseconds since 1970-01-01 (UTC for tz-aware values)
    keeps_nul: bool = False  # text may hold U+0000
    text_bytes: int | None = None  # one text value, in UTF-8 bytes
    binary_bytes: int | None = None  # one binary value
    json_string_bytes: int | None = None  # one string inside a nested (JSON) value
    json_bytes: int | None = None  # one nested value's JSON text


POSTGRES = Limits(
    dates=Range(-JULIAN_1970, 2_145_042_905, "from 4714-11-24 BC to 5874897-12-31"),
    # the upper end is polars' own: PostgreSQL's (294276 AD) lies beyond 64-bit microseconds
    timestamps=Range(
        -JULIAN_1970 * 86_400_000_000, MICROSECONDS, "from 4714-11-24 BC to 294247-01-10"
    ),
)

LeafRule = Callable[[pl.Expr, pl.DataType], pl.Expr | None]


def value_refusals(dialect: Dialect, schema: pl.Schema) -> list[seam.Refusal]:
    """The family's refusals of `schema`'s values, as `dialect` stores them, within its limits."""
    server, limits = dialect.name, dialect.limits
    # (why, rule) for values of native columns and SQL arrays, leaf by leaf
    stamps = limits.timestamps
    native: list[tuple[str, LeafRule]] = [
        (f"{server} keeps microseconds: a value with nanoseconds would be cut", _finer_than_us),
        (f"{server} keeps timestamps {stamps.words}", _outside_timestamps(stamps)),
        (f"{server} keeps durations of up to 292,471 years", _beyond_microseconds),
    ]
    if limits.dates is not None:
        native.append((f"{server} keeps dates {limits.dates.words}", _outside_dates(limits.dates)))
    if limits.text_bytes is not None:
        native.append(
            (f"{server} text holds at most {limits.text_bytes:,} bytes (UTF-8)",
             _longer_text(limits.text_bytes))
        )  # fmt: skip
    if limits.binary_bytes is not None:
        native.append(
            (f"{server} binary holds at most {limits.binary_bytes:,} bytes",
             _longer_binary(limits.binary_bytes))
        )  # fmt: skip
    nested: list[tuple[str, LeafRule]] = [
        (f"{server} keeps nested values as JSON, which has no NaN or infinity (they would"
         " become null)", _not_finite),
    ]  # fmt: skip
    if limits.json_string_bytes is not None:
        nested.append(
            (f"{server} keeps a string inside a nested value to {limits.json_string_bytes:,}"
             " bytes (UTF-8)", _longer_text(limits.json_string_bytes))
        )  # fmt: skip
    found = []
    for name, dtype in schema.items():
        column = seam.column(name)
        json = dialect.stores_as_json(dtype)
        for why, rule in nested if json else native:
            bad = dtypes.any_leaf(column, dtype, lambda e, t, rule=rule: rule(e, _instance(t)))
            if bad is not None:
                found.append(seam.Refusal(name, bad, why))
        if not limits.keeps_nul and (bad := _holds_nul(name, dtype)) is not None:
            found.append(seam.Refusal(name, bad, f"{server} text cannot hold the NUL character"))
        if json and limits.json_bytes is not None:
            too_big = json_text(name, dtype).str.len_bytes() > limits.json_bytes
            why = f"{server} keeps a nested value to {limits.json_bytes:,} bytes of JSON"
            found.append(seam.Refusal(name, too_big, why))
    return found


def _instance(dtype: pl.DataType) -> pl.DataType:
    """A type written as its class (`pl.List(pl.String)` holds the class) as an instance."""
    if isinstance(dtype, type):
        try:
            return dtype()
        except TypeError:  # a class that needs parameters (Enum): its class is all we know
            return dtype
    return dtype


def _text(dtype: pl.DataType) -> bool:
    return isinstance(_instance(dtype), pl.String | pl.Categorical | pl.Enum)


def _holds_nul(name: str, dtype: pl.DataType) -> pl.Expr | None:
    """Text holding NUL anywhere in the column, inside lists and structs too (a field name
    holding one is refused with the type, `Dialect.json_problem`)."""
    return dtypes.any_leaf(
        seam.column(name),
        dtype,
        lambda e, t: e.cast(pl.String).str.contains("\x00", literal=True) if _text(t) else None,
    )


def _finer_than_us(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    if isinstance(dtype, pl.Datetime | pl.Duration) and dtype.time_unit == "ns":
        return expr.to_physical() % 1000 != 0
    if dtype == pl.Time:  # nanoseconds since midnight, always
        return expr.to_physical() % 1000 != 0
    return None


def _outside_dates(dates: Range) -> LeafRule:
    def rule(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
        if dtype != pl.Date:
            return None
        days = expr.to_physical()
        return (days < dates.first) | (days > dates.last)

    return rule


def _outside_timestamps(stamps: Range) -> LeafRule:
    def rule(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
        if not isinstance(dtype, pl.Datetime) or dtype.time_unit == "ns":
            return None  # nanoseconds span 1677 to 2262: inside every engine's range
        # compared in the column's own unit, so that nothing overflows on the way
        per = 1000 if dtype.time_unit == "ms" else 1
        raw = expr.to_physical()
        return (raw < -(-stamps.first // per)) | (raw > stamps.last // per)

    return rule


def _beyond_microseconds(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    if not isinstance(dtype, pl.Duration) or dtype.time_unit != "ms":
        return None  # microseconds and nanoseconds fit 64-bit microseconds by definition
    return expr.to_physical().abs() > MICROSECONDS // 1000


def _longer_text(limit: int) -> LeafRule:
    def rule(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
        return expr.cast(pl.String).str.len_bytes() > limit if _text(dtype) else None

    return rule


def _longer_binary(limit: int) -> LeafRule:
    def rule(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
        return expr.bin.size() > limit if dtype == pl.Binary else None

    return rule


def _not_finite(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    if dtype not in (pl.Float32, pl.Float64):
        return None
    return expr.is_nan() | expr.is_infinite()
