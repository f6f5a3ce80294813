"""The Kafka sink: one JSON message per row, written in one Kafka transaction per write.

A topic keeps what its cleanup policy lets it keep. A compacted topic keeps the last message
per key, so it can be replaced (every row keyed, plus a tombstone for each live key the new
data lacks), re-run per partition (tombstones only for live keys whose last value lies in the
slice) and upserted (keyed rows only); every asset written there gives `upsert_keys`, which
are the message key. A topic that deletes by age keeps every message: it is appended to, and
nothing else. Either way a write is one transaction (`transactional.id` stable per topic and
partition label, so a restarted run fences the zombie of the previous attempt), and a failed
write leaves nothing visible to `read_committed` consumers.

Values are JSON built by polars in bulk from each batch; the exact polars schema is kept in a
compacted topic (`_honey_duck_schemas`, keyed by topic name) in the SAME transaction, so reads
come back typed exactly. Types JSON cannot carry as polars writes them travel in a wire form:
Decimal as its text, Time as `HH:MM:SS.fffffffff`, Duration as an integer count of its unit,
Binary as base64, a zoned Datetime as its UTC instant. NaN and infinity (JSON has neither)
and dates outside years 1..9999 are refused before anything is written, naming the column.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck import seam
from honey_duck.seam import Capabilities, Session, SinkIOManager, Target, Write, WriteMode
from honey_duck.seam.faults import ConnectFailed, OutcomeUnknown
from honey_duck.seam.records import RecordedSchema, RecordStore, SchemaRecord

SCHEMA_TOPIC = "_honey_duck_schemas"
TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
# Room a record batch needs around one message's value (batch and record headers, the key and
# our three headers are added on top): a value larger than the limit minus this is refused.
BATCH_OVERHEAD = 512
# How long a committed transaction's last messages may take to become visible to
# `read_committed` consumers (a broker writes the commit markers after it acknowledges).
VISIBLE_WITHIN_SECONDS = 5.0

# The run being written (its id goes into every message's headers): set by the manager.
_RUN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("honey_duck_kafka_run", default="")

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


class CommitNotVisible(RuntimeError):
    """The broker acknowledged a commit whose messages `read_committed` consumers cannot see
    (a broker that restarted between the last delivery and the commit may have forgotten the
    transaction): a replace or upsert is retried whole, an append raises OutcomeUnknown."""


# ---------------------------------------------------------------------------------------------
# Types: what travels in JSON, and back
# ---------------------------------------------------------------------------------------------

_INTS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
_NESTED_LEAVES = (*_INTS, pl.Boolean, pl.String, pl.Null)


def _nested_problem(dtype: pl.DataType) -> str | None:
    if isinstance(dtype, pl.List):
        return _nested_problem(dtype.inner)
    if isinstance(dtype, pl.Struct):
        for field in dtype.fields:
            if why := _nested_problem(field.dtype):
                return why
        return None
    if dtype.base_type() in _NESTED_LEAVES:
        return None
    return (
        f"{dtype} inside a list or struct is not carried exactly in JSON here (only integers,"
        " booleans and strings are); unnest the column or cast it"
    )


def unsupported(dtype: pl.DataType) -> str | None:
    """Why a column of `dtype` cannot travel as JSON exactly, or None."""
    if isinstance(dtype, pl.List | pl.Struct):
        return _nested_problem(dtype)
    if isinstance(dtype, pl.Array):
        return "fixed-size arrays are not supported; cast the column to a List"
    if dtype.base_type() in (pl.Object, pl.Int128, pl.UInt128):
        return f"{dtype} has no JSON form that reads back exactly"
    return None


def wire_type(dtype: pl.DataType) -> pl.DataType:
    """The type a column has in the JSON values (what `pl.read_ndjson` parses it as)."""
    if isinstance(dtype, pl.Decimal | pl.Categorical | pl.Enum) or dtype in (pl.Time, pl.Binary):
        return pl.String()
    if isinstance(dtype, pl.Duration):
        return pl.Int64()
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        return pl.Datetime(dtype.time_unit, "UTC")
    return dtype


def to_wire(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column as it is written into the JSON values."""
    col = seam.column(name)
    if isinstance(dtype, pl.Decimal | pl.Categorical | pl.Enum):
        col = col.cast(pl.String)
    elif dtype == pl.Time:
        col = col.dt.to_string("%H:%M:%S%.9f")
    elif dtype == pl.Binary:
        col = col.bin.encode("base64")
    elif isinstance(dtype, pl.Duration):
        col = col.cast(pl.Int64)
    elif isinstance(dtype, pl.Datetime) and dtype.time_zone:
        col = col.dt.convert_time_zone("UTC")
    return col.alias(name)


