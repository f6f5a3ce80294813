"""Session fixtures for the servers the sinks need: real ones from the environment, else our own.

`HONEY_DUCK_POSTGRES_URL` and `HONEY_DUCK_S3_ENDPOINT` (with its keys) point the tests at running
servers, e.g. `docker compose up` or `python -m honey_duck.services up`; without them each
fixture starts a private server with `honey_duck.services`. A server that cannot be had skips
the tests that need it, or fails them when `CI` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import pytest

from honey_duck import services

if TYPE_CHECKING:
    from botocore.client import BaseClient


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for want of a server, or fail it in CI, where nothing may be skipped."""
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class S3Server:
    """Where an S3 endpoint is and the credentials it accepts."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = services.S3_REGION

    def client(self) -> BaseClient:
        """A boto3 S3 client for this endpoint."""
        return services.s3_client(self.endpoint_url, self.access_key, self.secret_key, self.region)

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
        return {
            services.S3_ENDPOINT_VAR: self.endpoint_url,
            services.S3_ACCESS_KEY_VAR: self.access_key,
            services.S3_SECRET_KEY_VAR: self.secret_key,
            services.S3_REGION_VAR: self.region,
        }


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL superuser URL: `HONEY_DUCK_POSTGRES_URL`, else a private cluster."""
    if url := os.environ.get(services.POSTGRES_URL_VAR):
        yield url
        return
    try:
        server = services.Postgres.launch()
    except services.ServiceError as exc:
        unavailable(f"no PostgreSQL server: set {services.POSTGRES_URL_VAR} or install one ({exc})")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """An S3 endpoint that checks credentials: `HONEY_DUCK_S3_ENDPOINT`, else SeaweedFS."""
    if endpoint := os.environ.get(services.S3_ENDPOINT_VAR):
        keys = (services.S3_ACCESS_KEY_VAR, services.S3_SECRET_KEY_VAR)
        if missing := [k for k in keys if not os.environ.get(k)]:
            unavailable(f"{services.S3_ENDPOINT_VAR} is set but {' and '.join(missing)} not")
        yield S3Server(
            endpoint,
            os.environ[services.S3_ACCESS_KEY_VAR],
            os.environ[services.S3_SECRET_KEY_VAR],
            os.environ.get(services.S3_REGION_VAR) or services.S3_REGION,
        )
        return
    try:
        server = services.S3.launch()
    except services.ServiceError as exc:
        unavailable(f"no S3 server: set {services.S3_ENDPOINT_VAR} or install SeaweedFS ({exc})")
    try:
        yield S3Server(server.endpoint_url, server.access_key, server.secret_key, server.region)
    finally:
        server.stop()
