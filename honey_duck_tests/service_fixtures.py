"""Session fixtures for the servers the sinks need: real ones from the environment, else our own.

`HONEY_DUCK_POSTGRES_URL`, `HONEY_DUCK_S3_ENDPOINT` (with its keys),
`HONEY_DUCK_KAFKA_BOOTSTRAP` and `HONEY_DUCK_MONGO_URL` point the tests at running servers, e.g.
`docker compose up` or `python -m honey_duck_dev.services up`; without them each fixture starts
a private server of the harness's registry (`honey_duck_dev.services`). A server that cannot be
had skips the tests that need it, or fails them when `CI` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import pytest

from honey_duck import sinks
from honey_duck.connections import S3Config
from honey_duck_dev.services.lifecycle import Service, ServiceError
from honey_duck_dev.services.registry import service
from honey_duck_dev.services.s3 import S3, s3_client, s3_variables

if TYPE_CHECKING:
    from botocore.client import BaseClient


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for want of a server, or fail it in CI, where nothing may be skipped."""
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def own_server(name: str) -> Iterator[Service]:
    """A private server from the registry, stopped afterwards; unavailable() if it cannot start."""
    cls = service(name)
    try:
        server = cls.launch()
    except ServiceError as exc:
        unavailable(f"no {cls.title} server: set {cls.url_var} or install one ({exc})")
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class S3Server:
    """Where an S3 endpoint is and the credentials it accepts."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = sinks._files.S3_REGION.dev

    def client(self) -> BaseClient:
        """A boto3 S3 client for this endpoint."""
        return s3_client(self.endpoint_url, self.access_key, self.secret_key, self.region)

    def bucket_name(self, prefix: str = "test") -> str:
        """A bucket name no other test uses (not created)."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def create_bucket(self, prefix: str = "test") -> str:
        """Create a fresh bucket and return its name."""
        name = self.bucket_name(prefix)
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """The variables that point honey_duck at this endpoint."""
        return s3_variables(self.endpoint_url, self.access_key, self.secret_key, self.region)

    def config(self) -> S3Config:
        """The sinks' S3 settings for this endpoint."""
        return S3Config(
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
        )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL superuser URL: `HONEY_DUCK_POSTGRES_URL`, else a private cluster."""
    if url := os.environ.get(sinks.postgres.URL.name):
        yield url
        return
    with own_server("postgres") as server:
        yield server.env()[sinks.postgres.URL.name]


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """An S3 endpoint that checks credentials: `HONEY_DUCK_S3_ENDPOINT`, else SeaweedFS."""
    if endpoint := os.environ.get(sinks._files.S3_ENDPOINT.name):
        keys = (sinks._files.S3_ACCESS_KEY.name, sinks._files.S3_SECRET_KEY.name)
        if missing := [k for k in keys if not os.environ.get(k)]:
            unavailable(f"{sinks._files.S3_ENDPOINT.name} is set but {' and '.join(missing)} not")
        yield S3Server(
            endpoint,
            os.environ[sinks._files.S3_ACCESS_KEY.name],
            os.environ[sinks._files.S3_SECRET_KEY.name],
            os.environ.get(sinks._files.S3_REGION.name) or sinks._files.S3_REGION.dev,
        )
        return
    with own_server("s3") as server:
        assert isinstance(server, S3)
        yield S3Server(server.endpoint_url, server.access_key, server.secret_key, server.region)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka `bootstrap.servers`: `HONEY_DUCK_KAFKA_BOOTSTRAP`, else noida-db's Kafka endpoint."""
    if bootstrap := os.environ.get(sinks.kafka.BOOTSTRAP.name):
        yield bootstrap
        return
    with own_server("kafka") as server:
        yield server.env()[sinks.kafka.BOOTSTRAP.name]


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """A MongoDB URL (one replica-set node): `HONEY_DUCK_MONGO_URL`, else SecantusDB."""
    if url := os.environ.get(sinks.mongo.URL.name):
        yield url
        return
    with own_server("mongo") as server:
        yield server.env()[sinks.mongo.URL.name]
