"""MongoDB: ours against pymongoarrow's bulk `write`, `insert_many` of dicts and `insert_one`
per row. Each measurement writes collection `sales_enriched` into a database named after `out`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from honey_duck_dev.benchmarks.approaches._base import (
    OURS_READER,
    TO_DICTS,
    Checked,
    Sink,
    per_row,
    plain,
    server_address,
    server_missing,
)
from honey_duck_dev.benchmarks.approaches._dagster import through_dagster
from honey_duck_dev.benchmarks.inputs import TABLE

SERVER = "mongo"


def url() -> str:
    return server_address(SERVER)


def unavailable() -> str | None:
    def find() -> object:
        from honey_duck_dev.services.mongo import find_secantus

        return find_secantus()

    return server_missing(SERVER, find)


def manager(out: Path) -> object:
    """Our `MongoIOManager`: numpy-encoded BSON batches into a staging collection, renamed."""
    from honey_duck.targets.mongo.target import MongoConnection, MongoIOManager

    return MongoIOManager(connection=MongoConnection(url=url()), database=out.name)


def collection(out: Path) -> object:
    import pymongo

    return pymongo.MongoClient(url())[out.name][TABLE]


def mongo_dicts(source: Path) -> list[dict]:
    # BSON has no date: the naive code casts it to a datetime first, as pymongo's error asks
    frame = pl.read_parquet(source)
    return frame.with_columns(pl.col(pl.Date).cast(pl.Datetime("ms"))).to_dicts()


def naive(source: Path, out: Path) -> None:
    collection(out).insert_many(mongo_dicts(source))  # type: ignore[attr-defined]


def insert_one(source: Path, out: Path) -> None:
    documents = collection(out)
    for row in mongo_dicts(source):
        documents.insert_one(row)  # type: ignore[attr-defined]


def floor(source: Path, out: Path) -> None:
    import pyarrow.parquet as pq
    from pymongoarrow.api import write

    write(collection(out), pq.read_table(source))


def collect(source: Path, out: Path) -> None:
    from pymongoarrow.api import write

    write(collection(out), pl.read_parquet(source).to_arrow())


def count(out: Path) -> int:
    return int(collection(out).count_documents({}))  # type: ignore[attr-defined]


def drop(out: Path) -> None:
    import pymongo

    with pymongo.MongoClient(url()) as client:
        client.drop_database(out.name)


def version() -> str:
    """The MongoDB version the server reports (SecantusDB answers as a MongoDB release)."""
    import pymongo

    with pymongo.MongoClient(url()) as client:
        return str(client.admin.command("buildInfo").get("version"))


def readback(out: Path) -> object:
    return manager(out).readback()  # type: ignore[attr-defined]


OURS = through_dagster(
    "MongoIOManager via dg.materialize (BSON batches into a staging collection, renamed)",
    manager,
    "honey_duck.targets.mongo.target",
    "pymongo",
    "pandas",  # the manager imports it when it first writes
)
DATES = "Date cast to Datetime(ms)"

SINKS = {
    "mongo": Sink(
        count,
        {
            "ours": OURS,
            "naive": per_row(f"{TO_DICTS} ({DATES}) → one insert_many", naive, "pymongo"),
            "floor": plain(
                "pq.read_table → pymongoarrow.api.write",
                floor,
                "pymongo",
                "pyarrow.parquet",
                "pymongoarrow.api",
            ),
            "insert_one": per_row(
                f"{TO_DICTS} ({DATES}) → insert_one per row", insert_one, "pymongo", cap=2_000
            ),
        },
        collect=plain(
            "collect() → to_arrow → pymongoarrow.api.write", collect, "pymongo", "pymongoarrow.api"
        ),
        unavailable=unavailable,
        cleanup=drop,
        servers=(SERVER,),
        server_version=version,
    ),
}

CHECKS: dict[str, Checked] = {
    "mongo": Checked("mongo", "ours", OURS, readback, OURS_READER.format("MongoIOManager")),
}
