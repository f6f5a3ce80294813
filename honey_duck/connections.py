"""Connection settings, declared once per service and shared by every manager that talks to it.

`PostgresConfig` serves the PostgreSQL sink and Redshift (which speaks PostgreSQL's protocol);
`S3Config` serves the file sink on object storage and Redshift's staging. Secrets are fields
like any other: pass `dg.EnvVar(...)`, and `secrets()` tells the flow what to redact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from botocore.client import BaseClient


class PostgresConfig(dg.Config):
    """Where a PostgreSQL-protocol server is and who to connect as."""

    host: str = Field(default="127.0.0.1", description="Server host.")
    port: int = Field(default=5432, description="Server port.")
    user: str = Field(default="postgres", description="Role to connect as.")
    password: str | None = Field(default=None, description="Password; use dg.EnvVar.")
    database: str = Field(default="postgres", description="Database name.")
    connect_timeout: int = Field(default=10, description="Seconds to wait for a connection.")

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> PostgresConfig:
        """From a `postgresql://user:password@host:port/database` URL (percent-escapes undone)."""
        parts = urlsplit(url)
        fields: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 5432,
            "user": unquote(parts.username or "postgres"),
            "password": unquote(parts.password) if parts.password else None,
            "database": unquote(parts.path.lstrip("/") or "postgres"),
        }
        return cls(**{**fields, **overrides})

    def url(self) -> str:
        """A libpq URL, every part escaped (it holds the password: never log it)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return (
            f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}"
            f"?application_name=honey_duck&connect_timeout={self.connect_timeout}"
        )

    def where(self) -> str:
        """Where we connect, for error messages (no password)."""
        return f"{self.host}:{self.port} (database {self.database!r}, user {self.user!r})"

    def secrets(self) -> list[str | None]:
        return [self.password, quote(self.password, safe="") if self.password else None]


class S3Config(dg.Config):
    """An S3 endpoint and credentials; empty fields fall back to the AWS SDK's own chain."""

    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint, for object storage that is not AWS."
    )
    region: str | None = Field(default=None, description="Region of the bucket.")
    access_key_id: str | None = Field(default=None, description="Access key; use dg.EnvVar.")
    secret_access_key: str | None = Field(default=None, description="Secret; use dg.EnvVar.")

    def client(self, timeout: float | None = None) -> BaseClient:
        """A boto3 S3 client (path-style addressing, which every S3-compatible server takes)."""
        import boto3
        from botocore.config import Config

        config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
        if timeout is not None:
            config = config.merge(
                Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
            )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=config,
        )

    def fsspec_options(self) -> dict[str, Any]:
        """The same settings for s3fs (fsspec)."""
        options: dict[str, Any] = {}
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.access_key_id:
            options.update(key=self.access_key_id, secret=self.secret_access_key)
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        return options

    def polars_options(self) -> dict[str, str]:
        """The same settings for polars' and delta-rs' object-store readers."""
        options: dict[str, str] = {}
        if self.endpoint_url:
            options["aws_endpoint_url"] = self.endpoint_url
            if self.endpoint_url.startswith("http://"):
                options["aws_allow_http"] = "true"
        if self.region:
            options["aws_region"] = self.region
        if self.access_key_id:
            options["aws_access_key_id"] = self.access_key_id
            options["aws_secret_access_key"] = self.secret_access_key or ""
        return options

    def secrets(self) -> list[str | None]:
        return [self.secret_access_key]
