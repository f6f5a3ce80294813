"""Kafka: ours against a bare idempotent transactional producer with ours' settings (with and
without ours' headers), and two naive loops: the batching one people keep (produce + poll(0)
per row, one flush) and the one nobody keeps for long (produce + flush per row).

Each measurement writes `sales_enriched` into the topic `<out.name>.sales_enriched`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from honey_duck_dev.benchmarks.approaches._base import (
    OURS_READER,
    TO_DICTS,
    Checked,
    Sink,
    dicts,
    per_row,
    plain,
    server_address,
    server_missing,
)
from honey_duck_dev.benchmarks.approaches._dagster import Shape, through_dagster
from honey_duck_dev.benchmarks.inputs import TABLE

SERVER = "kafka"
KEY = "sale_id"  # the key the project's kafka group gives sales_enriched
FLUSH_PER_ROW_CAP = 20_000  # one produce + flush (a broker round trip) per row: ~1 to 3 ms each
# Ours' producer settings, as ours' own code makes them, computed by the parent (a plain child
# must not import honey_duck's Kafka target, which imports Dagster): see `ours_producer`.
PRODUCER_VAR = "HONEY_DUCK_BENCH_KAFKA_PRODUCER"
WAIT = 60.0  # seconds any one broker call may take: flushes, commits, topic creation, reads
CLIENT = "confluent_kafka"


def bootstrap() -> str:
    return server_address(SERVER)


def topic_of(out: Path) -> str:
    return f"{out.name}.{TABLE}"


def unavailable() -> str | None:
    def find() -> object:
        from honey_duck_dev.services.kafka import find_noida

        return find_noida()

    return server_missing(SERVER, find)


def manager(out: Path) -> object:
    """Our `KafkaIOManager`: a compacted topic replaced in one transaction, keyed by sale_id."""
    from honey_duck.targets.kafka.target import KafkaConnection, KafkaIOManager

    return KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=bootstrap()), topic_prefix=f"{out.name}."
    )


def ours_producer() -> Mapping[str, str]:
    """In the parent: the producer configuration ours uses (idempotent, acks=all, lz4, linger,
    batch size, queue limits), without its transactional id, for the bare producer."""
    producer = dict(manager(Path("unused")).target().producer_config("unused"))
    producer.pop("transactional.id")
    return {PRODUCER_VAR: json.dumps(producer)}


def _flushed(producer: object) -> None:
    left = producer.flush(WAIT)  # type: ignore[attr-defined]
    if left:
        raise RuntimeError(f"{left} messages still undelivered after {WAIT:.0f} s")


def naive(source: Path, out: Path) -> None:
    """`to_dicts()`, `json.dumps` per row, `produce` + `poll(0)` per row, one `flush` at the
    end (on BufferError, a full local queue: `poll(1)`, then produce again, as confluent's
    examples do)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap(), "acks": "all"})
    topic = topic_of(out)
    for row in dicts(source):
        key, value = json.dumps({KEY: row[KEY]}), json.dumps(row, default=str)
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(1)
        producer.poll(0)
    _flushed(producer)


def flush_per_row(source: Path, out: Path) -> None:
    """`to_dicts()`, `json.dumps` per row, `produce` + `flush` per row (no transaction)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap(), "acks": "all"})
    topic = topic_of(out)
    for row in dicts(source):
        producer.produce(topic, key=json.dumps({KEY: row[KEY]}), value=json.dumps(row, default=str))
        _flushed(producer)


def _bare(source: Path, out: Path, headers: dict[str, str] | None) -> None:
    """A bare transactional producer with ours' settings, values serialised by polars in bulk."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = topic_of(out)
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    new = NewTopic(
        topic, num_partitions=3, replication_factor=1, config={"cleanup.policy": "compact"}
    )
    admin.create_topics([new])[topic].result(timeout=WAIT)
    settings = json.loads(os.environ[PRODUCER_VAR])
    producer = Producer({**settings, "transactional.id": f"bench-{out.name}"})
    producer.init_transactions(WAIT)
    producer.begin_transaction()
    frame = pl.scan_parquet(source)
    for batch in frame.collect_batches(chunk_size=100_000):
        encoded = batch.select(
            pl.struct(pl.all()).struct.json_encode().alias("value"),
            pl.struct(KEY).struct.json_encode().alias("key"),
        )
        for value, key in zip(encoded["value"].to_list(), encoded["key"].to_list(), strict=True):
            while True:
                try:
                    producer.produce(topic, value=value, key=key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.05)
    producer.commit_transaction(WAIT)


