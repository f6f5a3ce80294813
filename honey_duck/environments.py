"""The one place that knows the environments: `local` (default), `dev` and `prod`.

An environment is a name, a home for what lands on local disk, and the `HONEY_DUCK_*`
variables it was started with. What each destination reads from them is declared by its sink
module (`honey_duck/sinks/<word>.py`) as `Setting`s: the variable, and its `dev` default (the
loopback port `python3 tasks.py services` and `docker compose up` publish), so this module names
no destination.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

ENV_VAR = "HONEY_DUCK_ENV"
HOME_VAR = "HONEY_DUCK_HOME"
INPUT_VAR = "HONEY_DUCK_INPUT"
ENVIRONMENTS = ("local", "dev", "prod")
PREFIX = "HONEY_DUCK_"  # the variables an environment keeps

DEV_HOST = "127.0.0.1"  # every `dev` server listens on loopback only

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    """One variable a sink reads: its name and, when `dev` has a server for it, the default that
    points at that server on loopback (an S3 key of a test server is no secret; a real one is)."""

    name: str
    dev: str | None = None  # None: `dev` needs it set (or has no use for it)

    def env_var(self) -> dg.EnvVar:
        """The variable as `prod` reads it: resolved by Dagster when a run starts."""
        return dg.EnvVar(self.name)

    def env_var_int(self) -> dg.EnvVar:
        return dg.EnvVar.int(self.name)


@dataclass(frozen=True)
class Environment:
    """Where this deployment's data lives; sinks turn it into their resources."""

    name: str
    home: Path  # the folder for everything that lands on local disk
    input_dir: Path  # the sample (or generated) CSVs the source assets read
    variables: Mapping[str, str] = field(default_factory=dict)  # HONEY_DUCK_* at start

    def setting(self, setting: Setting) -> str:
        """A `dev` value: from its variable when set, else its default (the harness's server)."""
        value = self.variables.get(setting.name) or setting.dev
        if value is None:
            raise ValueError(f"the '{self.name}' environment needs {setting.name} set")
        return value

    def path(self, *parts: str) -> str:
        """A path under `home`, for outputs that land on local disk."""
        return str(self.home.joinpath(*parts))


def current(environ: Mapping[str, str] | None = None) -> Environment:
    """Read the environment once, from `HONEY_DUCK_ENV` (default `local`)."""
    environ = os.environ if environ is None else environ
    name = environ.get(ENV_VAR, "local").strip() or "local"
    return environment(
        name,
        home=environ.get(HOME_VAR) or REPO_ROOT / "data",
        input_dir=environ.get(INPUT_VAR) or REPO_ROOT / "data" / "input",
        variables={k: v for k, v in environ.items() if k.startswith(PREFIX) and v},
    )


def environment(
    name: str,
    home: str | Path,
    input_dir: str | Path | None = None,
    variables: Mapping[str, str] | None = None,
) -> Environment:
    """Build a named environment; an unknown name is an error that lists the valid ones."""
    if name not in ENVIRONMENTS:
        raise ValueError(
            f"unknown honey_duck environment {name!r} (from {ENV_VAR}); "
            f"valid environments: {', '.join(ENVIRONMENTS)}"
        )
    home = Path(home).resolve()
    input_dir = Path(input_dir or REPO_ROOT / "data" / "input").resolve()
    return Environment(name, home, input_dir, dict(variables or {}))
