"""Producing a write's messages into its open transaction, cheaply and with bounded memory.

Each message goes to the partition librdkafka's default partitioner (`consistent_random`: the
CRC-32 of the key modulo the partition count) would give it, so a key lands where the topic
already keeps it, but chosen here: then the last message of each partition in a batch is known
before it is produced, and only those ask for a delivery report (a Python callback per message
cost about a second per million). The commit check needs no more: reports come in order within
a partition. Delivery reports are served every POLL_EVERY messages, so delivered messages leave
librdkafka's queue as they go instead of piling up until it is full.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from honey_duck import seam
from honey_duck.seam.faults import ConnectFailed

POLL_EVERY = 10_000
# The longest a produce waits for room in the local queue: past `message.timeout.ms` (60 s)
# every queued message has been delivered or failed.
QUEUE_FULL_SECONDS = 90.0

Headers = Mapping[str, str]


def partition_of(key: bytes | None, count: int, position: int) -> int:
    """The partition of a message: librdkafka's for a key, round robin without one."""
    return zlib.crc32(key) % count if key else position % count


class Outbox:
    """Sends messages with one transactional producer; `last` gathers, per (topic,
    partition), the highest offset delivered of the messages that asked for a report."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.last: dict[tuple[str, int], int] = {}
        self.sent = 0

    def delivered(self, error: Any, message: Any) -> None:
        if error is None:
            where = (message.topic(), message.partition())
            self.last[where] = max(self.last.get(where, -1), message.offset())

    def send(
        self,
        topic: str,
        partitions: int,
        values: Sequence[str | bytes | None],
        keys: Sequence[bytes | None],
        headers: Headers | Sequence[Headers],
    ) -> None:
        """Produce `values` keyed by `keys` (one headers mapping for all, or one per message)."""
        start = self.sent
        targets = [partition_of(k, partitions, start + i) for i, k in enumerate(keys)]
        reported = set({p: i for i, p in enumerate(targets)}.values())
        shared = headers if isinstance(headers, Mapping) else None
        produce, delivered = self.producer.produce, self.delivered
        for i, value in enumerate(values):
            each = shared if shared is not None else headers[i]
            report = delivered if i in reported else None
            try:
                if report is None:
                    produce(topic, value=value, key=keys[i], partition=targets[i], headers=each)
                else:
                    produce(
                        topic, value=value, key=keys[i], partition=targets[i], headers=each,
                        on_delivery=report,
                    )  # fmt: skip
            except BufferError:  # the local queue is full: wait for librdkafka
                self._wait_for_room(topic, value, keys[i], targets[i], report, each)
            if i % POLL_EVERY == POLL_EVERY - 1:
                self.producer.poll(0)
        self.sent += len(values)
        self.producer.poll(0)

    def send_one(self, topic: str, key: str | bytes | None, value: str | bytes | None) -> None:
        """One message that asks for its delivery report (a schema record)."""
        key_bytes = key.encode() if isinstance(key, str) else key
        self.send(topic, 1, [value], [key_bytes], {})

    def _wait_for_room(
        self,
        topic: str,
        value: str | bytes | None,
        key: bytes | None,
        partition: int,
        report: Callable[[Any, Any], None] | None,
        headers: Headers | None,
    ) -> None:
        """Produce once the local queue has room, at most QUEUE_FULL_SECONDS: queued messages
        time out before that, so a queue still full means no broker takes them."""
        deadline = time.monotonic() + QUEUE_FULL_SECONDS
        while True:
            self.producer.poll(0.05)
            extra = {} if report is None else {"on_delivery": report}
            try:
                self.producer.produce(
                    topic, value=value, key=key, partition=partition, headers=headers, **extra
                )
                return
            except BufferError:
                if time.monotonic() > deadline:
                    raise ConnectFailed(
                        f"the producer's queue for topic {topic!r} stayed full for"
                        f" {QUEUE_FULL_SECONDS:g} s: no broker takes its messages",
                        transient=True,
                    ) from None


def partition_header(partitions: seam.PartitionSlice | None, schema: pl.Schema) -> pl.Expr:
    """Each row's partition key (for the `partition` header), or an empty string."""
    if partitions is None:
        return pl.lit("")
    if len(partitions.parts) == 1:
        return pl.lit(partitions.parts[0].key)
    chain: Any = pl
    for part in partitions.parts:
        chain = chain.when(part.predicate(schema)).then(pl.lit(part.key))
    return chain.otherwise(pl.lit(""))
