"""A MongoDB server on 127.0.0.1 served by SecantusDB: the wire protocol on WiredTiger."""

from __future__ import annotations

import importlib.util
import sys

from honey_duck.sinks.mongo import URL
from honey_duck_dev.services.lifecycle import HOST, Service, ServiceNotFound, port_of

SERVER_MODULE = "secantus"  # SecantusDB's package, which `python -m` runs as the server


def find_secantus() -> str:
    """SecantusDB's module, importable by this interpreter, which runs it as the server."""
    if importlib.util.find_spec(SERVER_MODULE) is None:
        raise ServiceNotFound(
            f"SecantusDB (`{SERVER_MODULE}`) is not importable by {sys.executable}; "
            "install it with `pip install secantusdb` (or `pip install -e .[dev]`)"
        )
    return SERVER_MODULE


def mongo_url(host: str, port: int) -> str:
    """A MongoDB URL for one node, which the driver must not try to discover beyond."""
    # the server announces itself as a one-node replica set named `secantus` under its own
    # address; a direct connection keeps pymongo from waiting on a topology it cannot reach
    return f"mongodb://{host}:{port}/?directConnection=true"


class Mongo(Service):
    """A MongoDB server (SecantusDB on WiredTiger, a one-node replica set, so transactions work)."""

    name = "mongo"
    title = "MongoDB"
    dev_port = port_of(URL)
    url_var = URL.name

    @property
    def url(self) -> str:
        """A pymongo URL for this server (no authentication)."""
        return mongo_url(HOST, self.port)

    def env(self) -> dict[str, str]:
        return {self.url_var: self.url}

    def ping(self) -> None:
        import pymongo

        with pymongo.MongoClient(self.url, serverSelectionTimeoutMS=1000) as client:
            client.admin.command("ping")

    def command(self) -> list[str]:
        # `secantusd-py` is a console script that runs the server in its own process, so
        # `python -m secantus` with this interpreter is the same server without a wrapper PID
        module = find_secantus()
        # an explicit, empty config: otherwise ~/.secantus/ or /etc/secantus/ could change it
        config = self.root / "secantusd.toml"
        config.touch()
        data = self.root / "data"
        return [
            sys.executable, "-m", module, "--config", str(config), "--host", HOST,
            "--port", str(self.port), "--storage-path", str(data), "--log-level", "WARNING",
        ]  # fmt: skip
