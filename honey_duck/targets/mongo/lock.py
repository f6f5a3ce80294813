"""One writer per collection at a time: a lease document, taken atomically, renewed, released.

The `_honey_duck_locks` collection of the database holds one document per collection being
written: its holder and when the lease expires. A writer takes it with one conditional upsert
(the `_id` is the collection's name, so two inserts cannot both succeed), renews it from a
thread while it writes, and deletes it at the end. A writer killed with SIGKILL stops renewing:
its lease is taken over once it expires, or at once by a writer on the same host that sees the
holder's PID is gone. A second writer waits a bounded time, then fails naming the collection.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from honey_duck import seam
from honey_duck.seam import Write
from honey_duck.targets.mongo.errors import failure
from honey_duck.targets.mongo.names import LOCKS, Collection

if TYPE_CHECKING:
    from honey_duck.targets.mongo.session import MongoSession

LEASE_SECONDS = 30.0  # how long a lease outlives its holder's last renewal


class LockBusy(RuntimeError):
    """Another writer held the collection's lease for longer than this writer would wait."""


class LockLost(RuntimeError):
    """This writer's lease expired and another writer took it (the writer stalled too long)."""


def _utc_now() -> datetime:
    # naive UTC: how a client opened with tz_aware=False reads datetimes back
    return datetime.now(UTC).replace(tzinfo=None)


class Lease:
    """This writer's hold on one collection (renewed by a thread until `release`).

    `atomic`: nothing the writer sends is visible before its commit (a transaction, a staging
    collection), so a writer of this host whose PID is gone can be taken over at once.
    """

    def __init__(
        self,
        client: Any,
        location: Collection,
        lease_seconds: float,
        atomic: bool,
        session_id: Mapping[str, Any] | None = None,
    ) -> None:
        self.client, self.locks = client, client[location.database][LOCKS]
        self.location, self.lease_seconds, self.atomic = location, lease_seconds, atomic
        self.session_id = session_id  # the holder's server session: a taker ends it
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = f"{self.host}.{self.pid}.{uuid.uuid4().hex[:12]}"
        self.lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _take(self) -> bool:
        """One atomic attempt: the lease is ours if it is free, expired, or already ours."""
        from pymongo import errors

        now = _utc_now()
        holder = {"owner": self.owner, "host": self.host, "pid": self.pid, "atomic": self.atomic,
                  "session": self.session_id}  # fmt: skip
        expires = now + timedelta(seconds=self.lease_seconds)
        try:
            self.locks.update_one(
                {"_id": self.location.name,
                 "$or": [{"expires": {"$lte": now}}, {"owner": self.owner}]},
                {"$set": {**holder, "taken": now, "expires": expires}},
                upsert=True,
            )  # fmt: skip
        except errors.DuplicateKeyError:  # held by another writer, unexpired
            return False
        return True

    def _reclaim(self) -> bool:
        """Free the lease of a holder that is gone: expired, or a process of this host that no
        longer runs and wrote nothing a reader could see before its commit. Its server session
        is ended first, which aborts its open transaction (the server would otherwise keep it,
        and its write locks, for a minute)."""
        holder = self.locks.find_one({"_id": self.location.name})
        if holder is None:
            return True
        pid = holder.get("pid")
        expired = holder.get("expires") is not None and holder["expires"] <= _utc_now()
        dead = (
            holder.get("host") == self.host
            and isinstance(pid, int)
            and not seam.pid_alive(pid)
            and bool(holder.get("atomic"))  # else its last batch may still land: it expires
        )
        if not (expired or dead):
            return False
        if holder.get("session"):
            with contextlib.suppress(Exception):  # a server without sessions to end
                self.client.admin.command("killSessions", [holder["session"]])
        self.locks.delete_one({"_id": self.location.name, "owner": holder.get("owner")})
        return True

    def acquire(self, wait_seconds: float) -> None:
        """Take the lease, waiting at most `wait_seconds` for its holder to finish."""
        began = time.monotonic()
        pause = 0.02
        while not self._take():
            if self._reclaim():
                continue
            waited = time.monotonic() - began
            if waited >= wait_seconds:
                raise LockBusy(
                    f"another writer holds the mongo sink's lock on collection"
                    f" `{self.location}` (waited {waited:.1f} s); it is freed when that write"
                    f" ends, or {self.lease_seconds:.0f} s after its writer stopped"
                )
            time.sleep(min(pause, max(wait_seconds - waited, 0.0)) * random.uniform(0.5, 1.0))
            pause = min(pause * 2, 0.5)
        self._renewer = threading.Thread(
            target=self._renew, name=f"mongo-lease-{self.location}", daemon=True
        )
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                expires = _utc_now() + timedelta(seconds=self.lease_seconds)
                done = self.locks.update_one(
                    {"_id": self.location.name, "owner": self.owner},
                    {"$set": {"expires": expires}},
                )
            except Exception:  # the server is away: try again at the next beat
                continue
            if done.matched_count == 0:
                self.lost = True
                return

    def confirm(self) -> None:
        """Fail if the lease was lost: called before a write makes its result visible."""
        if self.lost:
            raise LockLost(
                f"the mongo sink's lock on collection `{self.location}` expired while this"
                " write stalled and another writer took it; rerun this write"
            )

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        self.locks.delete_one({"_id": self.location.name, "owner": self.owner})


@contextmanager
def holding(
    client: Any,
    location: Collection,
    wait_seconds: float,
    atomic: bool,
    lease_seconds: float = LEASE_SECONDS,
    session_id: Mapping[str, Any] | None = None,
) -> Iterator[Lease]:
    """The collection's lease for the duration of the block (`atomic`: see `Lease`)."""
    lease = Lease(client, location, lease_seconds, atomic, session_id)
    lease.acquire(wait_seconds)
    try:
        yield lease
    finally:
        # a release that fails is no failure: the lease expires by itself
        with contextlib.suppress(Exception):
            lease.release()


class StoredSchemaChanged(RuntimeError):
    """Another writer changed the collection's schema after this write decided its own (retried:
    the retry decides again against what is stored now)."""


def locked(verb: Callable[[MongoSession, Write], int]) -> Callable[[MongoSession, Write], int]:
    """Run a write verb holding the collection's lease, on the schema it was decided against.

    The flow reads the stored schema before the verb; a writer that held the lease meanwhile
    may have changed it (a replace, an evolve), so it is read again under the lease.
    """

    from pymongo import errors

    @functools.wraps(verb)
    def run(self: MongoSession, write: Write) -> int:
        location: Collection = write.location
        # a dead holder's last command may still run on the server: its lease is taken over at
        # once only when nothing it sent shows before its commit (a transaction, a staging
        # collection); otherwise the lease has to expire
        atomic = self.transactions or (verb.__name__ == "replace" and write.partitions is None)
        wait, lease_seconds = self.target.lock_wait_seconds, self.target.lease_seconds
        session_id = self.session.session_id
        with holding(self.client, location, wait, atomic, lease_seconds, session_id) as lease:
            stored = self.stored_schema(location)
            before = None if write.stored is None else dict(write.stored)
            if (None if stored is None else dict(stored)) != before:
                raise StoredSchemaChanged(
                    f"another writer changed the schema of `{location}` while this write was"
                    " waiting for it"
                )
            self.lease = lease
            try:
                return verb(self, write)
            except errors.PyMongoError as exc:  # its message may quote a row's values
                raise failure(exc) from None
            finally:
                self.lease = None

    return run
