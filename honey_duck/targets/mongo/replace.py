"""replace: the rows go into a staging collection, which is renamed over the target.

readers see the old collection or the new (`renameCollection` with `dropTarget`); the schema
record notes the staging collection as `next` before the rename, so a writer that stopped
between the rename and the record is read as renamed.
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

import polars as pl

from honey_duck import seam
from honey_duck.seam import Write
from honey_duck.seam.faults import OutcomeUnknown
from honey_duck.seam.records import SchemaRecord, now
from honey_duck.targets.mongo.errors import describe, failure
from honey_duck.targets.mongo.lock import locked
from honey_duck.targets.mongo.names import RECORDS, STAGING, Collection, staging_name

if TYPE_CHECKING:
    from honey_duck.targets.mongo.session import MongoSession


class RenameReplace:
    """The replace verb of `MongoSession` (which it is mixed into)."""

    @locked
    def replace(self: MongoSession, write: Write) -> int:
        from pymongo import errors

        location: Collection = write.location
        db = self.db(location)
        staging = staging_name(location.name)
        self._sweep(location, staging)
        db.drop_collection(staging)
        db.create_collection(staging)
        try:
            rows = self._stage(write, staging)
            self.confirm_lease()
            self.client.admin.command(
                "renameCollection", f"{location.database}.{staging}",
                to=str(location), dropTarget=True,
            )  # fmt: skip
        except errors.AutoReconnect as exc:  # the rename may have happened: the retry's sweep
            raise OutcomeUnknown(  # the retry's sweep decides
                f"the rename's outcome is unknown: {describe(exc)}"
            ) from failure(exc)
        except BaseException:
            # `next` first (a `next` whose staging collection is gone reads as renamed); a
            # failing clean-up stops there and must not hide the failure being raised
            with contextlib.suppress(Exception):
                db[RECORDS].update_one({"_id": location.name}, {"$unset": {"next": ""}})
                db.drop_collection(staging)
            raise
        self.save_record(location, write.schema, self._keys(write, location), replaced=True)
        return rows

    def _stage(self: MongoSession, write: Write, staging: str) -> int:
        """Load the staging collection, give it the target's indexes, and note it as `next`."""
        location: Collection = write.location
        db = self.db(location)
        indexes = [i for i in db[location.name].list_indexes() if i["name"] != "_id_"]
        keys = self._keys(write, location)
        rows = self._insert(db[staging], write)
        for index in indexes:
            options = {k: v for k, v in index.items() if k not in ("key", "v", "ns")}
            db[staging].create_index(list(index["key"].items()), **options)
        if keys and not any(i.get("unique") and list(i["key"]) == list(keys) for i in indexes):
            self._unique_index(db[staging], keys)
        record = SchemaRecord(pl.Schema(write.schema), tuple(keys), now())
        db[RECORDS].update_one(
            {"_id": location.name},
            {"$set": {"next": {"staging": staging, "record": record.to_json()}}},
            upsert=True,
        )
        return rows

    def _sweep(self: MongoSession, location: Collection, ours: str) -> None:
        """Drop staging collections of writers that died on this host, and their `next`."""
        db = self.db(location)
        host = socket.gethostname()
        prefix = f"{location.name}{STAGING}{host}."
        doc = self._record_doc(location) or {}
        pending = (doc.get("next") or {}).get("staging")
        for name in db.list_collection_names():
            if not name.startswith(prefix):
                continue
            pid = name[len(prefix) :]
            if name != ours and pid.isdigit() and seam.pid_alive(int(pid)):
                continue
            if name == pending:
                db[RECORDS].update_one({"_id": location.name}, {"$unset": {"next": ""}})
            db.drop_collection(name)
        if pending and not db.list_collection_names(filter={"name": pending}):
            record = self.record(location)  # renamed, never promoted: promote it now
            if record is not None:
                self.save_record(location, record.schema, record.keys)
