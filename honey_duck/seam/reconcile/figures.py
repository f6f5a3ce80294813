"""One side's figures: row count, per-column nulls and digests, and a whole-row digest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from honey_duck.seam import dtypes
from honey_duck.seam.schema import column

_SEED = 0x68_6F_6E_65_79  # "honey": any fixed seed; both sides hash in the same process
_FNV_OFFSET, _FNV_PRIME = 0xCBF2_9CE4_8422_2325, 0x100_0000_01B3  # FNV-1a's 64-bit constants
_NEGATIVE_ZERO = 0x9E37_79B9_7F4A_7C15  # mixed into the hash of -0.0 (any odd constant will do)


@dataclass(frozen=True)
class Figures:
    """What one side's streaming pass found: rows, and per column nulls and a content digest."""

    rows: int
    nulls: dict[str, int]
    digests: dict[str, int]
    row_digest: int

    def checksum(self) -> str:
        return f"{self.row_digest:016x}"


def _is_float(dtype: pl.DataType) -> bool:
    return dtype in (pl.Float32, pl.Float64)


def _as_text(dtype: pl.DataType) -> bool:
    """Leaves hashed as their text: a category (not its code), a float inside a list or a
    struct (polars hashes -0.0 as 0.0; its text keeps the sign and writes every NaN alike)."""
    return isinstance(dtype, pl.Categorical | pl.Enum) or _is_float(dtype)


def _hashable(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A column in a form whose hash depends on its values only (not a category's code)."""
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return expr.cast(pl.String)
    if dtype.is_nested() and any(_as_text(t) for t in dtypes.leaves(dtype)):
        return expr.cast(dtypes.map_leaves(dtype, lambda t: pl.String if _as_text(t) else t))
    return expr


def value_hash(expr: pl.Expr, dtype: pl.DataType, seed: int) -> pl.Expr:
    """Each value's 64-bit hash: equal values hash alike, NaN is one value, and the sign of a
    zero is part of its value (-0.0 and 0.0 differ, which polars' own hash does not see)."""
    hashed = _hashable(expr, dtype).hash(seed)
    if not _is_float(dtype):
        return hashed
    negative_zero = (expr == 0) & ((1 / expr) < 0)  # 1 / -0.0 is -inf
    return (
        pl.when(negative_zero).then(hashed.xor(pl.lit(_NEGATIVE_ZERO, pl.UInt64))).otherwise(hashed)
    )


def _hashes(schema: pl.Schema) -> list[pl.Expr]:
    """Each column's 64-bit value hash, as `h0`, `h1`, ... (a null hashes to a fixed value).

    Each position has a seed of its own, so one value hashes differently in two columns and a
    row's columns cannot cancel out in `_row_of`.
    """
    return [
        value_hash(column(c), t, _SEED + i).alias(f"h{i}")
        for i, (c, t) in enumerate(schema.items())
    ]


def _row_of(hashes: Sequence[pl.Expr]) -> pl.Expr:
    """A row's hash from its column hashes: FNV-1a over 64-bit words, then hashed once more.

    A struct of the values hashed again cost twenty times more (1M rows of the benchmark's 15
    columns: 0.74 s against 0.04 s). Position matters, so a value moved to another column or row
    changes the row's hash; UInt64 products wrap, as the sums do.
    """
    if not hashes:
        return pl.lit(0, dtype=pl.UInt64)
    prime = pl.lit(_FNV_PRIME, dtype=pl.UInt64)
    combined = pl.lit(_FNV_OFFSET, dtype=pl.UInt64)
    for hashed in hashes:
        combined = combined.xor(hashed) * prime
    return combined.hash(_SEED)


def row_hash(schema: pl.Schema) -> pl.Expr:
    """One 64-bit hash of each whole row (columns in `schema`'s order)."""
    return _row_of(_hashes(schema))


def _figures_query(frame: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """One row: `rows`, `n<i>` null counts, `d<i>` column digests and the `row` digest.

    Each value is hashed once; the column digests are sums of those hashes and the row digest
    the sum of a hash of each row's column hashes. UInt64 sums wrap (modulo 2^64), which makes
    them order-independent: `test_reconcile` pins that polars keeps doing so.
    """
    hashes = [pl.col(f"h{i}") for i in range(len(schema))]
    per_row = frame.select(
        *_hashes(schema),
        *(column(c).is_null().alias(f"n{i}") for i, c in enumerate(schema)),
    )
    return per_row.select(
        pl.len().alias("rows"),
        *(pl.col(f"n{i}").sum().alias(f"n{i}") for i in range(len(schema))),
        *(h.sum().alias(f"d{i}") for i, h in enumerate(hashes)),
        _row_of(hashes).sum().alias("row"),
    )


def _read_figures(found: Mapping[str, Any], schema: pl.Schema) -> Figures:
    names = list(schema)
    return Figures(
        rows=int(found["rows"]),
        nulls={c: int(found[f"n{i}"] or 0) for i, c in enumerate(names)},
        digests={c: int(found[f"d{i}"] or 0) for i, c in enumerate(names)},
        row_digest=int(found["row"] or 0),
    )


def figures(frame: pl.LazyFrame, schema: pl.Schema) -> Figures:
    """Row count, null counts and digests of `frame`'s `schema` columns, in one streaming pass."""
    return both_figures([frame], schema)[0]


def both_figures(frames: Sequence[pl.LazyFrame], schema: pl.Schema) -> list[Figures]:
    """`figures` of several frames at once: one streaming query each, run side by side."""
    found = pl.collect_all([_figures_query(f, schema) for f in frames], engine="streaming")
    return [_read_figures(f.row(0, named=True), schema) for f in found]
