"""A Kafka-compatible broker on 127.0.0.1: noida-db with only its Kafka endpoint enabled.

No real Kafka broker installs from a package registry; noida-db's Kafka endpoint speaks the wire
protocol well enough for confluent-kafka's AdminClient, idempotent and transactional producers
and `read_committed` consumers (honey_duck_tests/dev/test_services.py checks each of these).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from honey_duck.sinks.kafka import BOOTSTRAP
from honey_duck_dev.services.lifecycle import HOST, Service, ServiceNotFound, port_of

NOIDA_PACKAGE = "noida_db"
NOIDA_BINARY = "noida-db"


def find_noida() -> Path:
    """The server binary inside the installed `noida_db` package (not its console script)."""
    # the console script is a Python wrapper that spawns this binary: stopping the wrapper's PID
    # would orphan the real server, so we run the binary itself and stop it by its own PID
    spec = importlib.util.find_spec(NOIDA_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            binary = Path(location) / NOIDA_BINARY
            if binary.is_file() and os.access(binary, os.X_OK):
                return binary
    raise ServiceNotFound(
        f"noida-db's `{NOIDA_BINARY}` binary not found in the `{NOIDA_PACKAGE}` package; "
        "install it with `pip install noida-db` (or `pip install -e .[dev]`)"
    )


class Kafka(Service):
    """A Kafka-compatible broker served by noida-db (`--only kafka`)."""

    name = "kafka"
    title = "Kafka"
    dev_port = port_of(BOOTSTRAP)
    url_var = BOOTSTRAP.name

    @property
    def bootstrap(self) -> str:
        """The `bootstrap.servers` value for a Kafka client."""
        return f"{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        return {self.url_var: self.bootstrap}

    def ping(self) -> None:
        from confluent_kafka.admin import AdminClient  # only the Kafka harness needs librdkafka

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 1000})
        admin.list_topics(timeout=1.0)

    def command(self) -> list[str]:
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        return [
            str(find_noida()), "start", "--data-dir", str(data), "--host", HOST,
            "--only", "kafka", "--kafka-port", str(self.port),
        ]  # fmt: skip
