"""One session fixture per harness server, found by module name: `<word>_server`.

Each honours the variables that point honey_duck at a running server (`HONEY_DUCK_POSTGRES_URL`,
`HONEY_DUCK_S3_ENDPOINT` with its keys, `HONEY_DUCK_KAFKA_BOOTSTRAP`, `HONEY_DUCK_MONGO_URL`,
...: each server module's `url_var`), so the same tests run against real servers, e.g. those of
`docker compose up` or `python -m honey_duck_dev.services up`; otherwise it starts a private
server from the harness (`honey_duck_dev.services.<word>`). A fixture gives what the server
module's `handle` says (a URL, a bootstrap list, an S3 endpoint with its keys). A server that
cannot be had skips the tests that need it, or fails them when `CI` is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from honey_duck_dev.services.lifecycle import ServiceError
from honey_duck_dev.services.registry import SERVICES, service


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for want of a server, or fail it in CI, where nothing may be skipped."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def server_fixture(word: str) -> Callable[[], Iterator[Any]]:
    """The session fixture `<word>_server`: the running server named by the environment, else
    a private one from the harness, stopped when the session ends."""

    @pytest.fixture(scope="session", name=f"{word}_server")
    def fixture() -> Iterator[Any]:
        cls = service(word)
        try:
            given = cls.given(os.environ)
        except ServiceError as exc:
            unavailable(str(exc))
        if given is not None:
            yield cls.handle(given)
            return
        try:
            server = cls.launch()
        except ServiceError as exc:
            unavailable(f"no {cls.title} server: set {cls.url_var} or install one ({exc})")
        try:
            yield cls.handle(server.env())
        finally:
            server.stop()

    return fixture


for _word in SERVICES:
    globals()[f"{_word}_server"] = server_fixture(_word)
