"""A writer in a process of its own, to be killed mid-write.

    python -m honey_duck_tests.targets.mongo.writer URL DATABASE upsert|replace 1|0 LEASE


It upserts (or replaces) 200,000 rows `v="x"` in 1,000-row batches and prints `sent` after each
batch pymongo returns from, so a test knows batches went out before it sends SIGKILL; `1|0`
says whether it uses transactions, LEASE how long its lease outlives it.
"""

import sys
from collections.abc import Callable
from typing import Any

import polars as pl
from pymongo.collection import Collection

from honey_duck.targets.mongo import MongoConnection, MongoIOManager
from honey_duck_tests.contract.runs import run


def announce(method: Callable[..., Any]) -> Callable[..., Any]:
    def sent(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        print("sent", flush=True)
        return result

    return sent


if __name__ == "__main__":
    url, database, mode, transactions, lease = sys.argv[1:6]
    Collection.bulk_write = announce(Collection.bulk_write)  # type: ignore[method-assign]
    Collection.insert_many = announce(Collection.insert_many)  # type: ignore[method-assign]
    io = MongoIOManager(
        connection=MongoConnection(url=url), database=database, retries=0, batch_rows=1_000,
        transactions=transactions == "1", lease_seconds=float(lease),
    )  # fmt: skip
    frame = pl.LazyFrame({"id": pl.int_range(0, 200_000, eager=True)}).with_columns(v=pl.lit("x"))
    metadata = {"collection": "table", "write_mode": mode}
    if mode == "upsert":
        metadata["upsert_keys"] = ["id"]
    run(io, lambda: frame, metadata=metadata)
