"""The process lifecycle every server of the harness shares, on mirakuru's executor.

A server module (`postgres.py`, `s3.py`, ...) is a command line that runs its server in the
foreground, a ping with the server's own client, and the variables that point honey_duck at it;
`Service` does the rest. Every server binds 127.0.0.1, gets a fresh temporary data directory
unless it is given one (removed on stop unless given), and is stopped by its own PID: the
command is the server itself, never a wrapper (no pg_ctl, runuser or console script), so the
process mirakuru spawns and stops is the one that serves the port.

mirakuru (`ServerExecutor`) spawns the command in a session of its own, polls the ping until it
answers or the start bound passes, raises as soon as the process exits with an error, and stops
it with the server's stop signal to its process group, SIGKILL after the bound. What we keep on
top: the port checked before anything is created, errors that carry the server's log tail, the
data directory's removal, and an exact-match exit hook instead of mirakuru's (see below).
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar, Self

import mirakuru
import mirakuru.base
from mirakuru.exceptions import ProcessFinishedWithError

from honey_duck_dev.services._host import (
    HOST,
    ServiceError,
    ServiceNotFound,
    as_user,
    find_binary,
    free_port,
    log_tail,
    pid_alive,
    port_free,
    port_of,
    port_open,
    raise_interrupt,
)

# what server modules, tests and tools take from here, with `Service`
__all__ = [
    "HOST", "START_TIMEOUT", "Service", "ServiceError", "ServiceNotFound", "as_user",
    "find_binary", "free_port", "pid_alive", "port_free", "port_of", "port_open",
    "raise_interrupt",
]  # fmt: skip

START_TIMEOUT = 30.0

# mirakuru's exit hook SIGKILLs every process whose `mirakuru_uuid` marker *contains* our PID as
# a substring, so a test process with PID 4521 would also kill another session's server marked
# "14521:..." (PIDs here are at most 5 digits, and the marker's uuid is hex). Our own hook stops
# exactly the servers this process started, with their stop signal.
atexit.unregister(mirakuru.base.cleanup_subprocesses)
_RUNNING: set[Service] = set()


@atexit.register
def _stop_leftovers() -> None:
    for service in list(_RUNNING):
        with contextlib.suppress(Exception):
            service.stop()


class ServerExecutor(mirakuru.Executor):
    """mirakuru's executor for one `Service`: started once its ping answers."""

    def __init__(self, service: Service, log: IO[bytes], timeout: float) -> None:
        super().__init__(
            service.command(),
            cwd=str(service.root),
            timeout=timeout,
            stop_signal=service.stop_signal,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            popen_kwargs=service.popen_kwargs(),
        )
        self.service = service
        self.last_error: Exception | None = None

    @property
    def envvars(self) -> dict[str, str]:
        # mirakuru starts from os.environ; a server module may need some of it kept out
        return {**self.service.child_env(), mirakuru.base.ENV_UUID: self._uuid}

    def pre_start_check(self) -> bool:
        return False  # `launch` checked the port before it created anything

    def after_start_check(self) -> bool:
        if not self.running():  # exited 0 before it answered: mirakuru would wait on
            raise self.service.error("exited before it answered")
        try:
            self.service.ping()
        except Exception as exc:
            self.last_error = exc
            return False
        return True


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
        self._executor: ServerExecutor | None = None
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
        """Start the server and wait until it answers; the caller must `stop()` it.

        `timeout` bounds the start and, later, the stop before SIGKILL.
        """
        if port is not None and not port_free(port):
            raise ServiceError(f"{cls.name}: port {port} on {HOST} is already in use")
        keep = data_dir is not None
        if data_dir is None:
            root = Path(tempfile.mkdtemp(prefix=f"honey_duck-{cls.name}-"))
        else:
            root = Path(data_dir).resolve()
            root.mkdir(parents=True, exist_ok=True)
        service = cls(root, port or free_port(), keep)
        _RUNNING.add(service)
        try:
            service.prepare(timeout)
            service._log = service.log_path.open("ab")
            service._executor = ServerExecutor(service, service._log, timeout)
            service._run(service._executor, timeout)
        except BaseException:
            service.stop()
            raise
        return service

    @staticmethod
    def _run(executor: ServerExecutor, timeout: float) -> None:
        try:
            executor.start()
        except mirakuru.ProcessExitedWithError as exc:
            what = f"exited with {exc.exit_code} before it answered"
            raise executor.service.error(what) from None
        except mirakuru.TimeoutExpired:
            why = f" ({executor.last_error})" if executor.last_error else ""
            raise executor.service.error(f"did not answer within {timeout:.0f}s{why}") from None

    @property
    def pid(self) -> int | None:
        """The server process's PID (the leader of its process group), once spawned."""
        process = self._executor.process if self._executor else None
        return process.pid if process else None

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

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the server in the foreground, as the process to stop."""

    def prepare(self, timeout: float) -> None:  # noqa: B027 (a hook: most servers need nothing)
        """Create what the server needs before its first start (PostgreSQL's initdb)."""

    def popen_kwargs(self) -> dict[str, Any]:
        """More `subprocess.Popen` arguments for the server (the user it runs as)."""
        return {}

    def child_env(self) -> Mapping[str, str]:
        """The server process's environment: ours, unless a server must not see some of it."""
        return os.environ

    def prepare_for_dev(self) -> None:  # noqa: B027 (a hook: most servers need nothing)
        """Create what the `dev` environment expects on a fresh server (`up` calls it)."""

    def run_tool(self, tool: str, command: list[str], timeout: float, **popen: Any) -> None:
        """Run a set-up tool (initdb) to completion, its output in `<tool>.log`."""
        output = self.root / f"{tool}.log"
        with output.open("wb") as out:
            try:
                done = subprocess.run(
                    command, cwd=self.root, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, timeout=timeout, **popen,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise self.error(f"did not start: {tool} hung", output) from None
        if done.returncode != 0:
            raise self.error(f"did not start: {tool} exited with {done.returncode}", output)

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self._executor is not None and self._executor.running()

    def stop(self) -> None:
        """Stop the server by its PID, then remove its directory unless it is kept."""
        try:
            if self._executor is not None and self._executor.process is not None:
                pid = self._executor.process.pid
                # a server that died before (a test killed it) has nothing to say about stopping
                gone = self._executor.process.poll() is not None
                try:  # the stop signal to its group, a bounded wait, then SIGKILL
                    self._executor.stop()
                except ProcessFinishedWithError as exc:
                    if not gone:
                        raise self.error(f"exited with {exc.exit_code} when stopped") from None
                if pid_alive(pid):
                    raise ServiceError(f"{self.name} (pid {pid}) survived SIGKILL")
        finally:
            _RUNNING.discard(self)
            if self._log is not None:
                self._log.close()
                self._log = None
            self._cleanup()
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    def _cleanup(self) -> None:  # noqa: B027 (a hook: most servers leave nothing behind)
        """Release what the server left outside its directory (sockets in the temp dir)."""

    def error(self, what: str, log: Path | None = None) -> ServiceError:
        """A ServiceError naming the server, its address and the last lines of its log."""
        log = log or self.log_path
        return ServiceError(
            f"{self.name} on {HOST}:{self.port} {what}; last lines of {log}:\n{log_tail(log)}"
        )
