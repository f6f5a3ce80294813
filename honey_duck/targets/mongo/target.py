"""The MongoDB target and its IO manager: where collections are, how to connect, the settings.

Bulk BSON in (`encode`), pymongoarrow out (`decode`), the verbs in `session`; each collection's
polars types are kept in a schema record in the `_honey_duck_schemas` collection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck import seam
from honey_duck.seam import Capabilities, SinkIOManager, Target
from honey_duck.seam.faults import ConnectFailed, OutcomeUnknown
from honey_duck.targets.mongo.errors import transient_mongo
from honey_duck.targets.mongo.lock import LEASE_SECONDS, StoredSchemaChanged
from honey_duck.targets.mongo.names import STAGING, Collection, collection_problem
from honey_duck.targets.mongo.names import name_problem as _name_problem
from honey_duck.targets.mongo.session import MongoSession
from honey_duck.targets.mongo.sizes import oversized
from honey_duck.targets.mongo.types import leaf_problem, nested, refusals, scalar_problem

__all__ = ["STAGING", "MongoConnection", "MongoIOManager", "MongoTarget", "_name_problem"]


class MongoTarget(Target):
    """A MongoDB database: bulk BSON in, pymongoarrow out."""

    word = "mongo"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self,
        connection: MongoConnection,
        database: str,
        batch_rows: int,
        transactions: bool | None,
        lock_wait_seconds: float = 60.0,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        from pymongo import uri_parser

        url = connection.url
        self.url, self.database, self.batch_rows = url, database, batch_rows
        self.transactions, self.timeout_ms = transactions, connection.timeout_ms
        self.lock_wait_seconds, self.lease_seconds = lock_wait_seconds, lease_seconds
        try:
            parsed = uri_parser.parse_uri(url, validate=False, warn=True)
        except Exception as exc:  # its message may quote the URL, password and all
            shown = re.sub(r"//[^@/]*@", "//***@", str(exc)).replace(url, "***")
            raise ValueError(f"the MongoDB URL is not valid: {shown}") from None
        self.password = parsed.get("password")
        self.where = ",".join(f"{h}:{p}" for h, p in parsed.get("nodelist") or [])

    # -- what it keeps --------------------------------------------------------------------

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if nested(dtype):
            return leaf_problem(dtype)
        return scalar_problem(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        return [*refusals(schema), *oversized(schema)]

    # -- where ----------------------------------------------------------------------------

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> Collection:
        meta = {k: seam.metadata_value(v) for k, v in metadata.items()}
        name = meta.get("collection") or ".".join(key.path)
        problem = collection_problem(name)
        if problem:
            raise ValueError(f"collection name {name!r}: {problem}")
        return Collection(meta.get("database") or self.database, name)

    def table_name(self, location: Collection) -> str:
        return str(location)

    def uri(self, location: Collection, partitions: Any = None) -> str:
        return f"mongodb://{self.where}/{location}"

    def secrets(self) -> Sequence[str | None]:
        return [self.password, self.url] if self.password else []

    def transient(self, exc: BaseException) -> bool:
        if isinstance(exc, OutcomeUnknown):
            return exc.__cause__ is not None and self.transient(exc.__cause__)
        if isinstance(exc, StoredSchemaChanged):  # decided again on the retry
            return True
        return super().transient(exc) or transient_mongo(exc)

    # -- connecting -----------------------------------------------------------------------

    def client(self) -> Any:
        import pymongo

        return pymongo.MongoClient(
            self.url,
            serverSelectionTimeoutMS=self.timeout_ms,
            connectTimeoutMS=self.timeout_ms,
            appname="honey_duck",
            tz_aware=False,
        )

    @contextmanager
    def session(self) -> Iterator[MongoSession]:
        from pymongo import errors

        client = self.client()
        try:
            try:
                hello = client.admin.command("hello")
            except errors.PyMongoError as exc:
                auth = isinstance(exc, errors.OperationFailure) and exc.code in (13, 18)
                raise ConnectFailed(
                    f"cannot connect to MongoDB at {self.where}: {exc}",
                    transient=not auth and transient_mongo(exc),
                ) from None
            transactions = self.transactions
            if transactions is None:
                transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
            with client.start_session() as session:
                yield MongoSession(self, client, session, transactions)
        finally:
            client.close()


class MongoConnection(dg.Config):
    """Where the server is and who to connect as: a MongoDB URL, credentials inside."""

    url: str = Field(
        default="mongodb://localhost:27017/",
        description="A MongoDB URL (`mongodb://user:password@host:port/`); use dg.EnvVar.",
    )
    timeout_ms: int = Field(default=5_000, description="Server selection and connect timeout.")


class MongoIOManager(SinkIOManager):
    """Writes polars frames to MongoDB collections: bulk BSON, staging + rename, transactions.

    Example::

        mongo_io_manager = MongoIOManager(
            connection=MongoConnection(url=dg.EnvVar("MONGO_URL")), database="analytics"
        )
    """

    connection: MongoConnection = Field(
        default_factory=MongoConnection, description="The server, and who to connect as."
    )
    database: str = Field(default="honey_duck", description="The database of the collections.")
    transactions: bool | None = Field(
        default=None,
        description="Replace partitions in a transaction (None: when the server is a replica set).",
    )
    lock_wait_seconds: float = Field(
        default=60.0,
        description="How long a write waits for another writer of the collection to finish.",
    )
    lease_seconds: float = Field(
        default=LEASE_SECONDS,
        description="How long a writer's lock outlives it when it is killed (renewed meanwhile).",
    )

    @classmethod
    def target_class(cls) -> type[Target]:
        return MongoTarget

    def target(self) -> MongoTarget:
        return MongoTarget(
            self.connection, self.database, self.batch_rows, self.transactions,
            self.lock_wait_seconds, self.lease_seconds,
        )  # fmt: skip
