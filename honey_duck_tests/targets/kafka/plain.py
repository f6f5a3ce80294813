"""What the Kafka target tests read back with: a plain confluent-kafka `read_committed` consumer
and the standard library's JSON, never our own reader."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

Message = tuple[bytes | None, bytes | None, dict[str, bytes]]


def fresh_topic(prefix: str = "t") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def keyed(topic: str, *keys: str, **more: Any) -> dict[str, Any]:
    """Metadata of an asset on a compacted topic: its topic and message key columns."""
    return {"topic": topic, "upsert_keys": list(keys or ("id",)), **more}


def messages(bootstrap: str, topic: str) -> list[Message]:
    """Every committed message of `topic` (key, value, headers), in each partition's order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = list(meta.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending, found = set(partitions), []
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                pending.discard(message.partition())
                continue
            headers = {k: v for k, v in (message.headers() or [])}
            found.append((message.key(), message.value(), headers))
        assert not pending, f"partitions {pending} of {topic} never reached their end"
        return found
    finally:
        consumer.close()


def live(bootstrap: str, topic: str) -> dict[bytes, dict[str, Any]]:
    """A compacted topic as its consumers see it: the last value per raw key, tombstones
    dropped, values decoded by the standard library."""
    latest: dict[bytes | None, bytes | None] = {}
    for key, value, _ in messages(bootstrap, topic):
        latest[key] = value
    return {k: json.loads(v) for k, v in latest.items() if k is not None and v is not None}


def topics(bootstrap: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def schema_record(bootstrap: str, topic: str, schema_topic: str) -> dict[str, Any] | None:
    """The live schema record of `topic`, or None."""
    if schema_topic not in topics(bootstrap):
        return None
    records = {k: v for k, v, _ in messages(bootstrap, schema_topic)}
    value = records.get(topic.encode())
    return None if value is None else json.loads(value)


def produce(bootstrap: str, topic: str, key: bytes | None, value: bytes | None) -> None:
    """One message from a plain producer, as another application would write it."""
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0
