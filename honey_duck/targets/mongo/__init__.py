"""The MongoDB target: bulk BSON, staging + rename, transactions, a schema record per collection."""

from honey_duck.targets.mongo.target import MongoIOManager

__all__ = ["MongoIOManager"]
