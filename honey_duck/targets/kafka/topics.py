"""The AdminClient's part of a session: which topics exist, what they allow, creating them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from honey_duck.targets.kafka.errors import connect_failed, kafka_error, transient_error

if TYPE_CHECKING:
    from honey_duck.targets.kafka.target import KafkaConnection

# Kafka's default `max.message.bytes` of a topic, for a broker that does not say
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


class Topics:
    """Topics on the brokers, through one AdminClient made on first use."""

    def __init__(self, connection: KafkaConnection, replication: int) -> None:
        self.connection = connection
        self.replication = replication
        self._admin: Any = None

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient(self.connection.client_config())
        return self._admin

    def _call(self, call: Any) -> Any:
        """`call()`, a broker that cannot be reached said as ConnectFailed."""
        from confluent_kafka import KafkaException

        try:
            return call()
        except KafkaException as exc:
            if kafka_error(exc) is None or transient_error(kafka_error(exc)):
                raise connect_failed(self.connection.where(), exc) from None
            raise

    def names(self) -> set[str]:
        timeout = self.connection.timeout_seconds
        return set(self._call(lambda: self.admin().list_topics(timeout=timeout).topics))

    def partition_count(self, name: str) -> int:
        timeout = self.connection.timeout_seconds
        described = self._call(lambda: self.admin().list_topics(name, timeout=timeout))
        return len(described.topics[name].partitions)

    def configs(self, name: str) -> dict[str, str] | None:
        """The topic's configuration, or None when there is no such topic."""
        from confluent_kafka.admin import ConfigResource

        if name not in self.names():
            return None
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        timeout = self.connection.timeout_seconds
        found = self._call(
            lambda: self.admin().describe_configs([resource])[resource].result(timeout=timeout)
        )
        return {key: entry.value for key, entry in found.items() if entry is not None}

    def checked(self, name: str, policy: str) -> dict[str, str] | None:
        """The topic's configuration (None: no such topic), refused when its cleanup policy is
        not the one this sink writes."""
        configs = self.configs(name)
        found = (configs or {}).get("cleanup.policy")
        if found and found != policy:
            raise ValueError(
                f"topic {name!r} has cleanup.policy={found!r} but this sink writes"
                f" {policy!r} topics; use another topic (metadata `topic`) or change the"
                " manager's cleanup_policy"
            )
        return configs

    @staticmethod
    def max_message_bytes(configs: dict[str, str] | None) -> int:
        """The largest message a topic with `configs` takes (None: a topic we would create)."""
        try:
            return int((configs or {}).get("max.message.bytes") or DEFAULT_MAX_MESSAGE_BYTES)
        except ValueError:
            return DEFAULT_MAX_MESSAGE_BYTES

    def create(self, name: str, policy: str, partitions: int) -> None:
        """Create the topic; one that another writer created meanwhile is fine."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic

        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=self.replication,
            config={"cleanup.policy": policy},
        )
        timeout = self.connection.timeout_seconds

        def create() -> None:
            try:
                self.admin().create_topics([topic])[name].result(timeout=timeout)
            except KafkaException as exc:
                error = kafka_error(exc)
                if error is None or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

        self._call(create)

    def ensure(self, name: str, policy: str, partitions: int) -> None:
        """Create the topic if it is missing, else check its cleanup policy."""
        if self.checked(name, policy) is None:
            self.create(name, policy, partitions)
            self.checked(name, policy)
