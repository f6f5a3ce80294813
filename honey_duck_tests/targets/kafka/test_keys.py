"""Message keys on the real broker: one live message per row whatever the order `upsert_keys`
are declared in, and a partition re-run never takes a row out of its neighbour."""

import json
from datetime import date

import polars as pl
import pytest

from honey_duck.targets.kafka.target import SCHEMA_TOPIC, KafkaConnection, KafkaIOManager
from honey_duck_tests.contract.runs import MONTHLY, error_of, run
from honey_duck_tests.targets.kafka.plain import fresh_topic, keyed, live, schema_record


@pytest.fixture
def io(kafka_server: str) -> KafkaIOManager:
    return KafkaIOManager(connection=KafkaConnection(bootstrap_servers=kafka_server), retries=1)


def test_upsert_keys_in_another_order_update_the_same_messages(
    io: KafkaIOManager, kafka_server: str
) -> None:
    topic = fresh_topic()
    first = pl.DataFrame({"a": [1, 2], "b": ["x", "y"], "v": [0, 0]})
    assert run(io, lambda: first, metadata=keyed(topic, "a", "b")).success
    again = pl.DataFrame({"a": [1, 3], "b": ["x", "z"], "v": [1, 1]})
    result = run(io, lambda: again, metadata=keyed(topic, "b", "a", write_mode="upsert"))
    assert result.success, error_of(result)
    rows = sorted((v["a"], v["b"], v["v"]) for v in live(kafka_server, topic).values())
    assert rows == [(1, "x", 1), (2, "y", 0), (3, "z", 1)]  # each row live once
    record = schema_record(kafka_server, topic, SCHEMA_TOPIC)
    assert record is not None and record["keys"] == ["a", "b"] and record["rows"] == 3


def test_an_upsert_on_other_keys_is_refused_and_a_replace_may_change_them(
    io: KafkaIOManager, kafka_server: str
) -> None:
    topic = fresh_topic()
    first = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert run(io, lambda: first, metadata=keyed(topic, "a", "b")).success
    result = run(io, lambda: first, metadata=keyed(topic, "a", write_mode="upsert"))
    message = error_of(result)
    assert "keyed by ['a', 'b']" in message and "['a']" in message, message
    assert len(live(kafka_server, topic)) == 2
    # a replace tombstones every old key, so it may key the topic anew
    assert run(io, lambda: first, metadata=keyed(topic, "a")).success
    assert sorted(json.loads(k)["a"] for k in live(kafka_server, topic)) == [1, 2]
    assert all(set(json.loads(k)) == {"a"} for k in live(kafka_server, topic))


def test_a_partition_rerun_with_a_key_of_its_neighbour_is_refused_and_keeps_the_neighbour(
    io: KafkaIOManager, kafka_server: str
) -> None:
    topic = fresh_topic()
    metadata = keyed(topic, partition_expr="d")
    january = pl.DataFrame({"id": [1, 2], "d": [date(2024, 1, 5)] * 2, "c": ["jan"] * 2})
    february = pl.DataFrame({"id": [3], "d": [date(2024, 2, 5)], "c": ["feb"]})
    data: dict[str, pl.DataFrame] = {}
    for key, frame in (("2024-01-01", january), ("2024-02-01", february)):
        data["frame"] = frame
        ran = run(
            io,
            lambda: data["frame"],
            metadata=metadata,
            partitions_def=MONTHLY,
            partition_key=key,
        )
        assert ran.success, error_of(ran)
    moved = pl.DataFrame({"id": [1, 4], "d": [date(2024, 2, 6)] * 2, "c": ["feb"] * 2})
    result = run(
        io, lambda: moved, metadata=metadata, partitions_def=MONTHLY, partition_key="2024-02-01"
    )
    message = error_of(result)
    assert '{"id":1}' in message and "2024-01-01" in message and "2024-02-01" in message, message
    rows = sorted((v["id"], v["c"]) for v in live(kafka_server, topic).values())
    assert rows == [(1, "jan"), (2, "jan"), (3, "feb")]  # January whole, February untouched
