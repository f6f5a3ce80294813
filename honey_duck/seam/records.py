"""Schema records: how a target without a catalog keeps each location's schema.

Document stores, brokers, key-value stores, HTTP APIs and plain files have no catalog to ask
for a location's column types, yet `strict`/`evolve` need the stored schema and reads must come
back typed even when nothing is stored. Such a target keeps one `SchemaRecord` per location in
a `RecordStore` of its own kind (a sidecar file, a collection, a compacted topic, a hash) and
serves `Session.stored_schema` from it; `RecordedSchema` is that method, written once.
"""

from __future__ import annotations

import abc
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import polars as pl
from upath import UPath

from honey_duck.seam.schema import schema_from_json, schema_to_json


@dataclass(frozen=True)
class SchemaRecord:
    """A location's exact polars schema, its upsert keys, and when it was written."""

    schema: pl.Schema
    keys: tuple[str, ...] = ()
    written: str | None = None  # an ISO time, for stores where "when" helps a reader

    def to_json(self, **extra: Any) -> dict[str, Any]:
        """A JSON document (readable column list, exact Arrow schema); `extra` is kept as is.

        The same record gives the same bytes, so a replace with the same data rewrites a
        sidecar identically.
        """
        doc = {**schema_to_json(self.schema), "keys": list(self.keys)}
        if self.written:
            doc["written"] = self.written
        return {**doc, **extra}

    def dumps(self, **extra: Any) -> str:
        return json.dumps(self.to_json(**extra), indent=1)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SchemaRecord:
        return cls(schema_from_json(doc), tuple(doc.get("keys") or ()), doc.get("written"))

    @classmethod
    def loads(cls, text: str | bytes) -> SchemaRecord:
        return cls.from_json(json.loads(text))


class RecordStore(abc.ABC):
    """Where one target keeps its schema records, one per location name."""

    @abc.abstractmethod
    def load(self, name: str) -> SchemaRecord | None:
        """The record of `name`, or None when nothing was ever written there."""

    @abc.abstractmethod
    def save(self, name: str, record: SchemaRecord) -> None:
        """Replace the record of `name` (atomically, where the store can)."""


class FolderRecords(RecordStore):
    """Records as JSON files in a folder of any filesystem fsspec knows (local, s3://, gs://).

    For targets whose own API keeps nothing (HTTP endpoints, e-mail): the records live where
    the deployment keeps its files. Each save writes a new file, then renames (or PUTs) it
    into place, so a reader sees the old record or the new one.
    """

    def __init__(self, folder: UPath) -> None:
        self.folder = folder

    def _path(self, name: str) -> UPath:
        safe = "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02X}" for c in name)
        return self.folder / f"{safe}.schema.json"

    def load(self, name: str) -> SchemaRecord | None:
        path = self._path(name)
        return SchemaRecord.loads(path.read_text()) if path.exists() else None

    def save(self, name: str, record: SchemaRecord) -> None:
        path = self._path(name)
        stamped = record if record.written else replace(record, written=now())
        self.folder.mkdir(parents=True, exist_ok=True)
        if path.protocol in ("", "file", "local"):
            staged = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            staged.write_text(stamped.dumps())
            os.replace(staged.path, path.path)
        else:
            path.write_text(stamped.dumps())  # one PUT: atomic for readers


def now() -> str:
    """The time a record is written, as records keep it (UTC, to the second)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class RecordedSchema:
    """`Session.stored_schema` for a target that keeps schema records.

    Mix it into a session that sets `self.records` (a RecordStore) and implements
    `record_name(location)`; `save_schema` is called by the verbs once the data is written.
    """

    records: RecordStore

    def record_name(self, location: Any) -> str:
        raise NotImplementedError

    def stored_schema(self, location: Any, partitions: Any = None) -> pl.Schema | None:
        record = self.records.load(self.record_name(location))
        return None if record is None else record.schema

    def save_schema(self, location: Any, schema: Mapping[str, Any], keys: tuple = ()) -> None:
        self.records.save(self.record_name(location), SchemaRecord(pl.Schema(schema), keys))
