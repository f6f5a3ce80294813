"""Partition slices as queries on the stored BSON values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import polars as pl

from honey_duck import seam
from honey_duck.targets.mongo.encode import encode_batch


def _bson_value(value: Any, dtype: pl.DataType) -> Any:
    """A Python value of a polars column as the column stores it in BSON."""
    import bson

    if value is None:
        return None
    (document,) = encode_batch(pl.DataFrame({"v": pl.Series([value], dtype=dtype)})).to_pylist()
    options = bson.CodecOptions(datetime_conversion=bson.DatetimeConversion.DATETIME_MS)
    return bson.decode(document, options)["v"]


def _moment(moment: datetime, dtype: pl.DataType) -> Any:
    """A window edge as the BSON datetime a Date or Datetime column stores for it."""
    from bson.datetime_ms import DatetimeMS

    if dtype == pl.Date:
        return DatetimeMS(
            int(datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp() * 1000)
        )
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        moment = (
            moment.replace(tzinfo=UTC)
            if moment.tzinfo is None
            else moment.replace(tzinfo=None).replace(tzinfo=UTC)
        )
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return DatetimeMS(int(moment.timestamp() * 1000))


def slice_filter(partitions: seam.PartitionSlice | None, schema: Mapping[str, Any]) -> dict:
    """The query matching exactly the rows of `partitions` (all rows when None)."""
    if partitions is None:
        return {}

    def bound(column: str, value: seam.Bound) -> dict:
        if column not in schema:
            raise KeyError(f"partition column `{column}` is not stored (columns: {list(schema)})")
        dtype = schema[column]
        if isinstance(value, seam.Window):
            return {column: {"$gte": _moment(value.start, dtype), "$lt": _moment(value.end, dtype)}}
        return {column: _bson_value(seam.typed_key(column, value, dtype), dtype)}

    covering = partitions.covering_window()
    if covering is not None:
        return bound(*covering)
    ors = []
    for part in partitions.parts:
        if not part.bounds:
            return {}
        clauses = [bound(c, b) for c, b in part.bounds.items()]
        ors.append(clauses[0] if len(clauses) == 1 else {"$and": clauses})
    return ors[0] if len(ors) == 1 else {"$or": ors}
