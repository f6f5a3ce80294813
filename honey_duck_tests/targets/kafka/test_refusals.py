"""What the Kafka target refuses, and that a refused write leaves nothing (the real broker)."""

import polars as pl
import pytest

from honey_duck.targets.kafka.target import SCHEMA_TOPIC, KafkaConnection, KafkaIOManager
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.targets.kafka.plain import fresh_topic, keyed, schema_record, topics


@pytest.fixture
def io(kafka_server: str) -> KafkaIOManager:
    return KafkaIOManager(connection=KafkaConnection(bootstrap_servers=kafka_server), retries=1)


def test_an_oversized_message_on_a_new_topic_leaves_no_topic_and_no_record(
    io: KafkaIOManager, kafka_server: str
) -> None:
    topic = fresh_topic()
    huge = pl.DataFrame({"id": [7, 8, 9], "v": ["ok", "x" * 2_000_000, "ok"]})
    message = error_of(run(io, lambda: huge, metadata=keyed(topic)))
    assert topic not in topics(kafka_server)
    assert schema_record(kafka_server, topic, SCHEMA_TOPIC) is None
    assert "max.message.bytes" in message and 'key {"id":8}' in message, message
    assert "1 row" in message, message


def test_column_names_that_differ_only_in_case_are_refused_before_anything_is_created(
    io: KafkaIOManager, kafka_server: str
) -> None:
    topic = fresh_topic()
    frame = pl.DataFrame({"id": [1], "Caps": [1], "CAPS": [2]})
    message = error_of(run(io, lambda: frame, metadata=keyed(topic)))
    assert "`Caps`, `CAPS` differ only in case" in message, message
    assert "local's DuckDB stand-in" in message
    assert topic not in topics(kafka_server)
