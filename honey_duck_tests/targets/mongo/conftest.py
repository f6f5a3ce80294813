"""A fresh database per test on the harness's MongoDB server, its IO manager, and pymongo on it:
the MongoDB sink's own probe and fixture (`sinks/test_mongo.py`), under the name these tests use.
"""

import pytest

from honey_duck_tests.sinks.test_mongo import MongoProbe as Db
from honey_duck_tests.sinks.test_mongo import mongo  # noqa: F401  (the fixture `db` asks for)

__all__ = ["Db"]


@pytest.fixture
def db(mongo: Db) -> Db:  # noqa: F811
    return mongo
