"""The `dev` environment against real servers on loopback: files on S3, tables in PostgreSQL."""

import io

import polars as pl
import psycopg
import pytest

from honey_duck import cli, environments


@pytest.fixture
def dev(postgres_server: str, s3_server, tmp_path, monkeypatch: pytest.MonkeyPatch):
    bucket = s3_server.create_bucket("honey-duck")
    variables = {
        "HONEY_DUCK_ENV": "dev",
        "HONEY_DUCK_HOME": str(tmp_path),
        "HONEY_DUCK_POSTGRES_URL": postgres_server,
        "HONEY_DUCK_BUCKET": bucket,
        **s3_server.env(),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return environments.current(), bucket


def test_dev_lands_files_on_s3_and_tables_in_postgres(dev, s3_server, postgres_server: str) -> None:
    env, bucket = dev
    ok, landed = cli.materialize(env, ["json", "postgres", "redshift"])
    assert ok
    expected = pl.read_parquet(env.home / "storage" / "sales_enriched.parquet")
    client = s3_server.client()
    body = client.get_object(Bucket=bucket, Key="output/json/sales_enriched.json")["Body"].read()
    assert pl.read_ndjson(io.BytesIO(body)).height == expected.height
    months = client.list_objects_v2(Bucket=bucket, Prefix="output/json/sales_monthly/")
    assert len([o for o in months["Contents"] if o["Key"].endswith(".json")]) == 24
    with psycopg.connect(postgres_server) as connection:
        for schema in ("postgres", "redshift"):
            count = connection.execute(f"SELECT count(*) FROM {schema}.sales_enriched").fetchone()
            assert count == (expected.height,), schema
            monthly = connection.execute(
                f"SELECT count(DISTINCT date_trunc('month', sale_date)) FROM {schema}.sales_monthly"
            ).fetchone()
            assert monthly == (24,), schema
    staged = client.list_objects_v2(Bucket=bucket, Prefix="redshift/staging/")
    assert staged.get("KeyCount", 0) == 0  # the Redshift sink cleaned up its staged Parquet
    where = landed[next(k for k in landed if k.to_user_string() == "postgres/sales_enriched")]
    assert where.where.startswith("postgresql://127.0.0.1:")
