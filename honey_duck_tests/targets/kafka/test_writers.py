"""Writers of one topic at once: they serialise, or one fails saying so (the real broker).

The interleaving that mixed two replaces is forced with hooks on our own session (never on the
client): writer A has delivered every message and waits just before its commit; writer B then
starts, and once B has looked at the topic's live keys, A is let go.
"""

import json
import threading
from collections.abc import Callable
from datetime import date
from typing import Any

import dagster as dg
import polars as pl
import pytest

from honey_duck.targets.kafka.session import KafkaSession
from honey_duck.targets.kafka.target import SCHEMA_TOPIC, KafkaConnection, KafkaIOManager
from honey_duck_tests.contract.runs import MONTHLY, RANGE, error_of, months, run
from honey_duck_tests.targets.kafka.plain import fresh_topic, keyed, live, schema_record

WAIT = 60.0  # seconds any hook waits for the other writer


@pytest.fixture
def io(kafka_server: str) -> KafkaIOManager:
    return KafkaIOManager(connection=KafkaConnection(bootstrap_servers=kafka_server), retries=2)


def by_id(bootstrap: str, topic: str) -> dict[int, str]:
    return {json.loads(k)["id"]: v["v"] for k, v in live(bootstrap, topic).items()}


def race(
    monkeypatch: pytest.MonkeyPatch,
    first: Callable[[], dg.ExecuteInProcessResult],
    second: Callable[[], dg.ExecuteInProcessResult],
) -> tuple[dg.ExecuteInProcessResult, dg.ExecuteInProcessResult]:
    """Run `first` (thread A) until it is about to commit, then `second` (thread B); A commits
    once B has read the live keys (or gave up), and B goes on once A's commit is over."""
    a_ready, b_read, a_done = threading.Event(), threading.Event(), threading.Event()
    live_keys, commit = KafkaSession._live_keys, KafkaSession._commit

    def reading(session: KafkaSession, *args: Any) -> set[bytes]:
        found = live_keys(session, *args)
        if threading.current_thread().name == "B":
            b_read.set()
            a_done.wait(WAIT)
        return found

    def committing(session: KafkaSession, producer: Any, location: Any) -> None:
        if threading.current_thread().name != "A" or a_done.is_set():
            return commit(session, producer, location)
        try:
            a_ready.set()
            b_read.wait(WAIT)
            return commit(session, producer, location)
        finally:
            a_done.set()

    monkeypatch.setattr(KafkaSession, "_live_keys", reading)
    monkeypatch.setattr(KafkaSession, "_commit", committing)
    results: dict[str, dg.ExecuteInProcessResult] = {}
    a = threading.Thread(target=lambda: results.update(A=first()), name="A")
    b = threading.Thread(target=lambda: results.update(B=second()), name="B")
    a.start()
    assert a_ready.wait(WAIT), "writer A never reached its commit"
    b.start()
    b_read.wait(WAIT)
    a_done.set()  # B never read live keys before its own commit: A goes on now
    a.join(2 * WAIT)
    b.join(2 * WAIT)
    assert not a.is_alive() and not b.is_alive(), "a writer hung"
    return results["A"], results["B"]


def failed_clearly(result: dg.ExecuteInProcessResult, topic: str) -> None:
    if not result.success:
        message = error_of(result)
        assert f"another writer of topic {topic!r}" in message, message
        assert "Local: Fatal error" not in message.split("(")[0], message