def floor(source: Path, out: Path) -> None:
    """The floor: bare values and keys, no headers."""
    _bare(source, out, None)


def with_headers(source: Path, out: Path) -> None:
    """The floor plus the three headers ours sends (asset, partition, run id) on each message."""
    run_id = "00000000-0000-0000-0000-000000000000"
    _bare(source, out, {"asset": TABLE, "partition": "", "run_id": run_id})


def count(out: Path) -> int:
    """Live keys of the measurement's topic, read with a plain `read_committed` consumer from
    the beginning to each partition's end (the last message of a key decides: value or
    tombstone)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as Partition

    topic = topic_of(out)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap(),
            "group.id": f"bench-count-{out.name}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            # a broker may answer a fetch with far more than asked (noida-db does)
            "receive.message.max.bytes": 2_147_483_647,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=WAIT).topics[topic].partitions
        consumer.assign([Partition(topic, p, OFFSET_BEGINNING) for p in partitions])
        alive: dict[bytes | None, bool] = {}
        at_end: set[int] = set()
        deadline = time.monotonic() + 10 * WAIT
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end in {10 * WAIT:.0f} s")
            for message in consumer.consume(num_messages=10_000, timeout=1.0):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())  # type: ignore[arg-type]
                elif error is not None:
                    raise KafkaException(error)
                else:
                    alive[message.key()] = message.value() is not None
        return sum(alive.values())
    finally:
        consumer.close()


def drop(out: Path) -> None:
    import contextlib

    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap()})
    for future in admin.delete_topics([topic_of(out)]).values():
        with contextlib.suppress(Exception):  # a broker that keeps it costs disk, not rows
            future.result(timeout=WAIT)


def readback(out: Path) -> object:
    return manager(out).readback()  # type: ignore[attr-defined]


OURS = through_dagster(
    "KafkaIOManager via dg.materialize (compacted topic, keyed by sale_id, one transaction,"
    " 3 headers per message)",
    manager,
    "honey_duck.targets.kafka.target",
    CLIENT,
    "pyarrow",  # the manager imports it when it first writes
    shape=Shape(metadata={"upsert_keys": [KEY]}),
)
BARE = (
    "bare idempotent transactional producer (ours' settings), same JSON values and keys"
    " (polars struct.json_encode), one transaction"
)

SINKS = {
    "kafka": Sink(
        count,
        {
            "ours": OURS,
            "naive": per_row(
                f"{TO_DICTS} → json.dumps → produce + poll(0) per row, one flush",
                naive,
                CLIENT,
            ),
            "flush_per_row": per_row(
                f"{TO_DICTS} → json.dumps → produce + flush per row",
                flush_per_row,
                CLIENT,
                cap=FLUSH_PER_ROW_CAP,
            ),
            "floor": plain(f"{BARE}, no headers", floor, CLIENT, "confluent_kafka.admin"),
            "headers": plain(
                f"{BARE}, plus ours' 3 headers (asset, partition, run id) per message",
                with_headers,
                CLIENT,
                "confluent_kafka.admin",
            ),
        },
        unavailable=unavailable,
        cleanup=drop,
        servers=(SERVER,),
        environment=ours_producer,
    ),
}

CHECKS: dict[str, Checked] = {
    "kafka": Checked(
        "kafka",
        "ours",
        OURS,
        readback,
        OURS_READER.format("KafkaIOManager"),
        # the asset's keys, as the ours approach declares them: the check names rows by them
        metadata={"upsert_keys": [KEY]},
    ),
}
