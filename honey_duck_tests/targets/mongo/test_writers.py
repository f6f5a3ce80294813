"""Writers of one collection serialise (a lease per collection): races, a killed holder, a wait."""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from honey_duck.seam.records import SchemaRecord
from honey_duck.targets.mongo.names import LOCKS, RECORDS
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.targets.mongo.conftest import Db

ROUNDS = 6


Result = dg.ExecuteInProcessResult


def race(first: Callable[[], Result], second: Callable[[], Result]) -> list[Result]:
    """Run both at once (each starts its write as the other does) and return their results."""
    results: dict[int, Result] = {}
    threads = [
        threading.Thread(target=lambda i=i, f=f: results.update({i: f()}))
        for i, f in enumerate((first, second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[0], results[1]]


def produce(frame: pl.DataFrame, barrier: threading.Barrier) -> Callable[[], pl.DataFrame]:
    def asset() -> pl.DataFrame:
        barrier.wait()
        return frame

    return asset


def test_an_upsert_racing_a_replace_keeps_every_row_or_fails(db: Db) -> None:
    io = db.manager(batch_rows=500)
    replacing = pl.DataFrame({"id": pl.int_range(100_000, 102_000, eager=True), "v": "r"})
    upserting = pl.DataFrame({"id": pl.int_range(0, 5_000, eager=True), "v": "u"})
    upsert = db.meta(write_mode="upsert", upsert_keys=["id"])
    for round_ in range(ROUNDS):
        assert run(io, lambda: replacing.head(10), metadata=db.meta()).success
        barrier = threading.Barrier(2)
        replace, upserted = race(
            lambda b=barrier: run(io, produce(replacing, b), metadata=db.meta()),
            lambda b=barrier: run(io, produce(upserting, b), metadata=upsert),
        )
        assert replace.success, error_of(replace)
        assert upserted.success, error_of(upserted)
        count = db.db["table"].count_documents({"v": "u"})
        # the replace first: all 5,000 upserted rows are there; the upsert first: none are
        assert count in (0, 5_000), f"round {round_}: {count} of 5,000 upserted rows"
        assert db.db["table"].count_documents({"v": "r"}) == 2_000
    assert list(db.db[LOCKS].find()) == []  # every lease released


def test_a_replace_racing_an_evolve_never_records_columns_the_data_lacks(db: Db) -> None:
    io = db.manager(batch_rows=500)
    base = pl.DataFrame({"id": pl.int_range(0, 3_000, eager=True), "v": "r"})
    evolving = pl.DataFrame({"id": pl.int_range(10_000, 13_000, eager=True), "v": "e", "x": 1})
    evolve = db.meta(write_mode="append", schema_policy="evolve")
    for round_ in range(ROUNDS):
        db.db.drop_collection("table")
        db.db[RECORDS].delete_many({})
        assert run(io, lambda: base.head(10), metadata=db.meta()).success
        barrier = threading.Barrier(2)
        replace, evolved = race(
            lambda b=barrier: run(io, produce(base, b), metadata=db.meta()),
            lambda b=barrier: run(io, produce(evolving, b), metadata=evolve),
        )
        assert evolved.success, error_of(evolved)
        record = db.db[RECORDS].find_one({"_id": "table"})
        columns = SchemaRecord.from_json(record["current"]).schema.names() if record else []
        fields = {k for doc in db.db["table"].find({}, {"_id": 0}) for k in doc}
        assert set(columns) == fields, f"round {round_}: record {columns}, data has {fields}"
        if replace.success:  # it went first; the append then added its 3,000 rows to it
            assert db.db["table"].count_documents({}) == 6_000, f"round {round_}"
        else:  # the append went first: the strict replace then saw `x` it lacks
            assert "differs" in error_of(replace), error_of(replace)
            assert db.db["table"].count_documents({}) == 3_010, f"round {round_}"


def test_a_live_holder_makes_a_second_writer_wait_then_fail_naming_the_collection(
    db: Db,
) -> None:
    io = db.manager(lock_wait_seconds=1.0)
    assert run(io, lambda: pl.DataFrame({"id": [1]}), metadata=db.meta()).success
    now = datetime.now(UTC).replace(tzinfo=None)
    # a writer on another machine: its PID means nothing here, only its lease's expiry counts
    lease = {"_id": "table", "owner": "elsewhere.1.x", "host": "elsewhere", "pid": 1}
    db.db[LOCKS].insert_one({**lease, "expires": now + timedelta(minutes=5)})
    began = time.monotonic()
    failed = run(io, lambda: pl.DataFrame({"id": [2]}), metadata=db.meta())
    message = error_of(failed)
    assert 1.0 <= time.monotonic() - began < 5
    assert f"collection `{db.name}.table`" in message and "mongo sink" in message, message
    assert db.docs() == [{"id": 1}]
    # the same lease, expiring soon: the writer waits for it and then writes
    db.db[LOCKS].update_one({"_id": "table"}, {"$set": {"expires": now + timedelta(seconds=2)}})
    later = run(db.manager(lock_wait_seconds=20), lambda: pl.DataFrame({"id": [3]}),
                metadata=db.meta())  # fmt: skip
    assert later.success, error_of(later)
    assert db.docs() == [{"id": 3}] and list(db.db[LOCKS].find()) == []
