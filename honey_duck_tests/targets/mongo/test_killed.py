"""A writer killed with SIGKILL mid-upsert: no reader takes half an upsert for a whole one,
and its lock does not stop the next writer."""

import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest

from honey_duck.targets.mongo.names import LOCKS, Collection
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.targets.mongo.conftest import Db

OLD = pl.DataFrame({"id": [0, 1, 2], "v": ["old"] * 3})


def kill_mid_write(db: Db, mode: str, transactions: bool, lease: float = 30.0) -> None:
    """Start `writer.py`, let three batches go out, then SIGKILL it."""
    argv = [db.url, db.name, mode, "1" if transactions else "0", str(lease)]
    writer = subprocess.Popen(
        [sys.executable, "-m", "honey_duck_tests.targets.mongo.writer", *argv],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        for _ in range(3):
            assert writer.stdout.readline() == "sent\n", "the writer stopped before 3 batches"
        holder = db.db[LOCKS].find_one({"_id": "table"})
        assert holder is not None and holder["pid"] == writer.pid
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait()
    assert writer.returncode == -signal.SIGKILL


def read(db: Db, **config: object) -> pl.DataFrame:
    """The collection through the sink's own reader."""
    target = db.manager(**config).target()
    with target.session() as session:
        return session.read(Collection(db.name, "table"), None, None).collect().sort("id")


def test_on_a_replica_set_a_killed_upsert_shows_none_of_its_rows(db: Db) -> None:
    upsert = db.meta(write_mode="upsert", upsert_keys=["id"])
    assert run(db.manager(), lambda: OLD, metadata=upsert).success
    kill_mid_write(db, "upsert", transactions=True)
    assert db.db["table"].count_documents({"v": "x"}) == 0  # 3,000 were sent, uncommitted
    assert db.docs() == OLD.to_dicts()
    assert read(db).equals(OLD)
    # its lock is taken over at once: the holder's PID is gone, and it wrote in a transaction
    began = time.monotonic()
    again = run(db.manager(), lambda: pl.DataFrame({"id": [1], "v": ["new"]}), metadata=upsert)
    assert again.success, error_of(again)
    assert time.monotonic() - began < 10
    assert [d["v"] for d in db.docs()] == ["old", "new", "old"]


def test_without_transactions_a_killed_upsert_is_refused_until_one_completes(db: Db) -> None:
    io = db.manager(transactions=False, lock_wait_seconds=30)
    upsert = db.meta(write_mode="upsert", upsert_keys=["id"])
    assert run(io, lambda: OLD, metadata=upsert).success
    kill_mid_write(db, "upsert", transactions=False, lease=3.0)
    assert db.db["table"].count_documents({"v": "x"}) >= 3_000  # applied, as no transaction
    with pytest.raises(ValueError, match=r"an upsert into .* stopped part-way") as refused:
        read(db, transactions=False)
    assert "rerun it before reading" in str(refused.value)
    # the lease of a writer without transactions is not taken over at once (its last batch
    # may still land): the rerun waits for it to expire, then completes and clears the marker
    began = time.monotonic()
    rerun = pl.DataFrame({"id": [0, 1, 2, 3], "v": ["x"] * 4})
    again = run(io, lambda: rerun, metadata=upsert)
    assert again.success, error_of(again)
    assert time.monotonic() - began >= 1.0
    assert read(db, transactions=False).head(4).equals(rerun)
