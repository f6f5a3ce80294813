"""The session: the contract's verbs on one client, and the schema record of each collection.

Every write verb holds the collection's lease (`lock`), so writers of one collection serialise.

replace        staging collection, its indexes, renameCollection(dropTarget=True) (`replace`)
replace_slice  delete the slice and insert its rows in one transaction (a replica set);
upsert         unique index on the keys, unordered UpdateOne($set, upsert=True) batches, in
               one transaction (a replica set);
append         insert batches, in one transaction (a replica set).
Without transactions a slice replace or an upsert leaves a pending marker that readers refuse
until a rerun of it completes; an append that stops part-way is reported as such.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl

from honey_duck import seam
from honey_duck.seam import Session, Write
from honey_duck.seam.faults import OutcomeUnknown
from honey_duck.seam.records import SchemaRecord, now
from honey_duck.targets.mongo.decode import scan
from honey_duck.targets.mongo.encode import raw_documents
from honey_duck.targets.mongo.errors import describe, failure
from honey_duck.targets.mongo.filters import slice_filter
from honey_duck.targets.mongo.lock import Lease, locked
from honey_duck.targets.mongo.names import RECORDS, Collection
from honey_duck.targets.mongo.replace import RenameReplace

if TYPE_CHECKING:
    from honey_duck.targets.mongo.target import MongoTarget

SEND_ROWS = 10_000  # rows encoded and sent at a time (pymongo splits them into messages)


class MongoSession(RenameReplace, Session):
    """The contract's verbs on one client and its session (a transaction where there are any)."""

    def __init__(self, target: MongoTarget, client: Any, session: Any, transactions: bool) -> None:
        self.target, self.client, self.session = target, client, session
        self.transactions = transactions
        self.lease: Lease | None = None  # the collection's, while a write verb runs

    def confirm_lease(self) -> None:
        """Before a write becomes visible: fail if its lease was lost to another writer."""
        if self.lease is not None:
            self.lease.confirm()

    def db(self, location: Collection) -> Any:
        return self.client[location.database]

    # -- the schema record ------------------------------------------------------------------

    def _record_doc(self, location: Collection) -> dict | None:
        return self.db(location)[RECORDS].find_one({"_id": location.name}, session=self.session)

    def record(self, location: Collection) -> SchemaRecord | None:
        """The record describing what the collection holds now.

        A replace saves the new schema as `next` (with its staging collection's name) before
        its rename and makes it `current` after; a record still holding `next` says which
        side of the rename the writer stopped at: its staging collection still there means
        the rename never happened.
        """
        doc = self._record_doc(location)
        if doc is None:
            return None
        pending = doc.get("next")
        if pending:
            staged = self.db(location).list_collection_names(
                filter={"name": pending["staging"]}, session=self.session
            )
            if not staged:  # renamed into place, then the writer stopped
                return SchemaRecord.from_json(pending["record"])
        current = doc.get("current")
        return SchemaRecord.from_json(current) if current else None

    def save_record(
        self,
        location: Collection,
        schema: Mapping[str, Any],
        keys: Sequence[str],
        replaced: bool = False,
    ) -> None:
        """Record what the collection holds now (`replaced`: all of it was just rewritten, so
        no upsert is left half-applied)."""
        record = SchemaRecord(pl.Schema(schema), tuple(keys), now())
        unset = {"next": "", "pending_slices": ""}
        if replaced:
            unset["pending_upserts"] = ""
        self.db(location)[RECORDS].update_one(
            {"_id": location.name},
            {"$set": {"current": record.to_json()}, "$unset": unset},
            upsert=True,
            session=self.session,
        )

    def stored_schema(self, location: Collection, partitions: Any = None) -> pl.Schema | None:
        record = self.record(location)
        return None if record is None else record.schema

    # -- helpers --------------------------------------------------------------------------

    def _keys(self, write: Write, location: Collection) -> tuple[str, ...]:
        """The upsert keys this collection is kept unique on (this write's, else recorded)."""
        if write.keys:
            return write.keys
        record = self.record(location)
        return record.keys if record else ()

    def _batches(self, write: Write) -> Iterator[pl.DataFrame]:
        """The incoming rows, in the schema's column order, in bounded batches.

        Each `batch_rows` batch is sent in slices of at most `SEND_ROWS` rows: the BSON of
        one slice (three copies while it is built) is what a write holds beyond the batch.
        """
        present = [c for c in write.schema if c in write.incoming]
        for batch in seam.iter_batches(write.frame.select(present), write.batch_rows):
            yield from batch.iter_slices(SEND_ROWS)

    def _insert(self, collection: Any, write: Write, session: Any = None) -> int:
        from pymongo import errors

        rows = 0
        for batch in self._batches(write):
            try:
                collection.insert_many(raw_documents(batch), ordered=True, session=session)
            except errors.PyMongoError as exc:  # it quotes the failed row's bytes
                raise failure(exc, rows) from None
            rows += batch.height
        return rows

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A multi-document transaction (its commit's outcome may be unknown on a failure)."""
        from pymongo import errors

        self.session.start_transaction()
        try:
            yield self.session
            self.confirm_lease()
        except BaseException:
            if self.session.in_transaction:
                self.session.abort_transaction()
            raise
        try:
            self.session.commit_transaction()
        except errors.PyMongoError as exc:
            if exc.has_error_label("UnknownTransactionCommitResult"):
                raise OutcomeUnknown(
                    f"the commit's outcome is unknown: {describe(exc)}"
                ) from failure(exc)
            raise

    def _unique_index(self, collection: Any, keys: Sequence[str], session: Any = None) -> None:
        if keys:
            collection.create_index(
                [(k, 1) for k in keys], unique=True, name="_hd_keys_" + "_".join(keys),
                session=session,
            )  # fmt: skip

    def _create(self, location: Collection) -> None:
        """Create the collection before a transaction writes into it (not every server can
        create one inside a transaction)."""
        if location.name not in self.db(location).list_collection_names():
            self.db(location).create_collection(location.name)

    def _count(self, collection: Any, query: dict, session: Any = None) -> int:
        return collection.count_documents(query, session=session)

    # -- the verbs --------------------------------------------------------------------------

    @locked
    def replace_slice(self, write: Write) -> int:
        location: Collection = write.location
        collection = self.db(location)[location.name]
        query = slice_filter(write.partitions, write.schema)
        keys = self._keys(write, location)
        if self.transactions:
            self._create(location)
            self._unique_index(collection, keys)
            with self._transaction() as session:
                collection.delete_many(query, session=session)
                self._insert(collection, write, session)
                self.save_record(location, write.schema, keys)
                return self._count(collection, query, session)

        # Without transactions: a marker names the slice while it is half-replaced; a reader
        # refuses the collection until a rerun of the slice completes and clears it.
        def replace() -> None:
            self._unique_index(collection, keys)
            collection.delete_many(query)
            self._insert(collection, write)

        self._marked("pending_slices", write, keys, replace)
        return self._count(collection, query)

    @locked
    def append(self, write: Write) -> int:
        location: Collection = write.location
        collection = self.db(location)[location.name]
        keys = self._keys(write, location)
        if self.transactions:
            self._create(location)
            with self._transaction() as session:
                self._insert(collection, write, session)
                self.save_record(location, write.schema, keys)
                return self._count(
                    collection, slice_filter(write.partitions, write.schema), session
                )
        try:
            self._insert(collection, write)
        except Exception as exc:
            raise OutcomeUnknown(f"an append stopped part-way: {exc}") from exc
        self.save_record(location, write.schema, keys)
        return self._count(collection, slice_filter(write.partitions, write.schema))

    @locked
    def upsert(self, write: Write) -> int:
        location: Collection = write.location
        collection = self.db(location)[location.name]
        keys = list(write.keys)
        query = slice_filter(write.partitions, write.schema)
        if self.transactions:
            self._create(location)
            self._unique_index(collection, keys)
            with self._transaction() as session:
                self._upsert_batches(collection, write, session)
                self.save_record(location, write.schema, keys)
                return self._count(collection, query, session)

        # Without transactions: a marker says an upsert is half-applied; a reader refuses the
        # collection until a rerun of it (or a replace) completes and clears it.
        def upsert() -> None:
            self._unique_index(collection, keys)
            self._upsert_batches(collection, write)

        self._marked("pending_upserts", write, keys, upsert)
        return self._count(collection, query)

    def _marked(
        self, marker: str, write: Write, keys: Sequence[str], work: Callable[[], None]
    ) -> None:
        """Without transactions: `work` with `marker` naming the write's slice in the schema
        record while it runs, then, still holding the lease, the new record and the marker
        cleared in one update. A writer killed half-way leaves the marker behind."""
        location: Collection = write.location
        label = write.partitions.label() if write.partitions else ""
        records = self.db(location)[RECORDS]
        records.update_one({"_id": location.name}, {"$addToSet": {marker: label}}, upsert=True)
        work()
        self.confirm_lease()
        record = SchemaRecord(pl.Schema(write.schema), tuple(keys), now())
        records.update_one(
            {"_id": location.name},
            {"$set": {"current": record.to_json()}, "$pull": {marker: label}},
        )

    def _upsert_batches(self, collection: Any, write: Write, session: Any = None) -> None:
        from pymongo import UpdateOne, errors

        keys, rows = list(write.keys), 0
        for batch in self._batches(write):
            documents = raw_documents(batch)
            filters = raw_documents(batch.select(keys))
            operations = [
                UpdateOne(f, {"$set": d}, upsert=True)
                for f, d in zip(filters, documents, strict=True)
            ]
            try:
                collection.bulk_write(operations, ordered=False, session=session)
            except errors.PyMongoError as exc:  # it quotes the failed rows' documents
                raise failure(exc, rows) from None
            rows += batch.height

    def read(
        self,
        location: Collection,
        columns: Sequence[str] | None,
        partitions: seam.PartitionSlice | None,
    ) -> pl.LazyFrame:
        doc = self._record_doc(location) or {}
        if doc.get("pending_slices"):
            raise ValueError(
                f"partitions {doc['pending_slices']} of `{location}` were being replaced without"
                " a transaction when their writer stopped: rerun them before reading"
            )
        if doc.get("pending_upserts") is not None and doc["pending_upserts"]:
            raise ValueError(
                f"an upsert into `{location}` stopped part-way without a transaction (some of"
                " its rows are applied, some not): rerun it before reading"
            )
        record = self.record(location)
        if record is None:
            raise ValueError(f"`{location}` was never written by this sink (no schema record)")
        stored = record.schema
        if columns is not None:
            missing = [c for c in columns if c not in stored]
            if missing:
                raise KeyError(f"columns {missing} are not stored in `{location}`")
        wanted = pl.Schema({c: stored[c] for c in (columns or stored.names())})
        query = slice_filter(partitions, stored)
        return scan(self.target, location, wanted, query, known=stored.names())
