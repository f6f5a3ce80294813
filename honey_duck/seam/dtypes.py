"""The one walker over polars types: what is inside a list, an array or a struct.

Every target asks the same questions of a nested type (which scalar types does it hold, does a
value anywhere inside a row break a rule, what is the same shape with other scalars), so they
are answered once here. A *leaf* is a type that holds no other type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import polars as pl

# What a rule says of one leaf's values: an expression true where a value breaks it, or None
# when no value of that type can.
LeafTest = Callable[[pl.Expr, pl.DataType], pl.Expr | None]


def walk(dtype: pl.DataType) -> Iterator[pl.DataType]:
    """`dtype` and every type inside it, outermost first."""
    yield dtype
    if isinstance(dtype, pl.List | pl.Array):
        yield from walk(dtype.inner)
    elif isinstance(dtype, pl.Struct):
        for field in dtype.fields:
            yield from walk(field.dtype)


def leaves(dtype: pl.DataType) -> list[pl.DataType]:
    """The leaf types inside `dtype` (itself when it is one)."""
    return [t for t in walk(dtype) if not t.is_nested()]


def first(dtype: pl.DataType, problem: Callable[[pl.DataType], str | None]) -> str | None:
    """The first thing `problem` says of `dtype` or of a type inside it, outermost first."""
    return next((why for t in walk(dtype) if (why := problem(t))), None)


def map_leaves(dtype: pl.DataType, leaf: Callable[[pl.DataType], pl.DataType]) -> pl.DataType:
    """`dtype` with every leaf type inside it replaced by `leaf(type)`, the shape kept."""
    if isinstance(dtype, pl.List):
        return pl.List(map_leaves(dtype.inner, leaf))
    if isinstance(dtype, pl.Array):
        return pl.Array(map_leaves(dtype.inner, leaf), dtype.size)
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: map_leaves(f.dtype, leaf) for f in dtype.fields})
    return leaf(dtype)


def any_leaf(expr: pl.Expr, dtype: pl.DataType, test: LeafTest) -> pl.Expr | None:
    """Per row, whether any leaf value inside `expr` breaks `test`; None when none can."""
    if isinstance(dtype, pl.List | pl.Array):
        inner = any_leaf(pl.element(), dtype.inner, test)
        if inner is None:
            return None
        items = expr if isinstance(dtype, pl.List) else expr.arr.to_list()
        return items.list.eval(inner).list.any()
    if isinstance(dtype, pl.Struct):
        # fields by position: polars reads a field called `*` or `^...$` as a pattern
        plain = expr.struct.rename_fields([f"f{i}" for i in range(len(dtype.fields))])
        found = [
            inner
            for i, f in enumerate(dtype.fields)
            if (inner := any_leaf(plain.struct.field(f"f{i}"), f.dtype, test)) is not None
        ]
        return pl.any_horizontal(found) if found else None
    return test(expr, dtype)
