"""Partition slices: exactly the partitions an output covers, never a bounding box."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

import dagster as dg
import polars as pl

from honey_duck.seam.schema import literal_name


@dataclass(frozen=True)
class Window:
    """A half-open time interval [start, end) of one time-window partition."""

    start: datetime
    end: datetime


Bound = Window | str


@dataclass(frozen=True)
class Part:
    """One partition: its key and, per column, the window or value its rows must have."""

    key: str
    bounds: Mapping[str, Bound]
    dimensions: Mapping[str, str] = field(default_factory=dict)  # dimension name -> key

    def predicate(self, schema: pl.Schema) -> pl.Expr:
        return pl.all_horizontal(
            [_bound_expr(column, bound, schema) for column, bound in self.bounds.items()]
        )


def _literal_for(dtype: pl.DataType, moment: datetime) -> Any:
    """A window edge as a literal comparable with a column of `dtype`."""
    if dtype == pl.Date:
        return moment.date()
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return pl.lit(moment.replace(tzinfo=None), dtype=pl.Datetime(dtype.time_unit))
        return pl.lit(moment).dt.convert_time_zone(dtype.time_zone).cast(dtype)
    raise TypeError(f"a time-window partition column must be Date or Datetime, not {dtype}")


def _bound_expr(column: str, bound: Bound, schema: pl.Schema) -> pl.Expr:
    if column not in schema:
        raise KeyError(
            f"partition column `{column}` is not in the data (columns: {schema.names()})"
        )
    col = pl.col(literal_name(column))
    if isinstance(bound, Window):
        dtype = schema[column]
        return (col >= _literal_for(dtype, bound.start)) & (col < _literal_for(dtype, bound.end))
    value = typed_key(column, bound, schema[column])
    if isinstance(value, str):
        return col.cast(pl.String) == value
    return col == pl.lit(value, dtype=schema[column])


def typed_key(column: str, key: str, dtype: pl.DataType) -> Any:
    """A static partition key as a value of its column's type.

    A key the column would spell differently (`01` for the integer 1) is refused: it would
    name one partition in a file path and another in a table.
    """
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return key
    if dtype == pl.Boolean:  # polars casts no string to Boolean
        if key not in ("true", "false"):
            raise ValueError(
                f"partition key {key!r} is not how column `{column}` (Boolean) spells a value;"
                " name the partitions 'true' and 'false'"
            )
        return key == "true"
    try:
        value = _parse(pl.Series([key]), dtype).item()
        spelled = pl.Series([value], dtype=dtype).cast(pl.String).item()
    except Exception:
        raise ValueError(
            f"partition key {key!r} cannot be a value of column `{column}` ({dtype})"
        ) from None
    if spelled != key:
        raise ValueError(
            f"partition key {key!r} is not how column `{column}` ({dtype}) spells {spelled};"
            f" name the partition {spelled!r}"
        )
    return value


def _parse(text: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Strings as values of `dtype`: temporal types parsed (polars deprecates casting them)."""
    if dtype == pl.Date:
        return text.str.to_date("%Y-%m-%d", strict=True)
    if isinstance(dtype, pl.Datetime):
        return text.str.to_datetime(
            time_unit=dtype.time_unit, time_zone=dtype.time_zone, strict=True
        )
    if dtype == pl.Time:
        return text.str.to_time(strict=True)
    return text.cast(dtype, strict=True)


