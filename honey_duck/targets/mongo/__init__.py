"""The MongoDB target: bulk BSON, staging + rename, transactions, a schema record per collection."""

from honey_duck.targets.mongo.target import MongoConnection, MongoIOManager

__all__ = ["MongoConnection", "MongoIOManager"]
