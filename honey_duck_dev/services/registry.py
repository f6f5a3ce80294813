"""Every server the harness can start, by the one word its sink, compose service and tests use."""

from __future__ import annotations

import importlib

from honey_duck_dev.services.lifecycle import Service

# A server is its module, honey_duck_dev/services/<word>.py, and one line here naming the class
# in it. Modules are imported on first use, so a server needs only its own client libraries.
SERVICES: dict[str, str] = {
    "postgres": "Postgres",
    "s3": "S3",
    "kafka": "Kafka",
    "mongo": "Mongo",
}


def service(name: str) -> type[Service]:
    """The server class registered as `name`."""
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    found = getattr(importlib.import_module(f"{__package__}.{name}"), SERVICES[name])
    if not (isinstance(found, type) and issubclass(found, Service) and found.name == name):
        raise TypeError(f"{__package__}.{name}.{SERVICES[name]} is not the Service {name!r}")
    return found
