"""Hypothesis frames of every type the README's SQL type table claims, and how to compare them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import strategies as st

ZONES = ["UTC", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham"]
NAMES = st.one_of(
    st.sampled_from(['say "hi"', "100%", "%s", "Zoë ✓", "a" * 63, "É" * 31, "MiXeD", "a b"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8),
).filter(lambda name: 0 < len(name.encode()) <= 63)
TEXT = st.one_of(
    st.sampled_from(["", "x" * 5_000, "🦆\u200b\ufeff", "'; DROP TABLE t; --", "\\N", "\t\n"]),
    st.text(max_size=20),  # may hold NUL: refused by PostgreSQL, kept by DuckDB
)


def _ints(dtype: pl.DataType) -> st.SearchStrategy:
    info = {
        pl.Int8: (-(2**7), 2**7 - 1),
        pl.Int16: (-(2**15), 2**15 - 1),
        pl.Int32: (-(2**31), 2**31 - 1),
        pl.Int64: (-(2**63), 2**63 - 1),
        pl.UInt8: (0, 2**8 - 1),
        pl.UInt16: (0, 2**16 - 1),
        pl.UInt32: (0, 2**32 - 1),
        pl.UInt64: (0, 2**64 - 1),
    }[dtype]
    low, high = info
    return st.one_of(st.sampled_from([low, high, 0]), st.integers(low, high))


def _datetimes(zone: str | None) -> st.SearchStrategy:
    naive = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30))
    return naive.map(lambda d: d.replace(tzinfo=UTC) if zone else d)


NANOSECONDS = st.one_of(  # since the epoch: 1677 to 2262, sub-microsecond parts included
    st.sampled_from([-1, 1, 999, -(2**63) + 1, 2**63 - 1]), st.integers(-(2**63) + 1, 2**63 - 1)
)
LABELS = ["gallery", "online", "Zoë ✓", ""]
SIGNED_ZEROS = st.sampled_from([-0.0, 0.0])

COLUMNS: dict[str, tuple[pl.DataType, st.SearchStrategy]] = {
    **{str(t): (t, _ints(t)) for t in [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8,
                                       pl.UInt16, pl.UInt32, pl.UInt64]},
    # -0.0 often, not by luck: the sign of a zero is a value the targets must keep
    "Float32": (pl.Float32, SIGNED_ZEROS | st.floats(width=32, allow_infinity=True)),
    "Float64": (pl.Float64, SIGNED_ZEROS | st.floats(allow_nan=True, allow_infinity=True)),
    "Decimal": (
        pl.Decimal(18, 4),
        st.decimals(-(10**13) + 1, 10**13 - 1, places=4, allow_nan=False, allow_infinity=False),
    ),
    "String": (pl.String, TEXT),
    "Boolean": (pl.Boolean, st.booleans()),
    "Date": (pl.Date, st.dates(date(1, 1, 1), date(9999, 12, 31))),
    "Time": (pl.Time, st.times()),
    "Datetime": (pl.Datetime("us"), _datetimes(None)),
    **{f"Datetime[{z}]": (pl.Datetime("us", z), _datetimes(z)) for z in ZONES},
    "Duration": (
        pl.Duration("us"),
        st.timedeltas(timedelta(days=-36_500), timedelta(days=36_500)),
    ),
    "Binary": (pl.Binary, st.binary(max_size=20)),
    # nanoseconds since the epoch (1677 to 2262), sub-microsecond parts included
    "Datetime(ns)": (pl.Datetime("ns"), NANOSECONDS),
    "Categorical": (pl.Categorical, TEXT),
    "Enum": (pl.Enum(LABELS), st.sampled_from(LABELS)),
    "List[Int64]": (pl.List(pl.Int64), st.lists(_ints(pl.Int64), max_size=3)),
    "List[String]": (pl.List(pl.String), st.lists(TEXT, max_size=3)),
    "Struct": (
        pl.Struct({"k": pl.Int64, "v": pl.String}),
        st.fixed_dictionaries({"k": _ints(pl.Int32), "v": st.one_of(st.none(), TEXT)}),
    ),
}  # fmt: skip


@st.composite
def frames(
    draw: Callable,
    exclude: frozenset[str] = frozenset(),
    columns: dict[str, tuple[pl.DataType, st.SearchStrategy]] | None = None,
    names: st.SearchStrategy[str] = NAMES,
) -> pl.DataFrame:
    """A frame of 0 to 4 rows and 1 to 5 columns of the claimed types, with nulls.

    `columns` replaces the kinds drawn from (default `COLUMNS`), `names` the column names.
    """
    kinds_by_name = COLUMNS if columns is None else columns
    kinds = draw(
        st.lists(st.sampled_from(sorted(set(kinds_by_name) - exclude)), min_size=1, max_size=5)
    )
    drawn = draw(  # the SQL sinks refuse names equal but for case (seam.case_clashes casefolds)
        st.lists(names, min_size=len(kinds), max_size=len(kinds), unique_by=str.casefold)
    )
    rows = draw(st.integers(0, 4))
    built = {}
    for name, kind in zip(drawn, kinds, strict=True):
        dtype, values = kinds_by_name[kind]
        data = draw(st.lists(st.one_of(st.none(), values), min_size=rows, max_size=rows))
        if isinstance(dtype, pl.Datetime) and any(isinstance(v, int) for v in data):
            # nanoseconds since the epoch: Python datetimes stop at microseconds
            built[name] = pl.Series(name, data, dtype=pl.Int64).cast(dtype)
            continue
        series = pl.Series(
            name, data, dtype=pl.Datetime("us", "UTC") if kind.startswith("Datetime[") else dtype
        )
        if kind.startswith("Datetime["):
            series = series.dt.convert_time_zone(dtype.time_zone)  # type: ignore[attr-defined]
        built[name] = series
    return pl.DataFrame(built)


def assert_reconciles(
    landing: Callable[[pl.DataType], Any], written: pl.DataFrame, back: pl.DataFrame
) -> None:
    """The reconciliation check's comparison finds no difference between what was written and
    what the reader returned: the target's declared type table (`landing`) is the truth."""
    from honey_duck.seam.reconcile import compare

    result = compare("target", written.lazy(), back.lazy(), landing)
    assert result.passed, result.problems


