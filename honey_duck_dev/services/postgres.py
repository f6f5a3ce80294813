"""A private PostgreSQL cluster on 127.0.0.1: initdb with trust auth, then the postmaster itself."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from honey_duck.sinks.postgres import URL
from honey_duck_dev.services.lifecycle import HOST, Service, ServiceNotFound, as_user, port_of

POSTGRES_USER = "postgres"
POSTGRES_DB = "postgres"
PG_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"


def find_postgres_bindir() -> Path:
    """The directory holding initdb and postgres: `pg_config --bindir`, else Debian's."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(bindir))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/").glob(PG_BINDIR_GLOB.lstrip("/")), key=version, reverse=True)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "postgres")):
            return bindir
    raise ServiceNotFound(
        "PostgreSQL server binaries (initdb, postgres) not found: looked in "
        f"`pg_config --bindir` and {PG_BINDIR_GLOB} ({[str(c) for c in candidates] or 'nothing'}); "
        "install PostgreSQL (Debian: `apt-get install postgresql`) or put its pg_config on PATH"
    )


class Postgres(Service):
    """A private PostgreSQL cluster: initdb with trust auth, the postmaster on 127.0.0.1."""

    name = "postgres"
    title = "PostgreSQL"
    dev_port = port_of(URL)
    url_var = URL.name
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to leave

    @property
    def url(self) -> str:
        """A libpq URL for the `postgres` superuser and database (no password: trust auth)."""
        return f"postgresql://{POSTGRES_USER}@{HOST}:{self.port}/{POSTGRES_DB}"

    @property
    def data_dir(self) -> Path:
        """The cluster's PGDATA."""
        return self.root / "data"

    def env(self) -> dict[str, str]:
        return {self.url_var: self.url}

    def ping(self) -> None:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("select 1")

    def popen_kwargs(self) -> dict[str, Any]:
        return as_user("postgres", self.root)  # initdb and postgres refuse to run as root

    def prepare(self, timeout: float) -> None:
        if (self.data_dir / "PG_VERSION").exists():  # a kept --data-dir
            return
        initdb = [str(find_postgres_bindir() / "initdb"), "-D", str(self.data_dir)]
        initdb += ["-U", POSTGRES_USER, "--auth=trust", "--encoding=UTF8", "--locale=C"]
        if not self.keep:
            initdb.append("--no-sync")
        self.run_tool("initdb", initdb, timeout, **self.popen_kwargs())

    def command(self) -> list[str]:
        # the postmaster itself, not pg_ctl (which exits once it has daemonized the server)
        command = [str(find_postgres_bindir() / "postgres"), "-D", str(self.data_dir)]
        command += ["-c", f"listen_addresses={HOST}", "-p", str(self.port), "-k", str(self.root)]
        if not self.keep:  # a throwaway cluster: durability only costs time
            command += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            command += ["-c", "full_page_writes=off"]
        return command