@dataclass(frozen=True)
class PartitionSlice:
    """The partitions one output replaces, as an exact set of parts."""

    parts: tuple[Part, ...]

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.parts]

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(c for p in self.parts for c in p.bounds))

    def label(self) -> str:
        keys = self.keys
        return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]} ({len(keys)} partitions)"

    def predicate(self, schema: pl.Schema) -> pl.Expr:
        """True for rows that belong to any part of this slice."""
        covering = self.covering_window()
        if covering is not None:  # a contiguous key range: one range test, not an OR chain
            return _bound_expr(*covering, schema)
        return pl.any_horizontal([p.predicate(schema) for p in self.parts])

    def covering_window(self) -> tuple[str, Window] | None:
        """One window covering every part, when the parts are contiguous windows of one column."""
        columns, windows = set(), []
        for part in self.parts:
            if len(part.bounds) != 1:
                return None
            ((column, bound),) = part.bounds.items()
            if not isinstance(bound, Window):
                return None
            columns.add(column)
            windows.append(bound)
        windows.sort(key=lambda w: w.start)
        if len(columns) != 1 or any(a.end != b.start for a, b in pairwise(windows)):
            return None
        return columns.pop(), Window(windows[0].start, windows[-1].end)


def _partition_columns(
    expr: str | Mapping[str, str] | None, dimensions: Sequence[str], asset: str
) -> dict[str, str]:
    """Map each partition dimension to the column that holds it."""
    if expr is None:
        raise ValueError(
            f"`{asset}` is partitioned but has no `partition_expr` metadata naming the column"
            " that holds the partition"
        )
    if isinstance(expr, str):
        if len(dimensions) != 1:
            raise ValueError(
                f"`{asset}` has partition dimensions {list(dimensions)}: give `partition_expr` as"
                " a mapping from each dimension to its column"
            )
        return {dimensions[0]: expr}
    missing = [d for d in dimensions if d not in expr]
    if missing:
        raise ValueError(f"`partition_expr` of `{asset}` names no column for dimensions {missing}")
    return {d: expr[d] for d in dimensions}


def _bound_for(pdef: dg.PartitionsDefinition, key: str) -> Bound:
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        window = pdef.time_window_for_partition_key(key)
        return Window(window.start, window.end)
    return key


def parts_for(
    partitions_def: dg.PartitionsDefinition,
    keys: Sequence[str],
    columns: Mapping[str, str] | None = None,
) -> PartitionSlice:
    """The parts for `keys`; with `columns` (dimension -> column) each part also has its bounds."""
    multi = isinstance(partitions_def, dg.MultiPartitionsDefinition)
    parts = []
    for key in keys:
        if multi:
            by_dim = dict(partitions_def.get_partition_key_from_str(str(key)).keys_by_dimension)
            defs = {d: partitions_def.get_partitions_def_for_dimension(d) for d in by_dim}
        else:
            by_dim, defs = {"partition": str(key)}, {"partition": partitions_def}
        bounds = {columns[d]: _bound_for(defs[d], k) for d, k in by_dim.items()} if columns else {}
        parts.append(Part(str(key), bounds, by_dim if multi else {}))
    return PartitionSlice(tuple(parts))


def slice_for(
    partitions_def: dg.PartitionsDefinition,
    keys: Sequence[str],
    partition_expr: str | Mapping[str, str] | None,
    asset: str,
) -> PartitionSlice:
    """Build the exact slice for `keys` of `partitions_def` (time windows, sets or multi)."""
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        dims = partitions_def.partition_dimension_names
    else:
        dims = ["partition"]
    return parts_for(partitions_def, keys, _partition_columns(partition_expr, dims, asset))


def slice_from_context(
    context: dg.OutputContext | dg.InputContext, partition_expr: Any
) -> PartitionSlice | None:
    """The slice an output writes (or an input reads), or None when unpartitioned."""
    if not context.has_asset_partitions:
        return None
    asset = context.asset_key.to_user_string()
    return slice_for(
        context.asset_partitions_def,
        context.asset_partition_keys,
        partition_expr,
        asset,
    )


def read_slice_from_context(context: dg.InputContext, partition_expr: Any) -> PartitionSlice | None:
    """The slice an input reads: with column bounds when the upstream names its column."""
    if not context.has_asset_partitions:
        return None
    if partition_expr is None:
        return parts_for(context.asset_partitions_def, context.asset_partition_keys)
    return slice_from_context(context, partition_expr)
