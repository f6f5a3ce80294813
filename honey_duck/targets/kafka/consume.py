"""Reading a topic: every committed message, the live ones of a compacted topic, and whether a
commit's last messages are visible to `read_committed` consumers."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from honey_duck.seam.faults import ConnectFailed
from honey_duck.targets.kafka.errors import connect_failed

if TYPE_CHECKING:
    from honey_duck.targets.kafka.target import KafkaConnection

Message = tuple[bytes | None, bytes | None]  # a key and a value (None: a tombstone)


def consume(
    connection: KafkaConnection, topic: str, on_missing: Callable[[], None] | None = None
) -> Iterator[Message]:
    """(key, value) of every committed message of `topic`, from the beginning to the high
    watermarks taken now (`read_committed`: an open or aborted transaction is not seen)."""
    for message in committed(connection, topic, on_missing):
        yield message.key(), message.value()


def header_of(connection: KafkaConnection, topic: str, key: bytes, header: str) -> str | None:
    """The header `header` of the last message of `key` in `topic` (a whole read: for errors)."""
    found = None
    for message in committed(connection, topic):
        if message.key() == key:
            found = dict(message.headers() or []).get(header)
    return None if found is None else found.decode(errors="replace")


def committed(
    connection: KafkaConnection, topic: str, on_missing: Callable[[], None] | None = None
) -> Iterator[Any]:
    """Every committed message of `topic` (confluent-kafka's Message), as `consume` reads."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as TP

    consumer = Consumer(connection.consumer_config())
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=connection.timeout_seconds)
        except KafkaException as exc:
            raise connect_failed(connection.where(), exc) from None
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            if on_missing is not None:
                on_missing()
            return
        ends: dict[int, int] = {}
        for partition in described.partitions:
            low, high = consumer.get_watermark_offsets(
                TP(topic, partition), timeout=connection.timeout_seconds, cached=False
            )
            if high > low:
                ends[partition] = high
        if not ends:
            return
        consumer.assign([TP(topic, p, OFFSET_BEGINNING) for p in ends])
        # a broker may take long to assemble a large fetch: give up only after a long silence
        stall = max(60.0, 4 * connection.timeout_seconds)
        quiet_since = time.monotonic()
        while ends:
            message = consumer.poll(min(connection.timeout_seconds, 5.0))
            if message is None:
                if time.monotonic() - quiet_since > stall:
                    raise ConnectFailed(
                        f"reading topic {topic!r} got no message for {stall:g} s with"
                        f" partitions {sorted(ends)} unfinished",
                        transient=True,
                    )
                continue
            quiet_since = time.monotonic()
            error = message.error()
            partition = message.partition()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    ends.pop(partition, None)
                    continue
                raise KafkaException(error)
            if partition not in ends:
                continue
            yield message
            if message.offset() >= ends[partition] - 1:
                del ends[partition]
    finally:
        consumer.close()


def invisible(
    connection: KafkaConnection,
    last: Mapping[tuple[str, int], int],
    wait: float,
    from_beginning: bool = False,
) -> list[tuple[str, int]]:
    """The topic-partitions whose `last` offset a `read_committed` consumer does not see.

    Each partition is fetched from that offset (or from its beginning): the message itself
    must come back; a later offset, or the partition's end past it, means it was skipped as
    aborted. The partition's end before it means the commit markers are still on their way:
    polling goes on until `wait` seconds pass without a message.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as TP

    pending = dict(last)
    skipped: list[tuple[str, int]] = []
    if not pending:
        return skipped
    consumer = Consumer(connection.consumer_config())
    try:
        consumer.assign(
            [
                TP(topic, p, OFFSET_BEGINNING if from_beginning else offset)
                for (topic, p), offset in pending.items()
            ]
        )
        deadline = time.monotonic() + wait
        while pending and (left := deadline - time.monotonic()) > 0:
            try:
                message = consumer.poll(min(left, 0.5))
            except KafkaException:
                continue  # not confirmed: the deadline decides
            if message is None:
                continue
            where = (message.topic(), message.partition())
            if where not in pending:
                continue
            error = message.error()
            at_end = error is not None and error.code() == KafkaError._PARTITION_EOF
            if error is not None and not at_end:
                continue
            if not at_end:
                deadline = time.monotonic() + wait  # progress
            if message.offset() == pending[where] and not at_end:
                del pending[where]  # visible
            elif message.offset() > pending[where]:
                skipped.append(where)
                del pending[where]
    finally:
        with suppress(Exception):
            consumer.close()
    return sorted([*skipped, *pending])


def last_per_key(
    messages: Iterator[tuple[bytes | None, bytes | None]],
) -> dict[bytes | None, bytes | None]:
    """The last value of each key (None: a tombstone), in the order keys were first seen.

    Held in memory: for small topics (the schema records); a table's topic goes through
    `live_messages`.
    """
    latest: dict[bytes | None, bytes | None] = {}
    for key, value in messages:
        latest[key] = value
    return latest


_SPILL = pl.Schema({"key": pl.Binary, "seq": pl.UInt64, "value": pl.Binary})


def live_messages(
    messages: Iterator[tuple[bytes | None, bytes | None]], batch: int = 100_000
) -> Iterator[pl.DataFrame]:
    """The live messages of a compacted topic, as frames of `key` and `value` (Binary): the last
    value of each key, tombstones dropped, in the order those last values were produced (what a
    consumer reads once the broker has compacted the topic).

    Memory stays bounded by the keys, not the values: the messages are spilled, `batch` at a
    time, to temporary Parquet files; polars finds each key's last position (a table of keys
    and positions, collected on its own), and each file is then read back alone and keeps the
    rows at those positions. The files are removed when the iteration ends, however it ends.
    """
    with tempfile.TemporaryDirectory(prefix="honey_duck-kafka-") as spill:
        folder = Path(spill)
        parts: list[tuple[Path, int, int]] = []  # file, first and past-last position
        keys: list[bytes | None] = []
        values: list[bytes | None] = []

        def flush() -> None:
            first = parts[-1][2] if parts else 0
            path = folder / f"{len(parts):06d}.parquet"
            pl.DataFrame(
                {
                    "key": pl.Series(keys, dtype=pl.Binary),
                    "seq": pl.int_range(first, first + len(keys), dtype=pl.UInt64, eager=True),
                    "value": pl.Series(values, dtype=pl.Binary),
                },
                schema=_SPILL,
            ).write_parquet(path, compression="lz4")
            parts.append((path, first, first + len(keys)))
            keys.clear()
            values.clear()

        for key, value in messages:
            keys.append(key)
            values.append(value)
            if len(keys) >= batch:
                flush()
        if keys:
            flush()
        if not parts:
            return
        last = (
            pl.scan_parquet([p for p, _, _ in parts], schema=_SPILL)
            .group_by("key")
            .agg(pl.col("seq").max())
            .select(pl.col("seq").sort())
            .collect(engine="streaming")
            .to_series()
        )
        for path, first, past in parts:
            lo, hi = last.search_sorted(first), last.search_sorted(past)
            if hi > lo:
                kept = last.slice(lo, hi - lo).implode()
                frame = (
                    pl.scan_parquet(path, schema=_SPILL)
                    .filter(pl.col("seq").is_in(kept), pl.col("value").is_not_null())
                    .select("key", "value")
                    .collect()
                )
                if frame.height:
                    yield frame