def from_wire(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column read from JSON (as `wire_type`), back to the type it was written with."""
    col = seam.column(name)
    if isinstance(dtype, pl.Decimal | pl.Categorical | pl.Enum):
        col = col.cast(dtype)
    elif dtype == pl.Time:
        col = col.str.to_time("%H:%M:%S%.9f")
    elif dtype == pl.Binary:
        col = col.str.decode("base64")
    elif isinstance(dtype, pl.Duration):
        col = col.cast(dtype)
    elif isinstance(dtype, pl.Datetime) and dtype.time_zone:
        col = col.dt.convert_time_zone(dtype.time_zone)
    return col.alias(name)


def json_values(schema: Mapping[str, pl.DataType], columns: Sequence[str] | None = None) -> pl.Expr:
    """One JSON object per row of `columns` (default: all), built by polars in bulk."""
    names = list(schema) if columns is None else list(columns)
    if not names:
        return pl.lit("{}")
    return pl.struct([to_wire(c, schema[c]) for c in names]).struct.json_encode()


def refusals(schema: pl.Schema) -> list[seam.Refusal]:
    """Values JSON cannot carry exactly: NaN and infinity, dates outside years 1..9999."""
    found = []
    for name, dtype in schema.items():
        col = seam.column(name)
        if dtype in (pl.Float32, pl.Float64):
            found.append(
                seam.Refusal(
                    name,
                    ~col.is_finite(),
                    "JSON has no NaN or infinity (a consumer would read null or fail);"
                    " replace them with null or a sentinel",
                )
            )
        elif dtype == pl.Date or isinstance(dtype, pl.Datetime):
            if isinstance(dtype, pl.Datetime) and dtype.time_zone:
                col = col.dt.convert_time_zone("UTC")
            found.append(
                seam.Refusal(
                    name,
                    ~col.dt.year().is_between(1, 9999),
                    "a date outside years 1..9999 has no ISO 8601 form JSON readers accept",
                )
            )
    return found


def decode(values: Sequence[bytes] | pl.Series, schema: pl.Schema) -> pl.DataFrame:
    """JSON values (one object per row) as a frame typed by the recorded `schema`.

    `str.json_decode` with the wire types: unlike `read_ndjson` it reads every integer width
    (nested ones too) and a column named "", and a field absent from an older message is null.
    """
    if len(values) == 0:
        return pl.DataFrame(schema=schema)
    wire = pl.Struct({c: wire_type(t) for c, t in schema.items()})
    text = pl.Series("v", values, dtype=pl.Binary).cast(pl.String)
    frame = text.str.json_decode(wire).struct.unnest()
    return frame.select(from_wire(c, t) for c, t in schema.items())


# ---------------------------------------------------------------------------------------------
# Configuration and clients
# ---------------------------------------------------------------------------------------------


def kafka_error(exc: BaseException) -> Any:
    """The KafkaError inside a KafkaException (or the error itself), else None."""
    from confluent_kafka import KafkaError

    if isinstance(exc, KafkaError):
        return exc
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], KafkaError) else None


def _transient_error(error: Any) -> bool:
    from confluent_kafka import KafkaError

    if error is None:
        return False
    if error.code() in (
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    ):
        return False
    # a fatal error (an idempotence sequence lost in a broker restart) ends this producer, not
    # the write: the transaction was not committed, and a retry's new producer fences it
    if error.retriable() or error.txn_requires_abort() or error.fatal():
        return True
    return error.code() in (
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._MSG_TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.CONCURRENT_TRANSACTIONS,
    )


@dataclass(frozen=True)
class KafkaSettings:
    """Everything a session needs to reach the brokers and shape its topics and batches."""

    bootstrap: str
    cleanup_policy: str
    partitions: int
    replication: int
    compression: str
    prefix: str
    username: str | None
    password: str | None
    security_protocol: str | None
    sasl_mechanism: str
    linger_ms: int
    batch_bytes: int
    timeout: float
    schema_topic: str

    def client(self) -> dict[str, Any]:
        """The connection part of every client's configuration (it holds the password)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "socket.timeout.ms": int(self.timeout * 1000),
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

    def producer(self, transactional_id: str) -> dict[str, Any]:
        return {
            **self.client(),
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_bytes,
            "transactional.id": transactional_id,
            "transaction.timeout.ms": 60_000,
            "message.timeout.ms": 60_000,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 262_144,
            "message.max.bytes": 64 * 1024 * 1024,
        }

    def consumer(self) -> dict[str, Any]:
        return {
            **self.client(),
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


def consume(
    settings: KafkaSettings, topic: str, on_missing: Callable[[], None] | None = None
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every committed message of `topic`, from the beginning to the high
    watermarks taken now (`read_committed`: an open or aborted transaction is not seen)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as TP

    consumer = Consumer(settings.consumer())
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=settings.timeout)
        except KafkaException as exc:
            raise _connect_failed(settings, exc) from None
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            if on_missing is not None:
                on_missing()
            return
        ends: dict[int, int] = {}
        for partition in described.partitions:
            low, high = consumer.get_watermark_offsets(
                TP(topic, partition), timeout=settings.timeout, cached=False
            )
            if high > low:
                ends[partition] = high
        if not ends:
            return
        consumer.assign([TP(topic, p, OFFSET_BEGINNING) for p in ends])
        # a broker may take long to assemble a large fetch: give up only after a long silence
        stall = max(60.0, 4 * settings.timeout)
        quiet_since = time.monotonic()
        while ends:
            message = consumer.poll(min(settings.timeout, 5.0))
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
            yield message.key(), message.value()
            if message.offset() >= ends[partition] - 1:
                del ends[partition]
    finally:
        consumer.close()


def _connect_failed(settings: KafkaSettings, exc: BaseException) -> ConnectFailed:
    error = kafka_error(exc)
    transient = error is None or _transient_error(error)
    return ConnectFailed(f"cannot connect to Kafka at {settings.bootstrap}: {exc}", transient)


def invisible(
    settings: KafkaSettings,
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
    consumer = Consumer(settings.consumer())
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
    import tempfile
    from pathlib import Path

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


# ---------------------------------------------------------------------------------------------
# Schema records on a compacted topic
# ---------------------------------------------------------------------------------------------


class TopicRecords(RecordStore):
    """Schema records as messages of a compacted topic keyed by topic name.

    A save is produced by the session's producer, inside the write's transaction: the record
    and the data are committed (or aborted) together.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.producer: Any = None  # the session's transactional producer, when writing
        self._cache: dict[str, dict[str, Any] | None] | None = None

    def documents(self) -> dict[str, dict[str, Any] | None]:
        """Every topic's record document, read once per session."""
        if self._cache is None:
            latest = last_per_key(consume(self.settings, self.settings.schema_topic))
            self._cache = {
                k.decode(): (json.loads(v) if v is not None else None)
                for k, v in latest.items()
                if k is not None
            }
        return self._cache

    def document(self, name: str) -> dict[str, Any] | None:
        return self.documents().get(name)

    def load(self, name: str) -> SchemaRecord | None:
        doc = self.document(name)
        return None if doc is None else SchemaRecord.from_json(doc)

    def save(self, name: str, record: SchemaRecord, **extra: Any) -> None:
        if self.producer is None:
            raise RuntimeError("schema records are saved inside a write's transaction")
        value = json.dumps(record.to_json(**extra), separators=(",", ":"))
        _produce(self.producer, self.settings.schema_topic, name, value, {})


# ---------------------------------------------------------------------------------------------
# The target and its session
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """Where an asset lives: a topic, and the asset it holds (for the message headers)."""

    name: str
    asset: str

    def __str__(self) -> str:
        return self.name


class KafkaSession(RecordedSchema, Session):
    """One write's transaction (or one read) against the brokers."""

    def __init__(self, target: KafkaTarget) -> None:
        self.target = target
        self.settings = target.settings
        self.records: TopicRecords = TopicRecords(self.settings)
        self._admin: Any = None

    # -- the pieces --------------------------------------------------------------------------

    def record_name(self, location: Topic) -> str:
        return location.name

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient(self.settings.client())
        return self._admin

    def check_reachable(self) -> None:
        from confluent_kafka import KafkaException

        try:
            self.admin().list_topics(timeout=self.settings.timeout)
        except KafkaException as exc:
            raise _connect_failed(self.settings, exc) from None

    def ensure_topic(self, name: str, policy: str, partitions: int) -> int:
        """Create `name` if missing (else check its cleanup policy); its max message bytes."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import ConfigResource, NewTopic

        admin = self.admin()
        try:
            if name not in admin.list_topics(timeout=self.settings.timeout).topics:
                topic = NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=self.settings.replication,
                    config={"cleanup.policy": policy},
                )
                try:
                    admin.create_topics([topic])[name].result(timeout=self.settings.timeout)
                except KafkaException as exc:
                    error = kafka_error(exc)
                    if error is None or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
            resource = ConfigResource(ConfigResource.Type.TOPIC, name)
            configs = admin.describe_configs([resource])[resource].result(
                timeout=self.settings.timeout
            )
        except KafkaException as exc:
            if _transient_error(kafka_error(exc)):
                raise _connect_failed(self.settings, exc) from None
            raise
        found = configs.get("cleanup.policy")
        if found is not None and found.value and found.value != policy:
            raise ValueError(
                f"topic {name!r} has cleanup.policy={found.value!r} but this sink writes"
                f" {policy!r} topics; use another topic (metadata `topic`) or change the"
                " manager's cleanup_policy"
            )
        limit = configs.get("max.message.bytes")
        try:
            return int(limit.value) if limit is not None and limit.value else 1_048_588
        except ValueError:
            return 1_048_588

    @contextmanager
    def transaction(
        self,
        location: Topic,
        partitions: seam.PartitionSlice | None,
        mode: WriteMode = WriteMode.REPLACE,
    ) -> Iterator[Any]:
        """A transactional producer with its transaction begun; committed on success, then
        checked visible to `read_committed` consumers (see `_check_visible`)."""
        from confluent_kafka import KafkaError, KafkaException, Producer

        label = partitions.label() if partitions is not None else ""
        digest = hashlib.sha1(f"{location.name}\0{label}".encode()).hexdigest()[:16]
        lost: list[Any] = []  # every broker went away at some point
        # the last offset delivered per (topic, partition), the schema record's included:
        # delivery reports come in order within a partition, so the last one is the highest
        last: dict[tuple[str, int], int] = {}

        def on_error(error: Any) -> None:
            if error.code() == KafkaError._ALL_BROKERS_DOWN:
                lost.append(error)

        def on_delivery(error: Any, message: Any) -> None:
            if error is None:
                last[message.topic(), message.partition()] = message.offset()

        conf = self.settings.producer(f"honey_duck-{location.name}-{digest}")
        producer = Producer({**conf, "error_cb": on_error, "on_delivery": on_delivery})
        try:
            try:
                producer.init_transactions(self.settings.timeout)
            except KafkaException as exc:
                raise _connect_failed(self.settings, exc) from None
            producer.begin_transaction()
            lost.clear()
            self.records.producer = producer
            try:
                yield producer
                # A broker that restarted during the transaction may have forgotten it (one
                # that keeps no transaction state on disk commits only what came after): such
                # a transaction is aborted and written again whole, never committed in part.
                remaining = producer.flush(self.settings.timeout)
                if lost or remaining:
                    raise ConnectFailed(
                        f"the connection to Kafka at {self.settings.bootstrap} broke during the"
                        f" transaction on topic {location.name!r}"
                        + (f" ({remaining} messages undelivered)" if remaining else "")
                        + "; it is aborted and retried whole",
                        transient=True,
                    )
            except BaseException:
                # not committed, so nothing is visible; if the abort fails too, the next
                # producer with this transactional.id (a retry) or the broker's timeout aborts it
                with suppress(Exception):
                    producer.abort_transaction(self.settings.timeout)
                raise
            finally:
                self.records.producer = None
            self._commit(producer, location)
        finally:
            with suppress(Exception):
                producer.purge()
                producer.close()
        self._check_visible(location, last, mode)

    def _commit(self, producer: Any, location: Topic) -> None:
        from confluent_kafka import KafkaException

        try:
            producer.commit_transaction(self.settings.timeout)
        except KafkaException as exc:
            error = kafka_error(exc)
            if error is not None and error.txn_requires_abort():
                with suppress(Exception):
                    producer.abort_transaction(self.settings.timeout)
                raise  # aborted: nothing was published, a retry may repeat it
            raise OutcomeUnknown(
                f"the commit of the transaction on topic {location.name!r} may or may not have"
                f" applied: {exc}"
            ) from exc

    def _check_visible(
        self, location: Topic, last: Mapping[tuple[str, int], int], mode: WriteMode
    ) -> None:
        """Refuse a commit the broker acknowledged but `read_committed` consumers cannot see.

        A broker that restarts between the last delivery and the commit may forget the
        transaction yet acknowledge its commit (noida-db does; a real broker keeps the state in
        `__transaction_state`): the last message of every partition written (the schema record
        too) must come back to a `read_committed` consumer within VISIBLE_WITHIN_SECONDS.
        """
        missing = invisible(self.settings, last, VISIBLE_WITHIN_SECONDS)
        if missing:
            # noida-db lists a producer's earlier aborted transactions (a fenced zombie's, an
            # aborted attempt's) in every fetch, so a consumer that starts after their abort
            # marker skips that producer's later messages too (Kafka lists only those a fetch
            # overlaps): confirm from the partition's beginning, which a consumer reads right
            missing = invisible(
                self.settings,
                {where: last[where] for where in missing},
                VISIBLE_WITHIN_SECONDS,
                from_beginning=True,
            )
        if not missing:
            return
        where = ", ".join(f"{topic}[{partition}]" for topic, partition in missing)
        said = (
            f"the broker acknowledged the commit of the transaction on topic {location.name!r},"
            f" but read_committed consumers cannot see its last message in {where} (checked"
            f" for up to {VISIBLE_WITHIN_SECONDS:g} s; a broker restart before the commit can"
            " lose an open transaction)"
        )
        if mode is WriteMode.APPEND:
            raise OutcomeUnknown(
                said + "; the append is NOT retried, so that its rows are never published"
                " twice: check the topic with a read_committed consumer and run it again only if"
                " its rows are missing"
            )
        raise CommitNotVisible(f"{said}; the {mode.value} is retried whole (it rewrites every row)")

    # -- the verbs ---------------------------------------------------------------------------

    def replace(self, write: Write) -> int:
        return self._write(write, tombstones="all")

    def replace_slice(self, write: Write) -> int:
        return self._write(write, tombstones="slice")

    def upsert(self, write: Write) -> int:
        return self._write(write, tombstones="none")

    def append(self, write: Write) -> int:
        return self._write(write, tombstones="none")

    def _write(self, write: Write, tombstones: Literal["all", "slice", "none"]) -> int:
        topic: Topic = write.location
        compact = self.settings.cleanup_policy == "compact"
        keys = list(write.settings.keys)
        schema = pl.Schema(write.schema)
        self.ensure_topic(self.settings.schema_topic, "compact", 1)
        limit = self.ensure_topic(
            topic.name, self.settings.cleanup_policy, self.settings.partitions
        )
        doc = self.records.document(topic.name) or {}
        live: set[bytes] = set()
        if compact:
            live = self._live_keys(topic, tombstones, write.partitions)
        frame = seam.conform(write.frame, schema)
        if compact and write.stored is not None and write.settings.mode is WriteMode.UPSERT:
            frame = self._keep_stored_values(topic, write, frame, schema)
        run_id = _RUN_ID.get()
        part_of = _part_expr(write.partitions, schema)
        existing, matched = len(live), 0
        # a dict of headers costs librdkafka half what a list of pairs does, per message
        headers_for: dict[str, dict[str, str]] = {}
        name = topic.name

        with self.transaction(topic, write.partitions, write.settings.mode) as producer:
            for batch in seam.iter_batches(frame, write.batch_rows):
                encoded = batch.select(
                    json_values(schema).alias("value"),
                    (json_values(schema, keys) if keys else pl.lit(None, pl.String)).alias("key"),
                    part_of.alias("part"),
                )
                _refuse_oversized(encoded, limit, topic.name)
                values, message_keys = encoded["value"].to_list(), encoded["key"].to_list()
                part_keys = encoded["part"].to_list() if write.partitions else None
                del encoded
                headers = {"asset": topic.asset, "partition": "", "run_id": run_id}
                for i, value in enumerate(values):
                    key = message_keys[i]
                    if part_keys is not None:
                        part = part_keys[i]
                        headers = headers_for.get(part) or headers_for.setdefault(
                            part, {"asset": topic.asset, "partition": part, "run_id": run_id}
                        )
                    # a message the broker refuses fails the commit; the producer-wide
                    # delivery callback only notes the last offset per partition
                    try:
                        producer.produce(name, value=value, key=key, headers=headers)
                    except BufferError:  # the local queue is full: wait for librdkafka
                        _produce(producer, name, key, value, headers)
                    if live and key is not None:  # a live key written again: no tombstone
                        found = key.encode()
                        if found in live:
                            live.discard(found)
                            matched += 1
            if tombstones != "none":  # the live keys the new data lacks
                headers = {"asset": topic.asset, "partition": "", "run_id": run_id}
                for dropped in live:
                    _produce(producer, name, dropped, None, headers)
            if write.settings.mode is WriteMode.APPEND:
                rows = int(doc.get("rows") or 0) + write.checked.rows
            elif write.settings.mode is WriteMode.UPSERT:
                rows = existing + write.checked.rows - matched
            else:  # a replace (of the topic, or of the slice) leaves exactly the new rows
                rows = write.checked.rows
            parts = dict(doc.get("rows_by_part") or {})
            for part, n in write.checked.rows_by_part.items():
                parts[part] = n if compact else int(parts.get(part, 0)) + n
            record = SchemaRecord(schema, tuple(keys))
            total = rows if write.partitions is None or not compact else None
            self.records.save(topic.name, record, rows=total, rows_by_part=parts)
        if write.partitions is not None and write.settings.mode is WriteMode.APPEND:
            return sum(int(parts.get(k, 0)) for k in write.partitions.keys)
        return rows

    def _live_keys(
        self, topic: Topic, tombstones: str, partitions: seam.PartitionSlice | None
    ) -> set[bytes]:
        """The live keys of a compacted topic (for a slice: those whose value lies in it)."""
        if tombstones != "slice" or partitions is None:  # keys only: no value is kept
            alive: dict[bytes, bool] = {}
            for key, value in consume(self.settings, topic.name):
                if key is not None:
                    alive[key] = value is not None
            return {k for k, v in alive.items() if v}
        stored = self.stored_schema(topic)
        if stored is None:
            return set()
        columns = [c for c in partitions.columns if c in stored]
        subset = pl.Schema({c: stored[c] for c in columns})
        found: set[bytes] = set()
        for chunk in live_messages(consume(self.settings, topic.name)):
            chunk = chunk.filter(pl.col("key").is_not_null())
            inside = decode(chunk["value"], subset).select(
                partitions.predicate(subset).fill_null(False)
            )
            found.update(chunk["key"].filter(inside.to_series()).to_list())
        return found

    def _keep_stored_values(
        self, topic: Topic, write: Write, frame: pl.LazyFrame, schema: pl.Schema
    ) -> pl.LazyFrame:
        """An upsert lacking stored columns keeps their stored values, as SQL's would."""
        keys = list(write.settings.keys)
        only_stored = [c for c in schema if c not in write.incoming]
        if not only_stored or write.stored is None:
            return frame
        # only the columns the join keeps are decoded (a JSON value's other fields are skipped)
        wanted = pl.Schema({c: write.stored[c] for c in keys + only_stored})
        existing = self._read_latest(topic, wanted)
        return seam.conform(
            write.frame.join(existing.lazy(), on=keys, how="left", nulls_equal=False), schema
        )

    def _read_latest(self, topic: Topic, schema: pl.Schema) -> pl.DataFrame:
        chunks = [
            decode(c["value"], schema) for c in live_messages(consume(self.settings, topic.name))
        ]
        return pl.concat(chunks) if chunks else pl.DataFrame(schema=schema)

    # -- reading -------------------------------------------------------------------------------

    def read(
        self,
        location: Topic,
        columns: Sequence[str] | None,
        partitions: seam.PartitionSlice | None,
    ) -> pl.LazyFrame:

        record = self.records.load(location.name)
        if record is None:
            raise ValueError(
                f"topic {location.name!r} has no schema record in {self.settings.schema_topic!r}:"
                " nothing was written there by this sink"
            )
        schema = record.schema
        wanted = list(columns) if columns else list(schema)
        missing = [c for c in wanted if c not in schema]
        if missing:
            raise KeyError(f"columns {missing} are not in topic {location.name!r}")
        out = pl.Schema({c: schema[c] for c in wanted})
        settings, compact, batch = self.settings, self.settings.cleanup_policy == "compact", 100_000
        predicate = partitions.predicate(schema) if partitions is not None else None
        needed = list(dict.fromkeys(wanted + (partitions.columns if partitions else [])))
        decoded = pl.Schema({c: schema[c] for c in needed})

        def values() -> Iterator[Sequence[bytes] | pl.Series]:
            messages = consume(settings, location.name)
            if compact:
                for live in live_messages(messages, batch):
                    yield live["value"]
                return
            chunk: list[bytes] = []
            for _, value in messages:
                if value is not None:
                    chunk.append(value)
                if len(chunk) >= batch:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

        def frames(batch_size: int | None) -> Iterator[pl.DataFrame]:
            for chunk in values():
                frame = decode(chunk, decoded)
                del chunk
                if predicate is not None:
                    frame = frame.filter(predicate)
                yield frame.select(wanted)

        return seam.scan_frames(frames, out)


def _part_expr(partitions: seam.PartitionSlice | None, schema: pl.Schema) -> pl.Expr:
    """Each row's partition key (for the `partition` header), or an empty string."""
    if partitions is None:
        return pl.lit("")
    if len(partitions.parts) == 1:
        return pl.lit(partitions.parts[0].key)
    chain: Any = pl
    for part in partitions.parts:
        chain = chain.when(part.predicate(schema)).then(pl.lit(part.key))
    return chain.otherwise(pl.lit(""))


def _refuse_oversized(encoded: pl.DataFrame, limit: int, topic: str) -> None:
    """Refuse, before it is produced, a message larger than the topic's `max.message.bytes`."""
    size = pl.col("value").str.len_bytes() + pl.col("key").str.len_bytes().fill_null(0)
    too_big = encoded.filter(size > limit - BATCH_OVERHEAD)
    if too_big.height:
        value, key, _ = too_big.row(0)
        raise ValueError(
            f"{too_big.height} message(s) exceed topic {topic!r}'s max.message.bytes ({limit});"
            f" the first has key {key if key is not None else '(no key)'} and"
            f" {len(value.encode())} bytes of value; split the row or raise the topic's limit"
        )


def _produce(
    producer: Any,
    topic: str,
    key: str | bytes | None,
    value: str | bytes | None,
    headers: dict[str, str],
) -> None:
    """Produce one message, waiting while the local queue is full."""
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers)
            return
        except BufferError:
            producer.poll(0.05)


class KafkaTarget(Target):
    """Kafka topics: JSON values, transactional producers, a compacted schema topic."""

    word = "kafka"
    capabilities: ClassVar[Capabilities] = COMPACT

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings

    def unsupported(self, dtype: pl.DataType) -> str | None:
        return unsupported(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        return refusals(schema)

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> Topic:
        raw = metadata.get("topic")
        raw = raw.value if isinstance(raw, dg.MetadataValue) else raw
        name = str(raw) if raw else self.settings.prefix + ".".join(key.path)
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
        first = self.settings.bootstrap.split(",")[0].strip()
        return f"kafka://{first}/{location.name}"

    def transient(self, exc: BaseException) -> bool:
        if isinstance(exc, ConnectFailed):
            return exc.transient
        if isinstance(exc, CommitNotVisible):  # a replace or upsert: a new transaction redoes it
            return True
        return _transient_error(kafka_error(exc))

    def secrets(self) -> Sequence[str | None]:
        return [self.settings.password]

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

    @classmethod
    def target_class(cls) -> type[Target]:
        return KafkaTarget

    def target_capabilities(self) -> Capabilities:
        return COMPACT if self.cleanup_policy == "compact" else DELETE

    def settings(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap=self.connection.bootstrap_servers,
            cleanup_policy=self.cleanup_policy,
            partitions=self.topic_partitions,
            replication=self.replication_factor,
            compression=self.compression,
            prefix=self.topic_prefix,
            username=self.connection.username,
            password=self.connection.password,
            security_protocol=self.connection.security_protocol,
            sasl_mechanism=self.connection.sasl_mechanism,
            linger_ms=self.linger_ms,
            batch_bytes=self.batch_bytes,
            timeout=self.connection.timeout_seconds,
            schema_topic=self.schema_topic,
        )

    def target(self) -> KafkaTarget:
        return KafkaTarget(self.settings())

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        token = _RUN_ID.set(context.run_id or "")
        try:
            super().handle_output(context, obj)
        finally:
            _RUN_ID.reset(token)