def test_two_replaces_of_one_topic_at_once_leave_one_of_them_whole(
    io: KafkaIOManager, kafka_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = fresh_topic()
    a = pl.DataFrame({"id": range(30_000), "v": "A"})
    b = pl.DataFrame({"id": range(20_000), "v": "B"})
    ran_a, ran_b = race(
        monkeypatch,
        lambda: run(io, lambda: a, metadata=keyed(topic)),
        lambda: run(io, lambda: b, metadata=keyed(topic)),
    )
    assert ran_a.success or ran_b.success
    failed_clearly(ran_a, topic)
    failed_clearly(ran_b, topic)
    found = by_id(kafka_server, topic)
    serial = [{i: "A" for i in range(30_000)}, {i: "B" for i in range(20_000)}]
    assert found in serial, f"{len(found)} live keys: a mix of both writers"
    record = schema_record(kafka_server, topic, SCHEMA_TOPIC)
    assert record is not None and record["rows"] == len(found)


def test_a_whole_range_and_one_partition_at_once_give_a_serial_outcome(
    io: KafkaIOManager, kafka_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = fresh_topic()
    metadata = keyed(topic, partition_expr="d")
    february = pl.DataFrame({"id": [25, 26], "d": [date(2024, 2, 5)] * 2, "c": ["B"] * 2})

    def whole_range(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return months([1, 2, 3, 4], "A")

    ran_a, ran_b = race(
        monkeypatch,
        lambda: run(io, whole_range, metadata=metadata, partitions_def=MONTHLY, tags=RANGE),
        lambda: run(
            io,
            lambda: february,
            metadata=metadata,
            partitions_def=MONTHLY,
            partition_key="2024-02-01",
        ),
    )
    assert ran_a.success or ran_b.success
    failed_clearly(ran_a, topic)
    failed_clearly(ran_b, topic)
    found = {json.loads(k)["id"] for k in live(kafka_server, topic)}
    everything = {10, 11, 20, 21, 30, 31, 40, 41}
    serial = [
        everything - {20, 21} | {25, 26},  # the range, then February
        everything,  # February, then the range
        {25, 26},  # February alone (the range was fenced)
        everything,  # the range alone
    ]
    assert found in serial, f"live ids {sorted(found)}: no serial order gives them"


def test_a_fenced_writer_waits_for_the_other_and_goes_again_on_top_of_it(
    io: KafkaIOManager,
    kafka_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    topic = fresh_topic()
    a = pl.DataFrame({"id": [1, 2], "v": "A"})
    b = pl.DataFrame({"id": [2, 3], "v": "B"})
    ran_a, ran_b = race(
        monkeypatch,
        lambda: run(io, lambda: a, metadata=keyed(topic)),
        lambda: run(io, lambda: b, metadata=keyed(topic)),
    )
    # B took the topic while A waited to commit; A waited for B's commit, then went again
    assert ran_b.success, error_of(ran_b)
    assert ran_a.success, error_of(ran_a)
    logged = capfd.readouterr().err
    assert f"another writer of topic {topic!r}" in logged and "goes again on top" in logged
    assert by_id(kafka_server, topic) == {1: "A", 2: "A"}  # B, then A: a serial order


def test_a_fenced_writer_without_retries_fails_saying_another_writer_took_the_topic(
    kafka_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    io = KafkaIOManager(connection=KafkaConnection(bootstrap_servers=kafka_server), retries=0)
    topic = fresh_topic()
    a = pl.DataFrame({"id": [1, 2], "v": "A"})
    b = pl.DataFrame({"id": [2, 3], "v": "B"})
    ran_a, ran_b = race(
        monkeypatch,
        lambda: run(io, lambda: a, metadata=keyed(topic)),
        lambda: run(io, lambda: b, metadata=keyed(topic)),
    )
    assert ran_b.success, error_of(ran_b)
    assert not ran_a.success, "the writer whose topic was taken over committed anyway"
    message = error_of(ran_a)
    assert f"another writer of topic {topic!r}" in message, message
    assert "nothing of this write was published" in message, message
    assert by_id(kafka_server, topic) == {2: "B", 3: "B"}


def test_two_partitions_written_at_once_by_two_runs_are_both_kept(
    io: KafkaIOManager, kafka_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = fresh_topic()
    metadata = keyed(topic, partition_expr="d")

    def month(number: int) -> Callable[[], dg.ExecuteInProcessResult]:
        return lambda: run(
            io,
            lambda: months([number], f"m{number}"),
            metadata=metadata,
            partitions_def=MONTHLY,
            partition_key=f"2024-0{number}-01",
        )

    ran_a, ran_b = race(monkeypatch, month(1), month(2))
    assert ran_a.success, error_of(ran_a)
    assert ran_b.success, error_of(ran_b)
    found = sorted((v["id"], v["c"]) for v in live(kafka_server, topic).values())
    assert found == [(10, "m1"), (11, "m1"), (20, "m2"), (21, "m2")]
    record = schema_record(kafka_server, topic, SCHEMA_TOPIC)
    assert record is not None and record["rows_by_part"] == {"2024-01-01": 2, "2024-02-01": 2}
