"""A private PostgreSQL cluster on 127.0.0.1: initdb with trust auth, served by pg_ctl."""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from honey_duck.sinks.postgres import URL
from honey_duck_dev.services.lifecycle import (
    HOST,
    Service,
    ServiceNotFound,
    port_of,
    read_pidfile,
    run_as,
)

POSTGRES_USER = "postgres"
POSTGRES_DB = "postgres"
PG_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"


def find_postgres_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: `pg_config --bindir`, else Debian's."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            candidates.append(Path(bindir))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/").glob(PG_BINDIR_GLOB.lstrip("/")), key=version, reverse=True)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ServiceNotFound(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: looked in "
        f"`pg_config --bindir` and {PG_BINDIR_GLOB} ({[str(c) for c in candidates] or 'nothing'}); "
        "install PostgreSQL (Debian: `apt-get install postgresql`) or put its pg_config on PATH"
    )


class Postgres(Service):
    """A private PostgreSQL cluster: initdb with trust auth, served by pg_ctl on 127.0.0.1."""

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

    def _spawn(self, timeout: float) -> None:
        bindir = find_postgres_bindir()
        as_user = run_as("postgres", self.root)  # initdb and postgres refuse to run as root
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", POSTGRES_USER]
            initdb += ["--auth=trust", "--encoding=UTF8", "--locale=C"]
            if not self.keep:
                initdb.append("--no-sync")
            self.run_tool("initdb", [*as_user, *initdb], timeout)
        options = f"-c listen_addresses={HOST} -p {self.port} -k {shlex.quote(str(self.root))}"
        if not self.keep:  # a throwaway cluster: durability only costs time
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path)]
        pg_ctl += ["-o", options, "-w", "-t", str(max(1, int(timeout))), "start"]
        try:
            self.run_tool("pg_ctl", [*as_user, *pg_ctl], timeout)
        finally:
            # pg_ctl and runuser exit once the server runs: the postmaster's own PID is in its file
            self.pid = read_pidfile(self.data_dir / "postmaster.pid", str(self.data_dir))
