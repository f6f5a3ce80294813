"""One session against the brokers: the verbs of a write (in one transaction), and reading."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from honey_duck import seam
from honey_duck.seam import Session, Write, WriteMode
from honey_duck.seam.records import RecordedSchema, SchemaRecord
from honey_duck.targets.kafka import checks, reading
from honey_duck.targets.kafka.consume import consume, header_of, live_messages
from honey_duck.targets.kafka.errors import StoredChanged, WriterFenced, connect_failed
from honey_duck.targets.kafka.outbox import Outbox, partition_header
from honey_duck.targets.kafka.records import TopicRecords
from honey_duck.targets.kafka.topics import Topics
from honey_duck.targets.kafka.transaction import Transactions
from honey_duck.targets.kafka.wire import decode, json_values

if TYPE_CHECKING:
    from honey_duck.targets.kafka.target import KafkaTarget, Topic

Tombstones = Literal["all", "slice", "none"]


class KafkaSession(Transactions, RecordedSchema, Session):
    """One write's transaction (or one read) against the brokers."""

    def __init__(self, target: KafkaTarget) -> None:
        self.target = target
        self.connection = target.connection
        self.records = TopicRecords(target.connection, target.schema_topic)
        self.topics = Topics(target.connection, target.replication)

    def record_name(self, location: Topic) -> str:
        return location.name

    def check_reachable(self) -> None:
        from confluent_kafka import KafkaException

        try:
            self.topics.admin().list_topics(timeout=self.connection.timeout_seconds)
        except KafkaException as exc:
            raise connect_failed(self.connection.where(), exc) from None

    # -- the verbs ---------------------------------------------------------------------------

    def replace(self, write: Write) -> int:
        return self._write(write, tombstones="all")

    def replace_slice(self, write: Write) -> int:
        return self._write(write, tombstones="slice")

    def upsert(self, write: Write) -> int:
        return self._write(write, tombstones="none")

    def append(self, write: Write) -> int:
        return self._write(write, tombstones="none")

    def _write(self, write: Write, tombstones: Tombstones) -> int:
        topic: Topic = write.location
        policy, compact = self.target.cleanup_policy, self.target.cleanup_policy == "compact"
        schema = pl.Schema(write.schema)
        keys = checks.message_keys(topic.name, write, self.records.document(topic.name), compact)
        key_of = json_values(schema, keys) if keys else pl.lit(None, pl.String)
        frame = seam.conform(write.frame, schema)
        # everything refused is refused before a topic or a record is created
        configs = self.topics.checked(topic.name, policy)
        limit = self.topics.max_message_bytes(configs)
        checks.refuse_oversized(frame, schema, key_of, limit, topic.name)
        self.topics.ensure(self.target.schema_topic, "compact", 1)
        if configs is None:
            self.topics.create(topic.name, policy, self.target.partitions)
        count = self.topics.partition_count(topic.name)
        seen = [self.records.document(topic.name)]  # the record as this write last saw it
        try:
            return self._write_taken(write, tombstones, keys, key_of, frame, count, seen)
        except WriterFenced as fenced:
            raise self.after_fenced(topic, seen[-1], fenced) from fenced

    def _write_taken(
        self,
        write: Write,
        tombstones: Tombstones,
        keys: list[str],
        key_of: pl.Expr,
        frame: pl.LazyFrame,
        count: int,
        seen: list[dict[str, Any] | None],
    ) -> int:
        """The write itself, in a transaction that holds the topic."""
        topic: Topic = write.location
        compact = self.target.cleanup_policy == "compact"
        schema = pl.Schema(write.schema)
        with self.transaction(topic, write.settings.mode) as outbox:
            # the topic is ours from here on (any other writer of it fenced, or committed):
            # only now are its record and live keys read, so that they are what is replaced
            doc = self._unchanged_record(topic, write)
            seen.append(doc or None)
            if checks.message_keys(topic.name, write, doc, compact) != keys:
                raise StoredChanged(f"the keys of topic {topic.name!r} changed meanwhile")
            live: set[bytes] = set()
            if compact:
                live, outside = self._live_keys(topic, tombstones, write.partitions)
                if write.partitions is not None and tombstones == "slice":
                    checks.refuse_moved_keys(
                        frame, key_of, outside, topic.name, write.partitions,
                        lambda key: header_of(self.connection, topic.name, key, "partition"),
                    )  # fmt: skip
                if write.stored is not None and write.settings.mode is WriteMode.UPSERT:
                    frame = self._keep_stored_values(topic, write, frame, schema)
            self._send(outbox, topic, write, frame, schema, key_of, live, count)
            if tombstones != "none" and live:  # the live keys the new data lacks
                headers = {"asset": topic.asset, "partition": "", "run_id": write.run.run_id}
                dropped = list(live)
                outbox.send(topic.name, count, [None] * len(dropped), dropped, headers)
            return self._save_record(topic, write, schema, keys, doc, len(live))

    def _send(
        self,
        outbox: Outbox,
        topic: Topic,
        write: Write,
        frame: pl.LazyFrame,
        schema: pl.Schema,
        key_of: pl.Expr,
        live: set[bytes],
        count: int,
    ) -> None:
        """Produce every row; a live key written again needs no tombstone and leaves `live`."""
        run_id = write.run.run_id
        part_of = partition_header(write.partitions, schema)
        # one headers dict per partition key, reused for its every message
        headers_for: dict[str, dict[str, str]] = {}

        def headers(part: str) -> dict[str, str]:
            return headers_for.setdefault(
                part, {"asset": topic.asset, "partition": part, "run_id": run_id}
            )

        for batch in seam.iter_batches(frame, write.batch_rows):
            encoded = batch.select(
                json_values(schema).alias("value"),
                key_of.cast(pl.Binary).alias("key"),
                part_of.alias("part"),
            )
            values, message_keys = encoded["value"].to_list(), encoded["key"].to_list()
            if write.partitions is None or len(write.partitions.parts) == 1:
                each: Any = headers(write.partitions.keys[0] if write.partitions else "")
            else:
                each = [headers(part) for part in encoded["part"].to_list()]
            del encoded
            outbox.send(topic.name, count, values, message_keys, each)
            if live:
                live.difference_update(message_keys)

    def _save_record(
        self,
        topic: Topic,
        write: Write,
        schema: pl.Schema,
        keys: list[str],
        doc: Mapping[str, Any],
        untouched: int,
    ) -> int:
        """The schema record, in the same transaction; the rows the topic (or slice) holds."""
        compact = self.target.cleanup_policy == "compact"
        mode = write.settings.mode
        if mode is WriteMode.APPEND:
            rows = int(doc.get("rows") or 0) + write.checked.rows
        elif mode is WriteMode.UPSERT:  # the live keys it did not write again, and its rows
            rows = untouched + write.checked.rows
        else:  # a replace (of the topic, or of the slice) leaves exactly the new rows
            rows = write.checked.rows
        parts = dict(doc.get("rows_by_part") or {})
        for part, n in write.checked.rows_by_part.items():
            parts[part] = n if compact else int(parts.get(part, 0)) + n
        total = rows if write.partitions is None or not compact else None
        # `write` makes every record unique: a fenced writer sees the new one come
        self.records.save(
            topic.name,
            SchemaRecord(schema, tuple(keys)),
            rows=total,
            rows_by_part=parts,
            run_id=write.run.run_id,
            write=uuid.uuid4().hex[:16],
        )
        if write.partitions is not None and mode is WriteMode.APPEND:
            return sum(int(parts.get(k, 0)) for k in write.partitions.keys)
        return rows

    # -- what is stored ----------------------------------------------------------------------

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
        self, topic: Topic, tombstones: Tombstones, partitions: seam.PartitionSlice | None
    ) -> tuple[set[bytes], pl.Series]:
        """The live keys of a compacted topic to tombstone if the new data lacks them (for a
        slice: those whose value lies in it), and the live keys outside the slice."""
        outside = pl.Series("key", [], dtype=pl.Binary)
        if tombstones != "slice" or partitions is None:  # keys only: no value is kept
            alive: dict[bytes, bool] = {}
            for key, value in consume(self.connection, topic.name):
                if key is not None:
                    alive[key] = value is not None
            return {k for k, v in alive.items() if v}, outside
        stored = self.stored_schema(topic)
        if stored is None:
            return set(), outside
        columns = [c for c in partitions.columns if c in stored]
        subset = pl.Schema({c: stored[c] for c in columns})
        found: set[bytes] = set()
        elsewhere = [outside]
        for chunk in live_messages(consume(self.connection, topic.name)):
            chunk = chunk.filter(pl.col("key").is_not_null())
            inside = decode(chunk["value"], subset).select(
                partitions.predicate(subset).fill_null(False)
            )
            mask = inside.to_series()
            found.update(chunk["key"].filter(mask).to_list())
            elsewhere.append(chunk["key"].filter(~mask))
        return found, pl.concat(elsewhere)

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
        existing = reading.latest(self.connection, topic.name, wanted)
        return seam.conform(
            write.frame.join(existing.lazy(), on=keys, how="left", nulls_equal=False), schema
        )

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
        compact = self.target.cleanup_policy == "compact"
        return reading.scan_topic(
            self.connection, location.name, record.schema, compact, columns, partitions
        )
