"""The Kafka target: one JSON message per row, one transaction per write, a schema topic."""

from honey_duck.targets.kafka.target import KafkaConnection, KafkaIOManager

__all__ = ["KafkaConnection", "KafkaIOManager"]
