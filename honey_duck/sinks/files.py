"""Resources of the file sinks (json, csv, excel, feather): one IO manager, a format each."""

from __future__ import annotations

import dagster as dg

from honey_duck.environments import S3_ENDPOINT_VAR, Environment, dev_s3
from honey_duck.io.files import FileIOManager

FILES_URL_VAR = "HONEY_DUCK_FILES_URL"
DEV_SERVICES = (S3_ENDPOINT_VAR,)  # the settings naming the servers a file sink needs in `dev`


def file_resources(
    word: str, env: Environment, fmt: str | None = None
) -> dict[str, dg.ConfigurableIOManager]:
    """`<word>_io_manager` writing `fmt` files (default: the format named `word`).

    Local disk (local), the S3 server (dev), HONEY_DUCK_FILES_URL (prod); each asset's files
    land under its key, so a second destination of one format (`file_resources("archive",
    env, fmt="csv")`) keeps its own folder.
    """
    fmt = fmt or word
    if env.name == "prod":
        manager = FileIOManager(format=fmt, base_path=dg.EnvVar(FILES_URL_VAR))
    elif env.name == "dev":  # the S3 server of `python3 tasks.py services` or docker compose
        manager = FileIOManager(
            format=fmt, base_path=f"s3://{env.setting('HONEY_DUCK_BUCKET')}/output", s3=dev_s3(env)
        )
    else:
        manager = FileIOManager(format=fmt, base_path=env.path("output"))
    return {f"{word}_io_manager": manager}
