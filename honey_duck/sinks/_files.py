"""What the file sinks share: one IO manager for every format, and S3 as `dev`'s home for them.

A file sink is `sink_assets(<word>, ...)` and `file_environments(<word>)`, its manager in each
environment: local disk (`local`), a bucket of the S3 server (`dev`), `HONEY_DUCK_FILES_URL`
(`prod`). Each asset's files land under its key, so a second destination of one format
(`file_environments("archive", fmt="csv")`) keeps its own folder and its own word.
"""

from __future__ import annotations

from collections.abc import Callable

from honey_duck.connections import S3Config
from honey_duck.environments import DEV_HOST, Environment, Setting
from honey_duck.targets.files import FileIOManager

# The S3 server of `python3 tasks.py services` (SeaweedFS) and of docker compose; its keys are a
# loopback test server's, not a secret: a real endpoint's come from the variables.
S3_ENDPOINT = Setting("HONEY_DUCK_S3_ENDPOINT", dev=f"http://{DEV_HOST}:58333")
S3_ACCESS_KEY = Setting("HONEY_DUCK_S3_ACCESS_KEY_ID", dev="honeyduck")
S3_SECRET_KEY = Setting("HONEY_DUCK_S3_SECRET_ACCESS_KEY", dev="honeyduck-secret")
S3_REGION = Setting("HONEY_DUCK_S3_REGION", dev="us-east-1")
BUCKET = Setting("HONEY_DUCK_BUCKET", dev="honey-duck")
FILES_URL = Setting("HONEY_DUCK_FILES_URL")  # `prod`: e.g. s3://bucket/honey_duck

EnvManager = Callable[[Environment], FileIOManager]

SETTINGS = (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, BUCKET)
DEV_SERVICES = {"s3": S3_ENDPOINT}  # a file sink's files live on the S3 server in `dev`


def dev_s3(env: Environment) -> S3Config:
    """The `dev` S3 server: endpoint, region and keys from the variables, else the harness's."""
    return S3Config(
        endpoint_url=env.setting(S3_ENDPOINT),
        region=env.setting(S3_REGION),
        access_key_id=env.setting(S3_ACCESS_KEY),
        secret_access_key=env.setting(S3_SECRET_KEY),
    )


def file_environments(
    word: str, fmt: str | None = None
) -> tuple[EnvManager, EnvManager, EnvManager]:
    """`word`'s IO manager writing `fmt` files (default: the format named `word`) in `local`,
    `dev` and `prod`, for a sink module to take as its own: `local, dev, prod = ...`."""
    fmt = fmt or word

    def local(env: Environment) -> FileIOManager:
        return FileIOManager(format=fmt, sink=word, base_path=env.path("output"))

    def dev(env: Environment) -> FileIOManager:
        base = f"s3://{env.setting(BUCKET)}/output"
        return FileIOManager(format=fmt, sink=word, base_path=base, s3=dev_s3(env))

    def prod(env: Environment) -> FileIOManager:
        return FileIOManager(format=fmt, sink=word, base_path=FILES_URL.env_var())

    return local, dev, prod
