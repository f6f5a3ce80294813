"""What a write refuses once it knows the topic, before anything is created or produced: keys
that do not match the topic's, messages too large for it, keys that live in a neighbour."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from honey_duck import seam
from honey_duck.seam import Write, WriteMode
from honey_duck.targets.kafka.wire import json_values

# Room a record batch needs around one message (batch and record headers, our three headers):
# a message whose key and value are larger than the limit minus this is refused.
BATCH_OVERHEAD = 512
# The most bytes one value of a type without a length takes in JSON (a Decimal(38) or a zoned
# nanosecond Datetime is about 45)
SCALAR_BYTES = 64


def message_keys(
    topic: str, write: Write, doc: Mapping[str, Any] | None, compact: bool
) -> list[str]:
    """The columns that key the messages, in the order the topic is keyed by.

    The same columns in another order would encode other keys (JSON objects keep their field
    order), so the topic's recorded order is used. Other columns are refused except for a
    replace of the whole topic, which tombstones every old key.
    """
    declared = list(write.settings.keys)
    recorded = list((doc or {}).get("keys") or ())
    if not recorded or not declared or recorded == declared:
        return declared
    if set(recorded) == set(declared):
        return recorded
    whole = write.settings.mode is WriteMode.REPLACE and write.partitions is None
    if compact and not whole:
        raise ValueError(
            f"topic {topic!r} is keyed by {recorded}, not by upsert_keys {declared}: messages"
            " keyed by other columns would live beside the stored ones, so a row would be live"
            " twice; give the topic's keys, or replace the whole topic in one run to key it anew"
        )
    return declared


def _size_bound(frame: pl.LazyFrame, schema: pl.Schema) -> int | None:
    """An upper bound of any row's JSON value, from one cheap pass (None: a nested column,
    whose JSON size has no cheap bound)."""
    fixed, widths = 2, []
    for name, dtype in schema.items():
        fixed += 6 * len(name.encode()) + 4  # the escaped name, its quotes, colon and comma
        col = seam.column(name)
        if dtype.is_nested():
            return None
        if dtype == pl.Binary:  # base64: four characters for every three bytes
            widths.append(col.bin.size().max() * 2 + 4)
        elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            widths.append(col.cast(pl.String).str.len_bytes().max() * 6 + 2)  # \u0000 escapes
        else:
            fixed += SCALAR_BYTES
    if not widths:
        return fixed
    maxima = frame.select(widths).collect(engine="streaming").row(0)
    return fixed + sum(int(m or 0) for m in maxima)


def refuse_oversized(
    frame: pl.LazyFrame, schema: pl.Schema, key_of: pl.Expr, limit: int, topic: str
) -> None:
    """Refuse rows whose message would be larger than the topic's `max.message.bytes`, before
    the topic is created or anything produced. Measured exactly only when a cheap bound of
    every row's size does not already rule it out."""
    room = limit - BATCH_OVERHEAD
    bound = _size_bound(frame, schema)
    if bound is not None and 2 * bound <= room:  # the key is at most as large as the value
        return
    size = json_values(schema).str.len_bytes() + key_of.str.len_bytes().fill_null(0)
    found = (
        frame.select(size.alias("size"), key_of.alias("key"))
        .filter(pl.col("size") > room)
        .select(pl.len().alias("rows"), pl.col("key").first(), pl.col("size").first())
        .collect(engine="streaming")
    )
    rows, key, bytes_ = found.row(0)
    if rows:
        raise ValueError(
            f"{rows} row{'s' * (rows != 1)} would make messages larger than topic {topic!r}'s"
            f" max.message.bytes ({limit}); the first has key"
            f" {key if key is not None else '(no key)'} and {bytes_} bytes of key and value;"
            " split the row or raise the topic's limit"
        )


def refuse_moved_keys(
    frame: pl.LazyFrame,
    key_of: pl.Expr,
    outside: pl.Series,
    topic: str,
    partitions: seam.PartitionSlice,
    home_of: Callable[[bytes], str | None],
) -> None:
    """Refuse a slice's rows whose key lives in another partition: written here, the key's
    message would take the row out of its neighbour (`home_of` names where a key lives)."""
    if outside.is_empty():
        return
    found = (
        frame.select(key_of.alias("key"))
        .filter(pl.col("key").is_in(outside.cast(pl.String).implode()))
        .select(pl.len().alias("rows"), pl.col("key").first())
        .collect(engine="streaming")
    )
    rows, key = found.row(0)
    if not rows:
        return
    home = home_of(key.encode()) or "another partition"
    label = partitions.label()
    raise ValueError(
        f"{rows} row{'s' * (rows != 1)} of partition {label} have keys that live in another"
        f" partition of topic {topic!r}: the first, key {key}, lives in {home}; writing it"
        f" with {label} would take the row out of {home}, and a partition's write never"
        " touches its neighbours. Drop such rows from the asset's output, or write both"
        " partitions in one run"
    )
