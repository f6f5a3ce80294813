"""Redshift: our RedshiftIOManager (Parquet on S3, COPY); PostgreSQL stands in for it in dev."""

import dagster as dg

from honey_duck.environments import POSTGRES_URL_VAR, S3_ENDPOINT_VAR, Environment, dev_s3
from honey_duck.io.connections import PostgresConfig, S3Config
from honey_duck.io.localsql import LocalSqlIOManager
from honey_duck.io.redshift import RedshiftIOManager
from honey_duck.sinks.assets import sink_assets
from honey_duck.sinks.postgres import prod_connection

# What this sink's tests run against (the README's destination table shows it).
TESTED_AGAINST = (
    "SeaweedFS S3 for staging, sqlglot's Redshift dialect for every statement, PostgreSQL "
    "for the transactional load (see below)"
)

assets = sink_assets("redshift", kinds={"redshift", "polars"}, pool="redshift")
DEV_SERVICES = (POSTGRES_URL_VAR, S3_ENDPOINT_VAR)  # `dev` loads on PostgreSQL, stages on S3


def resources(env: Environment) -> dict:
    if env.name == "local":
        return {
            "redshift_io_manager": LocalSqlIOManager(database=env.path("redshift_local.duckdb"))
        }
    if env.name == "dev":  # no Redshift runs offline: the same load, on the dev PostgreSQL
        manager = RedshiftIOManager(
            engine="postgres",
            connection=PostgresConfig.from_url(env.setting(POSTGRES_URL_VAR)),
            s3_bucket=env.setting("HONEY_DUCK_BUCKET"),
            s3_prefix="redshift/staging",
            s3=dev_s3(env),
        )
        return {"redshift_io_manager": manager}
    manager = RedshiftIOManager(
        connection=prod_connection("HONEY_DUCK_REDSHIFT", port=5439),
        iam_role=dg.EnvVar("HONEY_DUCK_REDSHIFT_IAM_ROLE"),
        s3_bucket=dg.EnvVar("HONEY_DUCK_REDSHIFT_STAGING_BUCKET"),
        s3=S3Config(),  # the AWS SDK's own credentials chain
    )
    return {"redshift_io_manager": manager}
