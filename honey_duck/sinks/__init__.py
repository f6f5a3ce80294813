"""Every destination, found by module name: `honey_duck/sinks/<word>.py` is the sink `<word>`.

A sink module is the whole of what a destination adds to the code location, in one place:

- `assets`: its asset group (`sink_assets(<word>, ...)`: the same three tables as every sink);
- `local(env)`, `dev(env)`, `prod(env)`: its IO manager in each environment (the resource key
  is `<word>_io_manager`);
- `TESTED_AGAINST`: what its tests run against (the README's destination table shows it);
- `DEV_SERVICES`: the harness servers `dev` needs, each with the `Setting` that points at it
  (the pre-run check pings them; the harness, compose and tests use the same words);
- `readback(manager)`, for a destination on an official Dagster manager: how the
  reconciliation check reads it back (its target module's `OfficialReadback`).

Modules whose names start with `_` are helpers shared by several sinks, not sinks.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import dagster as dg

from honey_duck.environments import ENVIRONMENTS, Environment, Setting

REQUIRED = ("assets", "TESTED_AGAINST", *ENVIRONMENTS)


@dataclass(frozen=True)
class Sink:
    """One destination as the code location sees it."""

    word: str
    module: ModuleType

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return self.module.assets

    @property
    def resource_key(self) -> str:
        return f"{self.word}_io_manager"

    @property
    def tested_against(self) -> str:
        return self.module.TESTED_AGAINST

    @property
    def dev_services(self) -> Mapping[str, Setting]:
        """The harness servers `dev` needs, by word, with the setting that points at each."""
        return dict(getattr(self.module, "DEV_SERVICES", {}))

    @property
    def pool(self) -> str | None:
        """The concurrency pool its writes run in (server-backed sinks have one)."""
        pools = {a.get_op_def_for_asset_key(k).pool for a in self.assets for k in a.keys}
        return next(iter(pools - {None}), None)

    @property
    def readback(self) -> Callable[[Any], Any] | None:
        """How the check reads an official manager back; None for a manager of ours."""
        return getattr(self.module, "readback", None)

    def manager(self, env: Environment) -> dg.ConfigurableIOManager:
        """Its IO manager in `env`."""
        return getattr(self.module, env.name)(env)


def discover() -> dict[str, Sink]:
    """Every sink module of this package, by its word, in alphabetical order."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        missing = [name for name in REQUIRED if not hasattr(module, name)]
        if missing:
            raise TypeError(f"sink module {module.__name__} lacks {', '.join(missing)}")
        groups = {a.group_names_by_key[k] for a in module.assets for k in a.keys}
        if groups != {info.name}:
            raise TypeError(
                f"sink module {module.__name__} puts its assets in groups {sorted(groups)};"
                f" a sink's group is its word, {info.name!r}"
            )
        found[info.name] = Sink(info.name, module)
    return found


SINKS: dict[str, Sink] = discover()


def resources(env: Environment) -> dict[str, dg.ConfigurableIOManager]:
    """Every sink's IO manager in `env`, under its resource key."""
    return {sink.resource_key: sink.manager(env) for sink in SINKS.values()}


def dev_settings() -> dict[str, str]:
    """Every variable a sink reads in `dev`, with its default (what `dev` uses when unset)."""
    found: dict[str, str] = {}
    for sink in SINKS.values():
        for setting in getattr(sink.module, "SETTINGS", ()):
            if setting.dev is not None:
                found[setting.name] = setting.dev
    return found
