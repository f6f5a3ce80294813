"""What the manager's settings give the producer (the broker here does not enforce timeouts)."""

from honey_duck.targets.kafka import KafkaConnection, KafkaIOManager


def test_one_write_may_stay_open_as_long_as_kafka_allows_by_default() -> None:
    # a 10M-row write takes over a minute on these machines: a 60 s transaction timeout made a
    # real broker abort it; Kafka's own cap (transaction.max.timeout.ms) is 15 minutes
    io = KafkaIOManager(connection=KafkaConnection(bootstrap_servers="127.0.0.1:1"))
    assert io.target().producer_config("t")["transaction.timeout.ms"] == 900_000
    shorter = io.model_copy(update={"transaction_timeout_seconds": 120})
    assert shorter.target().producer_config("t")["transaction.timeout.ms"] == 120_000
