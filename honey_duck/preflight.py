"""Checks before a run starts: every variable the selected groups read is set, every `dev` server
they talk to is listening. Each failure is one sentence naming what to set or start, instead of a
run that retries for a minute or a traceback of config errors."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import dagster as dg
from pydantic import BaseModel

from honey_duck.environments import Environment, Setting

if TYPE_CHECKING:
    from honey_duck.sinks import Sink


def env_vars(value: Any) -> Iterator[str]:
    """The names of the `dg.EnvVar`s inside a resource, however deeply its config nests them."""
    name = getattr(value, "env_var_name", None)
    if isinstance(name, str):
        yield name
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from env_vars(getattr(value, field, None))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from env_vars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from env_vars(item)


def needed_resources(defs: dg.Definitions, keys: Iterable[dg.AssetKey]) -> set[str]:
    """The resource keys the materialization of `keys` uses (IO managers included)."""
    graph = defs.resolve_asset_graph()
    needed = {"io_manager"}  # the pipeline's storage, which every sink reads from
    for key in keys:
        assets_def = graph.get(key).assets_def
        needed |= set(assets_def.required_resource_keys)
        needed.add(assets_def.get_io_manager_key_for_asset_key(key))
    return needed


def missing_variables(
    env: Environment, defs: dg.Definitions, keys: Iterable[dg.AssetKey]
) -> str | None:
    """One sentence listing the unset variables the selected assets need, or None."""
    resources = defs.resources or {}
    missing: dict[str, set[str]] = {}
    for resource_key in sorted(needed_resources(defs, keys)):
        for name in env_vars(resources.get(resource_key)):
            if not os.environ.get(name):
                missing.setdefault(name, set()).add(resource_key.removesuffix("_io_manager"))
    if not missing:
        return None
    listed = "; ".join(f"{n} (for {', '.join(sorted(u))})" for n, u in sorted(missing.items()))
    return (
        f"the '{env.name}' environment needs variables that are not set: {listed}. "
        f"Set them, or copy deploy/{env.name}/.env.example to .env and fill it in."
    )


def endpoint(value: str) -> tuple[str, int] | None:
    """The host and port of a URL (`scheme://host:port/...`) or a `host:port[,...]` list."""
    if "://" in value:
        parts = urlsplit(value)
        return (parts.hostname, parts.port) if parts.hostname and parts.port else None
    host, _, port = value.split(",")[0].strip().rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def listening(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def silent_servers(
    env: Environment, sinks: Mapping[str, Sink], groups: Iterable[str]
) -> str | None:
    """In `dev`, one sentence naming the servers the selected groups need that nobody runs."""
    if env.name != "dev":
        return None
    users: dict[Setting, set[str]] = {}
    for group in groups:
        if group in sinks:
            for setting in sinks[group].dev_services.values():
                users.setdefault(setting, set()).add(group)
    down = []
    for setting, groups_using in sorted(users.items(), key=lambda kv: kv[0].name):
        where = endpoint(env.setting(setting))
        if where and not listening(*where):
            using = ", ".join(sorted(groups_using))
            down.append(f"{where[0]}:{where[1]} ({setting.name}, for {using})")
    if not down:
        return None
    return (
        f"nothing listens on {'; '.join(down)}. Start the dev servers with"
        " `python3 tasks.py services` (or `docker compose up`) and export what it prints,"
        " or point the variables at running servers."
    )
