"""Redshift: our RedshiftIOManager (Parquet on S3, COPY); PostgreSQL stands in for it in dev."""

import dagster as dg

from honey_duck.connections import PostgresConfig, S3Config
from honey_duck.environments import Environment
from honey_duck.sinks import _files, postgres
from honey_duck.sinks._group import sink_assets
from honey_duck.targets.redshift import RedshiftIOManager, RedshiftStaging
from honey_duck.targets.standin import StandInIOManager

TESTED_AGAINST = (
    "SeaweedFS S3 for staging, sqlglot's Redshift dialect for every statement, PostgreSQL "
    "for the transactional load (see below)"
)

SETTINGS = (*postgres.SETTINGS, *_files.SETTINGS)
# no Redshift runs offline: `dev` loads on the PostgreSQL server and stages on the S3 server
DEV_SERVICES = {**postgres.DEV_SERVICES, **_files.DEV_SERVICES}

assets = sink_assets("redshift", kinds={"redshift", "polars"}, pool="redshift")


def local(env: Environment) -> StandInIOManager:
    return StandInIOManager.of(RedshiftIOManager(), database=env.path("redshift_local.duckdb"))


def dev(env: Environment) -> RedshiftIOManager:
    return RedshiftIOManager(
        engine="postgres",
        connection=PostgresConfig.from_url(env.setting(postgres.URL)),
        staging=RedshiftStaging(
            bucket=env.setting(_files.BUCKET), prefix="redshift/staging", s3=_files.dev_s3(env)
        ),
    )


def prod(env: Environment) -> RedshiftIOManager:
    return RedshiftIOManager(
        connection=postgres.prod_connection("HONEY_DUCK_REDSHIFT", port=5439),
        staging=RedshiftStaging(
            iam_role=dg.EnvVar("HONEY_DUCK_REDSHIFT_IAM_ROLE"),
            bucket=dg.EnvVar("HONEY_DUCK_REDSHIFT_STAGING_BUCKET"),
            s3=S3Config(),  # the AWS SDK's own credentials chain
        ),
    )
