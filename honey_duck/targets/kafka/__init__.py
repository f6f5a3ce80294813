"""The Kafka target: one JSON message per row, one transaction per write, a schema topic."""

from honey_duck.targets.kafka.target import KafkaIOManager

__all__ = ["KafkaIOManager"]
