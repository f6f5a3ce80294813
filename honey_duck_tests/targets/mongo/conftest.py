"""A fresh database per test on the harness's MongoDB server, its IO manager, and pymongo on it."""

import time
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from honey_duck.targets.mongo import MongoConnection, MongoIOManager


class Db:
    """One test's database: the sink's manager for it, and pymongo to read back with."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.client: pymongo.MongoClient = pymongo.MongoClient(url)
        self.db = self.client[name]

    def manager(self, **config: Any) -> MongoIOManager:
        return MongoIOManager(
            connection=MongoConnection(url=self.url), database=self.name, **config
        )

    def meta(self, **more: Any) -> dict[str, Any]:
        return {"collection": "table", **more}

    def docs(self, collection: str = "table", sort: str = "id") -> list[dict]:
        return list(self.db[collection].find({}, {"_id": 0}).sort(sort, 1))


@pytest.fixture
def db(request: pytest.FixtureRequest, mongo_server: str) -> Iterator[Db]:
    name = "".join(c if c.isalnum() else "_" for c in request.node.name[:24])
    database = Db(mongo_server, f"t_{name}_{time.time_ns() % 10**8}")
    yield database
    database.client.drop_database(database.name)
    database.client.close()
