"""Redshift: our RedshiftIOManager (Parquet on S3, COPY); PostgreSQL stands in for it in dev."""

from urllib.parse import urlsplit

import dagster as dg

from honey_duck.environments import Environment
from honey_duck.io.localsql import LocalSqlIOManager
from honey_duck.io.redshift import RedshiftIOManager
from honey_duck.sinks.assets import sink_assets

assets = sink_assets("redshift", kinds={"redshift", "polars"})


def resources(env: Environment) -> dict:
    if env.name == "local":
        return {
            "redshift_io_manager": LocalSqlIOManager(database=env.path("redshift_local.duckdb"))
        }
    if env.name == "dev":  # no Redshift runs offline: the same load, on the dev PostgreSQL
        postgres = urlsplit(env.setting("HONEY_DUCK_POSTGRES_URL"))
        manager = RedshiftIOManager(
            engine="postgres",
            host=postgres.hostname or "127.0.0.1",
            port=postgres.port or 5432,
            user=postgres.username or "postgres",
            password=postgres.password,
            database=postgres.path.lstrip("/") or "postgres",
            s3_bucket=env.setting("HONEY_DUCK_BUCKET"),
            s3_prefix="redshift/staging",
            s3_endpoint_url=env.setting("HONEY_DUCK_S3_ENDPOINT"),
            s3_region=env.setting("HONEY_DUCK_S3_REGION"),
            aws_access_key_id=dg.EnvVar("HONEY_DUCK_S3_ACCESS_KEY_ID"),
            aws_secret_access_key=dg.EnvVar("HONEY_DUCK_S3_SECRET_ACCESS_KEY"),
        )
        return {"redshift_io_manager": manager}
    manager = RedshiftIOManager(
        host=dg.EnvVar("HONEY_DUCK_REDSHIFT_HOST"),
        user=dg.EnvVar("HONEY_DUCK_REDSHIFT_USER"),
        password=dg.EnvVar("HONEY_DUCK_REDSHIFT_PASSWORD"),
        database=dg.EnvVar("HONEY_DUCK_REDSHIFT_DATABASE"),
        iam_role=dg.EnvVar("HONEY_DUCK_REDSHIFT_IAM_ROLE"),
        s3_bucket=dg.EnvVar("HONEY_DUCK_REDSHIFT_STAGING_BUCKET"),
    )
    return {"redshift_io_manager": manager}
