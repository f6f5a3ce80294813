"""The exact rows of a partition slice as a SQL condition, its values always bound."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from honey_duck import seam
from honey_duck.targets.sql.dialect import Dialect


@dataclass(frozen=True)
class Predicate:
    """A SQL condition with its parameters, always bound, never spliced."""

    sql: str
    params: list[Any]


def _edge(dtype: pl.DataType, moment: datetime) -> date | datetime:
    if dtype == pl.Date:
        return moment.date()
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        return moment.replace(tzinfo=None)
    return moment


def slice_predicate(
    dialect: Dialect, partitions: seam.PartitionSlice, schema: dict[str, pl.DataType]
) -> Predicate:
    """The exact rows of `partitions`: one range for contiguous windows, else an OR of parts."""
    params: list[Any] = []

    def bound(column: str, value: seam.Bound) -> str:
        dtype = schema[column]
        col = dialect.quote(column)
        if isinstance(value, seam.Window):
            params.extend([_edge(dtype, value.start), _edge(dtype, value.end)])
            n = len(params)
            return f"{col} >= {dialect.param(n - 1)} AND {col} < {dialect.param(n)}"
        params.append(seam.typed_key(column, value, dtype))  # the key, typed like its column
        return f"{col} = {dialect.param(len(params))}"

    covering = partitions.covering_window()
    if covering is not None:
        return Predicate(bound(*covering), params)
    parts = [
        "(" + " AND ".join(bound(c, v) for c, v in part.bounds.items()) + ")"
        for part in partitions.parts
    ]
    return Predicate(" OR ".join(parts), params)
