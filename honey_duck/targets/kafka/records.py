"""Schema records on a compacted topic (`_honey_duck_schemas`), one message per data topic."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from honey_duck.seam.records import RecordStore, SchemaRecord
from honey_duck.targets.kafka.consume import consume, last_per_key

if TYPE_CHECKING:
    from honey_duck.targets.kafka.outbox import Outbox
    from honey_duck.targets.kafka.target import KafkaConnection


class TopicRecords(RecordStore):
    """Schema records as messages of a compacted topic keyed by topic name.

    A save is produced by the session's producer, inside the write's transaction: the record
    and the data are committed (or aborted) together.
    """

    def __init__(self, connection: KafkaConnection, schema_topic: str) -> None:
        self.connection = connection
        self.schema_topic = schema_topic
        self.producer: Any = None  # the session's transactional producer, when writing
        self.outbox: Outbox | None = None  # what sends through it
        self._cache: dict[str, dict[str, Any] | None] | None = None

    def documents(self) -> dict[str, dict[str, Any] | None]:
        """Every topic's record document, read once per session."""
        if self._cache is None:
            latest = last_per_key(consume(self.connection, self.schema_topic))
            self._cache = {
                k.decode(): (json.loads(v) if v is not None else None)
                for k, v in latest.items()
                if k is not None
            }
        return self._cache

    def forget(self) -> None:
        """Read the records again on the next look (another writer may have changed them)."""
        self._cache = None

    def document(self, name: str) -> dict[str, Any] | None:
        return self.documents().get(name)

    def load(self, name: str) -> SchemaRecord | None:
        doc = self.document(name)
        return None if doc is None else SchemaRecord.from_json(doc)

    def save(self, name: str, record: SchemaRecord, **extra: Any) -> None:
        if self.outbox is None:
            raise RuntimeError("schema records are saved inside a write's transaction")
        value = json.dumps(record.to_json(**extra), separators=(",", ":"))
        self.outbox.send_one(self.schema_topic, name, value)
