"""Reading a topic back as typed frames: the live values of a compacted topic, or every value
of an append-only one, decoded chunk by chunk into the recorded types."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import polars as pl

from honey_duck import seam
from honey_duck.targets.kafka.consume import consume, live_messages
from honey_duck.targets.kafka.exact import refuse_inexact
from honey_duck.targets.kafka.wire import decode

if TYPE_CHECKING:
    from honey_duck.targets.kafka.target import KafkaConnection

CHUNK = 100_000  # values decoded at a time


def latest(connection: KafkaConnection, topic: str, schema: pl.Schema) -> pl.DataFrame:
    """The live rows of a compacted topic, only the columns of `schema`."""
    chunks = [decode(c["value"], schema) for c in live_messages(consume(connection, topic))]
    return pl.concat(chunks) if chunks else pl.DataFrame(schema=schema)


def scan_topic(
    connection: KafkaConnection,
    topic: str,
    schema: pl.Schema,
    compact: bool,
    columns: Sequence[str] | None,
    partitions: seam.PartitionSlice | None,
) -> pl.LazyFrame:
    """A polars scan of the topic's rows, typed by its recorded `schema`, fed chunk by chunk."""
    wanted = list(columns) if columns else list(schema)
    missing = [c for c in wanted if c not in schema]
    if missing:
        raise KeyError(f"columns {missing} are not in topic {topic!r}")
    out = pl.Schema({c: schema[c] for c in wanted})
    predicate = partitions.predicate(schema) if partitions is not None else None

    def chunks() -> Iterator[tuple[pl.Series, pl.Series | None]]:
        """(values, keys) a chunk at a time: the keys name a message the reader refuses."""
        messages = consume(connection, topic)
        if compact:
            for live in live_messages(messages, CHUNK):
                yield live["value"], live["key"]
            return
        values: list[bytes] = []
        keys: list[bytes | None] = []
        for key, value in messages:
            if value is not None:
                values.append(value)
                keys.append(key)
            if len(values) >= CHUNK:
                yield pl.Series(values, dtype=pl.Binary), pl.Series(keys, dtype=pl.Binary)
                values, keys = [], []
        if values:
            yield pl.Series(values, dtype=pl.Binary), pl.Series(keys, dtype=pl.Binary)

    def frames(batch_size: int | None) -> Iterator[pl.DataFrame]:
        for values, keys in chunks():
            # every column is decoded, whatever is asked for: the check needs whole messages
            text = values.cast(pl.String)
            frame = decode(text, schema)
            refuse_inexact(text, frame, schema, keys, topic)
            del values, text
            if predicate is not None:
                frame = frame.filter(predicate)
            yield frame.select(wanted)

    return seam.scan_frames(frames, out)
