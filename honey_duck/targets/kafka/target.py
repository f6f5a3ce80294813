"""The Kafka sink: one JSON message per row, written in one Kafka transaction per write.

A topic keeps what its cleanup policy lets it keep. A compacted topic keeps the last message
per key, so it can be replaced (every row keyed, plus a tombstone for each live key the new
data lacks), re-run per partition (tombstones only for live keys whose last value lies in the
slice) and upserted (keyed rows only); every asset written there gives `upsert_keys`, which
are the message key. A topic that deletes by age keeps every message: it is appended to, and
nothing else. Either way a write is one transaction that holds the topic (writers of one topic
take turns), and a failed write leaves nothing visible to `read_committed` consumers.

The modules: `wire` (the JSON values), `checks` (what a write refuses), `session` (the verbs),
`transaction` and `outbox` (the producer, its commit check), `topics` (the AdminClient),
`records` (the schema topic), `consume`, `reading` and `exact` (reading back), `errors`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck import seam
from honey_duck.seam import Capabilities, SinkIOManager, Target, WriteMode
from honey_duck.seam.faults import ConnectFailed
from honey_duck.targets.kafka.consume import consume, live_messages
from honey_duck.targets.kafka.errors import (
    CommitNotVisible,
    StoredChanged,
    WriterFenced,
    kafka_error,
    transient_error,
)
from honey_duck.targets.kafka.records import TopicRecords
from honey_duck.targets.kafka.session import KafkaSession
from honey_duck.targets.kafka.wire import refusals, unsupported

# what tests and benchmarks reach through this module
__all__ = [
    "SCHEMA_TOPIC",
    "KafkaConnection",
    "KafkaIOManager",
    "KafkaSession",
    "KafkaTarget",
    "Topic",
    "TopicRecords",
    "consume",
    "live_messages",
]

SCHEMA_TOPIC = "_honey_duck_schemas"
TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

COMPACT = Capabilities(
    modes=frozenset({WriteMode.REPLACE, WriteMode.UPSERT}),
    slice_modes=frozenset({WriteMode.REPLACE, WriteMode.UPSERT}),
    why=(
        "a compacted topic keeps the last message per key, so every write needs `upsert_keys`"
        " (the message key) and cannot append (set cleanup_policy='delete' to append)"
    ),
    keyed=True,
)
DELETE = Capabilities(
    modes=frozenset({WriteMode.APPEND}),
    slice_modes=frozenset({WriteMode.APPEND}),
    why=(
        "a topic with cleanup_policy='delete' keeps every message, so it cannot replace or"
        " upsert; cleanup_policy='compact' with `upsert_keys` can"
    ),
)


@dataclass(frozen=True)
class Topic:
    """Where an asset lives: a topic, and the asset it holds (for the message headers)."""

    name: str
    asset: str

    def __str__(self) -> str:
        return self.name


class KafkaTarget(Target):
    """Kafka topics: JSON values, transactional producers, a compacted schema topic."""

    word = "kafka"
    capabilities: ClassVar[Capabilities] = COMPACT

    def __init__(
        self,
        connection: KafkaConnection,
        *,
        cleanup_policy: str = "compact",
        partitions: int = 3,
        replication: int = 1,
        compression: str = "lz4",
        prefix: str = "",
        schema_topic: str = SCHEMA_TOPIC,
        linger_ms: int = 20,
        batch_bytes: int = 1_000_000,
        transaction_timeout_seconds: float = 900.0,
    ) -> None:
        self.connection = connection
        self.cleanup_policy = cleanup_policy
        self.partitions = partitions  # of a topic we create
        self.replication = replication
        self.compression = compression
        self.prefix = prefix
        self.schema_topic = schema_topic
        self.linger_ms = linger_ms
        self.batch_bytes = batch_bytes
        self.transaction_timeout_seconds = transaction_timeout_seconds

    def producer_config(self, transactional_id: str) -> dict[str, Any]:
        """A transactional, idempotent producer's configuration (it holds the password)."""
        return {
            **self.connection.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_bytes,
            "transactional.id": transactional_id,
            # one write is one transaction: a broker aborts it once open longer than this
            "transaction.timeout.ms": int(self.transaction_timeout_seconds * 1000),
            "message.timeout.ms": 60_000,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 262_144,
            "message.max.bytes": 64 * 1024 * 1024,
        }

    def unsupported(self, dtype: pl.DataType) -> str | None:
        return unsupported(dtype)

    def schema_problems(self, schema: pl.Schema) -> list[str]:
        # `local` stands in with DuckDB, which folds case: refused everywhere, so that the same
        # graph is accepted by every environment
        return seam.case_clashes(list(schema), "local's DuckDB stand-in")

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        return refusals(schema)

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> Topic:
        raw = metadata.get("topic")
        raw = raw.value if isinstance(raw, dg.MetadataValue) else raw
        name = str(raw) if raw else self.prefix + ".".join(key.path)
        bad = sorted({c for c in name if c not in TOPIC_CHARS})
        if bad or not name or len(name) > 249 or name in (".", ".."):
            raise ValueError(
                f"{name!r} is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -"
                + (f"; it has {bad}" if bad else "")
                + "); give metadata `topic`"
            )
        return Topic(name, key.to_user_string())

    def table_name(self, location: Topic) -> str:
        return location.name

    def uri(self, location: Topic, partitions: seam.PartitionSlice | None = None) -> str:
        first = self.connection.bootstrap_servers.split(",")[0].strip()
        return f"kafka://{first}/{location.name}"

    def transient(self, exc: BaseException) -> bool:
        if isinstance(exc, ConnectFailed):
            return exc.transient
        if isinstance(exc, CommitNotVisible | StoredChanged):  # a new transaction redoes it
            return True
        if isinstance(exc, WriterFenced):  # once the writer that took the topic committed
            return exc.retry
        return transient_error(kafka_error(exc))

    def secrets(self) -> Sequence[str | None]:
        return self.connection.secrets()

    @contextmanager
    def session(self) -> Iterator[KafkaSession]:
        session = KafkaSession(self)
        session.check_reachable()
        yield session


