"""The one place that knows the environments: `local` (default), `dev` and `prod`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from honey_duck.io.connections import S3Config

ENV_VAR = "HONEY_DUCK_ENV"
HOME_VAR = "HONEY_DUCK_HOME"
INPUT_VAR = "HONEY_DUCK_INPUT"
ENVIRONMENTS = ("local", "dev", "prod")

# The `dev` servers: `python3 tasks.py services` and `docker compose up` both publish them on these
# ports of 127.0.0.1, and the variables, when set, point `dev` (and the tests) elsewhere.
DEV_HOST = "127.0.0.1"
POSTGRES_DEV_PORT = 55432
S3_DEV_PORT = 58333
KAFKA_DEV_PORT = 59092
MONGO_DEV_PORT = 57017
S3_REGION = "us-east-1"
DEV_BUCKET = "honey-duck"
POSTGRES_URL_VAR = "HONEY_DUCK_POSTGRES_URL"
S3_ENDPOINT_VAR = "HONEY_DUCK_S3_ENDPOINT"
S3_ACCESS_KEY_VAR = "HONEY_DUCK_S3_ACCESS_KEY_ID"
S3_SECRET_KEY_VAR = "HONEY_DUCK_S3_SECRET_ACCESS_KEY"
S3_REGION_VAR = "HONEY_DUCK_S3_REGION"
BUCKET_VAR = "HONEY_DUCK_BUCKET"
KAFKA_BOOTSTRAP_VAR = "HONEY_DUCK_KAFKA_BOOTSTRAP"
MONGO_URL_VAR = "HONEY_DUCK_MONGO_URL"
MONGO_DATABASE_VAR = "HONEY_DUCK_MONGO_DATABASE"
# The keys the dev S3 server accepts (the harness's SeaweedFS and docker-compose's): a loopback
# test server's, not a secret; a real endpoint's keys come from the variables.
DEV_S3_ACCESS_KEY = "honeyduck"
DEV_S3_SECRET_KEY = "honeyduck-secret"
DEV_SETTINGS = {
    POSTGRES_URL_VAR: f"postgresql://postgres@{DEV_HOST}:{POSTGRES_DEV_PORT}/postgres",
    S3_ENDPOINT_VAR: f"http://{DEV_HOST}:{S3_DEV_PORT}",
    S3_ACCESS_KEY_VAR: DEV_S3_ACCESS_KEY,
    S3_SECRET_KEY_VAR: DEV_S3_SECRET_KEY,
    S3_REGION_VAR: S3_REGION,
    BUCKET_VAR: DEV_BUCKET,
    KAFKA_BOOTSTRAP_VAR: f"{DEV_HOST}:{KAFKA_DEV_PORT}",
    # one node of a replica set, which the driver must not try to discover beyond
    MONGO_URL_VAR: f"mongodb://{DEV_HOST}:{MONGO_DEV_PORT}/?directConnection=true",
    MONGO_DATABASE_VAR: "honey_duck",
}

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Environment:
    """Where this deployment's data lives; sinks turn it into their resources."""

    name: str
    home: Path  # the folder for everything that lands on local disk
    input_dir: Path  # the sample (or generated) CSVs the source assets read
    settings: Mapping[str, str] = field(default_factory=dict)  # service endpoints, for `dev`

    @property
    def is_local(self) -> bool:
        return self.name == "local"

    def setting(self, name: str) -> str:
        """A `dev` service endpoint: from the environment variable, else the default port."""
        return self.settings.get(name) or DEV_SETTINGS[name]

    def path(self, *parts: str) -> str:
        """A path under `home`, for outputs that land on local disk."""
        return str(self.home.joinpath(*parts))


def s3_variables(endpoint_url: str, access_key: str, secret_key: str, region: str) -> dict:
    """The variables that point the `dev` environment (and the tests) at an S3 server."""
    return {
        S3_ENDPOINT_VAR: endpoint_url,
        S3_ACCESS_KEY_VAR: access_key,
        S3_SECRET_KEY_VAR: secret_key,
        S3_REGION_VAR: region,
    }


def dev_s3(env: Environment) -> S3Config:
    """The `dev` S3 server: endpoint, region and keys from the variables, else the harness's."""
    return S3Config(
        endpoint_url=env.setting(S3_ENDPOINT_VAR),
        region=env.setting(S3_REGION_VAR),
        access_key_id=env.setting(S3_ACCESS_KEY_VAR),
        secret_access_key=env.setting(S3_SECRET_KEY_VAR),
    )


def current(environ: Mapping[str, str] | None = None) -> Environment:
    """Read the environment once, from `HONEY_DUCK_ENV` (default `local`)."""
    environ = os.environ if environ is None else environ
    name = environ.get(ENV_VAR, "local").strip() or "local"
    return environment(
        name,
        home=environ.get(HOME_VAR) or REPO_ROOT / "data",
        input_dir=environ.get(INPUT_VAR) or REPO_ROOT / "data" / "input",
        settings={k: environ[k] for k in DEV_SETTINGS if environ.get(k)},
    )


def environment(
    name: str,
    home: str | Path,
    input_dir: str | Path | None = None,
    settings: Mapping[str, str] | None = None,
) -> Environment:
    """Build a named environment; an unknown name is an error that lists the valid ones."""
    if name not in ENVIRONMENTS:
        raise ValueError(
            f"unknown honey_duck environment {name!r} (from {ENV_VAR}); "
            f"valid environments: {', '.join(ENVIRONMENTS)}"
        )
    home = Path(home).resolve()
    input_dir = Path(input_dir or REPO_ROOT / "data" / "input").resolve()
    return Environment(name, home, input_dir, dict(settings or {}))
