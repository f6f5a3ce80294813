"""One session against the brokers: the verbs of a write (in one transaction), and reading."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from honey_duck import seam
from honey_duck.seam import Session, Write, WriteMode
from honey_duck.seam.records import RecordedSchema, SchemaRecord
from honey_duck.targets.kafka.consume import consume, live_messages
from honey_duck.targets.kafka.errors import (
    StoredChanged,
    connect_failed,
    kafka_error,
    transient_error,
)
from honey_duck.targets.kafka.records import TopicRecords
from honey_duck.targets.kafka.transaction import Transactions, produce_waiting
from honey_duck.targets.kafka.wire import decode, json_values

if TYPE_CHECKING:
    from honey_duck.targets.kafka.target import KafkaTarget, Topic

# Room a record batch needs around one message's value (batch and record headers, the key and
# our three headers are added on top): a value larger than the limit minus this is refused.
BATCH_OVERHEAD = 512


class KafkaSession(Transactions, RecordedSchema, Session):
    """One write's transaction (or one read) against the brokers."""

    def __init__(self, target: KafkaTarget) -> None:
        self.target = target
        self.connection = target.connection
        self.records = TopicRecords(target.connection, target.schema_topic)
        self._admin: Any = None

    # -- the pieces --------------------------------------------------------------------------

    def record_name(self, location: Topic) -> str:
        return location.name

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient(self.connection.client_config())
        return self._admin

    def check_reachable(self) -> None:
        from confluent_kafka import KafkaException

        try:
            self.admin().list_topics(timeout=self.connection.timeout_seconds)
        except KafkaException as exc:
            raise connect_failed(self.connection.where(), exc) from None

    def ensure_topic(self, name: str, policy: str, partitions: int) -> int:
        """Create `name` if missing (else check its cleanup policy); its max message bytes."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import ConfigResource, NewTopic

        admin = self.admin()
        try:
            if name not in admin.list_topics(timeout=self.connection.timeout_seconds).topics:
                topic = NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=self.target.replication,
                    config={"cleanup.policy": policy},
                )
                try:
                    admin.create_topics([topic])[name].result(
                        timeout=self.connection.timeout_seconds
                    )
                except KafkaException as exc:
                    error = kafka_error(exc)
                    if error is None or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
            resource = ConfigResource(ConfigResource.Type.TOPIC, name)
            configs = admin.describe_configs([resource])[resource].result(
                timeout=self.connection.timeout_seconds
            )
        except KafkaException as exc:
            if transient_error(kafka_error(exc)):
                raise connect_failed(self.connection.where(), exc) from None
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
        compact = self.target.cleanup_policy == "compact"
        keys = list(write.settings.keys)
        schema = pl.Schema(write.schema)
        self.ensure_topic(self.target.schema_topic, "compact", 1)
        limit = self.ensure_topic(topic.name, self.target.cleanup_policy, self.target.partitions)
        run_id = write.run.run_id
        part_of = _part_expr(write.partitions, schema)
        # a dict of headers costs librdkafka half what a list of pairs does, per message
        headers_for: dict[str, dict[str, str]] = {}
        name = topic.name

        with self.transaction(topic, write.settings.mode) as producer:
            # the topic is ours from here on (any other writer of it fenced, or committed):
            # only now are its record and live keys read, so that they are what is replaced
            doc = self._unchanged_record(topic, write)
            live: set[bytes] = set()
            if compact:
                live = self._live_keys(topic, tombstones, write.partitions)
            frame = seam.conform(write.frame, schema)
            if compact and write.stored is not None and write.settings.mode is WriteMode.UPSERT:
                frame = self._keep_stored_values(topic, write, frame, schema)
            existing, matched = len(live), 0
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
                        produce_waiting(producer, name, key, value, headers)
                    if live and key is not None:  # a live key written again: no tombstone
                        found = key.encode()
                        if found in live:
                            live.discard(found)
                            matched += 1
            if tombstones != "none":  # the live keys the new data lacks
                headers = {"asset": topic.asset, "partition": "", "run_id": run_id}
                for dropped in live:
                    produce_waiting(producer, name, dropped, None, headers)
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

    def _unchanged_record(self, topic: Topic, write: Write) -> dict[str, Any]:
        """The topic's record document read again, now that the topic is ours; refused (and
        retried) when another writer changed the schema since this write decided it."""
        self.records.forget()
        doc = self.records.document(topic.name)
        now = None if doc is None else dict(SchemaRecord.from_json(doc).schema)
        before = None if write.stored is None else dict(write.stored)
        if now != before:
            raise StoredChanged(
                f"the schema record of topic {topic.name!r} changed after this write compared"
                " its columns with it (another writer committed in between); the write is"
                " retried against what is stored now"
            )
        return doc or {}

    def _live_keys(
        self, topic: Topic, tombstones: str, partitions: seam.PartitionSlice | None
    ) -> set[bytes]:
        """The live keys of a compacted topic (for a slice: those whose value lies in it)."""
        if tombstones != "slice" or partitions is None:  # keys only: no value is kept
            alive: dict[bytes, bool] = {}
            for key, value in consume(self.connection, topic.name):
                if key is not None:
                    alive[key] = value is not None
            return {k for k, v in alive.items() if v}
        stored = self.stored_schema(topic)
        if stored is None:
            return set()
        columns = [c for c in partitions.columns if c in stored]
        subset = pl.Schema({c: stored[c] for c in columns})
        found: set[bytes] = set()
        for chunk in live_messages(consume(self.connection, topic.name)):
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
            decode(c["value"], schema) for c in live_messages(consume(self.connection, topic.name))
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
                f"topic {location.name!r} has no schema record in {self.target.schema_topic!r}:"
                " nothing was written there by this sink"
            )
        schema = record.schema
        wanted = list(columns) if columns else list(schema)
        missing = [c for c in wanted if c not in schema]
        if missing:
            raise KeyError(f"columns {missing} are not in topic {location.name!r}")
        out = pl.Schema({c: schema[c] for c in wanted})
        connection, batch = self.connection, 100_000
        compact = self.target.cleanup_policy == "compact"
        predicate = partitions.predicate(schema) if partitions is not None else None
        needed = list(dict.fromkeys(wanted + (partitions.columns if partitions else [])))
        decoded = pl.Schema({c: schema[c] for c in needed})

        def values() -> Iterator[Sequence[bytes] | pl.Series]:
            messages = consume(connection, location.name)
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
