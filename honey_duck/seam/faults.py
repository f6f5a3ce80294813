"""Faults every target shares: one retry policy, what a retry may repeat, and redaction.

A target says which of its errors are transient (`Target.transient`); the flow in
`honey_duck.seam` retries those with one policy and fails at once on anything else.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ConnectFailed(ConnectionError):
    """The server could not be reached, or turned us away; `transient` when a retry may help."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class OutcomeUnknown(RuntimeError):
    """The last step of a write (a COMMIT, a final rename) failed in a way that may or may not
    have applied it: only a write that is safe to repeat (not an append) may be retried."""


# What a server or driver says when a later attempt may connect: refused (restarting), timed
# out, starting up, shutting down or in recovery, or reset. Bad credentials, an unknown
# database or an access rule will not change by waiting.
TRANSIENT_WORDS = (
    "refused",
    "timeout",
    "timed out",
    "starting up",
    "shutting down",
    "recovery mode",
    "not yet accepting connections",
    "reset",
    "closed the connection",
    "too many clients",
    "could not translate host name",
    "no route to host",
    "network is unreachable",
)
PERMANENT_WORDS = ("authentication", "does not exist", "pg_hba.conf", "permission denied")


def connect_failed(
    target: str,
    where: str,
    exc: BaseException,
    transient_states: Sequence[str] = ("08", "53300", "57P"),
) -> ConnectFailed:
    """A ConnectFailed saying where we tried to connect, classed transient or not.

    A SQLSTATE, when the driver gives one, decides (`transient_states` are prefixes; the
    default is the SQL standard's connection exceptions, too many connections, and a server
    starting up, shutting down or in recovery); the words of the message decide only when
    there is none.
    """
    message = str(exc).lower()
    state = getattr(exc, "sqlstate", None) or ""
    if state:
        transient = state.startswith(tuple(transient_states))
    else:
        transient = not any(p in message for p in PERMANENT_WORDS) and any(
            p in message for p in TRANSIENT_WORDS
        )
    return ConnectFailed(f"cannot connect to {target} at {where}: {exc}", transient)


@dataclass(frozen=True)
class Retry:
    """Bounded exponential backoff with jitter.

    The defaults wait about 0.5, 1, 2, 4, 8 and 8 seconds (each scaled by a random factor
    between 0.5 and 1, so that writers that failed together do not retry together): about
    12 to 24 seconds in all, long enough for a server to restart after a crash.
    """

    attempts: int = 7  # the first try and six retries
    base_seconds: float = 0.5
    cap_seconds: float = 8.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        return min(self.base_seconds * 2 ** (retry - 1), self.cap_seconds) * random.uniform(0.5, 1)

    def run(
        self,
        attempt: Callable[[], T],
        transient: Callable[[BaseException], bool],
        on_retry: Callable[[int, BaseException], None] = lambda n, e: None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> T:
        """Run `attempt`, retrying the failures `transient` accepts, at most `attempts` times."""
        for n in range(1, self.attempts + 1):
            try:
                return attempt()
            except Exception as exc:
                if n == self.attempts or not transient(exc):
                    raise
                on_retry(n, exc)
                sleep(self.delay(n))
        raise AssertionError("unreachable")


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """`text` with every secret replaced by `***` (longest first, so no secret shows in part)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def mentions_secret(exc: BaseException, secrets: Sequence[str | None]) -> bool:
    """Whether a cause or context of `exc` carries a secret (tracebacks print them)."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        if redact(str(seen), secrets) != str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