def refused_columns(refusals: Sequence[Any], frame: pl.DataFrame) -> list[str]:
    """The columns of `frame` a target's declared refusals (`Target.refusals`) hit."""
    if not refusals:
        return []
    hits = frame.select(
        [r.bad.fill_null(False).any().alias(str(i)) for i, r in enumerate(refusals)]
    ).row(0)
    return sorted({r.column for r, hit in zip(refusals, hits, strict=True) if hit})


def holds_nul(frame: pl.DataFrame) -> str | None:
    """The first column whose text (or nested text) holds NUL, if any."""
    for column in frame.columns:
        if "\\u0000" in json.dumps(frame[column].to_list(), default=str) or any(
            isinstance(v, str) and "\x00" in v for v in frame[column].to_list()
        ):
            return column
    return None


def same(a: Any, b: Any) -> bool:
    """Equal values, NaN equal to NaN, JSON text equal to what it encodes, numbers by value
    (the sign of a zero included)."""
    if isinstance(b, str) and isinstance(a, dict | list):
        b = json.loads(b)
    if isinstance(a, dict | list) and isinstance(b, str):
        a, b = b, a
    if isinstance(a, float) and isinstance(b, float | Decimal):
        b = float(b)
        same_sign = math.copysign(1, a) == math.copysign(1, b)
        return (math.isnan(a) and math.isnan(b)) or (a == b and same_sign)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, time | datetime | date | timedelta | bytes | memoryview):
        return bytes(a) == bytes(b) if isinstance(a, bytes | memoryview) else a == b
    return a == b


def assert_columns_equal(expected: pl.DataFrame, landed: dict[str, list]) -> None:
    """Each column of `landed` (Python values by name) equals `expected`'s, row for row."""
    assert list(landed) == expected.columns
    for column in expected.columns:
        want, got = expected[column].to_list(), landed[column]
        assert len(want) == len(got), column
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            assert same(w, g), f"column {column!r} row {i}: wrote {w!r}, read {g!r}"