class KafkaConnection(dg.Config):
    """Where the brokers are and who to connect as; secrets via `dg.EnvVar`."""

    bootstrap_servers: str = Field(
        default="localhost:9092", description="Kafka `bootstrap.servers` (host:port,...)."
    )
    username: str | None = Field(default=None, description="SASL username; use dg.EnvVar.")
    password: str | None = Field(default=None, description="SASL password; use dg.EnvVar.")
    security_protocol: str | None = Field(
        default=None, description="e.g. SASL_SSL (the default when a username is given)."
    )
    sasl_mechanism: str = Field(default="PLAIN", description="SASL mechanism.")
    timeout_seconds: float = Field(
        default=15.0, description="Seconds any one broker call may take."
    )

    def where(self) -> str:
        """Where we connect, for messages (no credential)."""
        return self.bootstrap_servers

    def client_config(self) -> dict[str, Any]:
        """The connection part of every client's configuration (it holds the password)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "socket.timeout.ms": int(self.timeout_seconds * 1000),
            "client.id": "honey_duck",
        }
        protocol = self.security_protocol or ("SASL_SSL" if self.username else None)
        if protocol:
            conf["security.protocol"] = protocol
        if self.username:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.username
            conf["sasl.password"] = self.password or ""
        return conf

    def consumer_config(self) -> dict[str, Any]:
        """A `read_committed` consumer that reads whole partitions and commits nothing."""
        return {
            **self.client_config(),
            "group.id": f"honey_duck-reader-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            # a broker may answer a fetch with more than asked (noida-db sent 983 MB at once)
            "receive.message.max.bytes": 2_147_483_647,
        }

    def secrets(self) -> list[str | None]:
        return [self.password]


class KafkaIOManager(SinkIOManager):
    """Writes polars frames to Kafka topics (one JSON message per row, one transaction per
    write) and reads them back typed; what a topic keeps follows `cleanup_policy`.

    Example::

        kafka_io_manager = KafkaIOManager(
            connection=KafkaConnection(
                bootstrap_servers=dg.EnvVar("KAFKA_BOOTSTRAP"),
                username=dg.EnvVar("KAFKA_USERNAME"),
                password=dg.EnvVar("KAFKA_PASSWORD"),
            ),
        )

    and on each asset, the message key: `metadata={"upsert_keys": ["sale_id"]}`.
    """

    connection: KafkaConnection = Field(
        default_factory=KafkaConnection, description="The brokers, and who to connect as."
    )
    cleanup_policy: Literal["compact", "delete"] = Field(
        default="compact",
        description=(
            "compact: replace/upsert keyed topics (every asset gives upsert_keys); delete:"
            " append-only topics."
        ),
    )
    topic_partitions: int = Field(default=3, description="Partitions of a topic we create.")
    replication_factor: int = Field(default=1, description="Replicas of a topic we create.")
    compression: Literal["lz4", "zstd", "gzip", "snappy", "none"] = Field(
        default="lz4", description="Producer compression codec."
    )
    topic_prefix: str = Field(
        default="", description="Prepended to `<asset key joined by dots>` to name a topic."
    )
    schema_topic: str = Field(
        default=SCHEMA_TOPIC, description="The compacted topic holding each topic's schema."
    )
    linger_ms: int = Field(default=20, description="Producer linger before a batch is sent.")
    batch_bytes: int = Field(default=1_000_000, description="Producer batch size in bytes.")
    transaction_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        description=(
            "The longest one write (one transaction) may take before the broker aborts it; at"
            " most the broker's transaction.max.timeout.ms (Kafka's default: 15 minutes)."
        ),
    )

    @classmethod
    def target_class(cls) -> type[Target]:
        return KafkaTarget

    def target_capabilities(self) -> Capabilities:
        return COMPACT if self.cleanup_policy == "compact" else DELETE

    def target(self) -> KafkaTarget:
        return KafkaTarget(
            self.connection,
            cleanup_policy=self.cleanup_policy,
            partitions=self.topic_partitions,
            replication=self.replication_factor,
            compression=self.compression,
            prefix=self.topic_prefix,
            schema_topic=self.schema_topic,
            linger_ms=self.linger_ms,
            batch_bytes=self.batch_bytes,
            transaction_timeout_seconds=self.transaction_timeout_seconds,
        )
