"""Redshift, as it runs here: ours stages Parquet on the S3 server and loads it on PostgreSQL
(`engine="postgres"`, the `dev` setting), against the same stage-then-load done by hand, and
the naive row INSERTs people send to Redshift without staging.

No Redshift runs offline, so these figures say what our staging and load cost around the same
two steps on these servers, not how fast a Redshift cluster's COPY is. Each measurement writes
`sales_enriched` into a PostgreSQL schema named after `out` and stages under `bench/<out>/`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl

from honey_duck_dev.benchmarks.approaches import postgres
from honey_duck_dev.benchmarks.approaches._base import (
    OURS_READER,
    TO_DICTS,
    Checked,
    Sink,
    per_row,
    plain,
)
from honey_duck_dev.benchmarks.approaches._dagster import through_dagster

S3 = "s3"
# What the parent hands the children: a plain child may not import honey_duck to learn the
# S3 service's variable names, so the parent copies them under names of the benchmark's own.
BUCKET_VAR = "HONEY_DUCK_BENCH_REDSHIFT_BUCKET"
S3_VARS = {
    "endpoint": "HONEY_DUCK_BENCH_REDSHIFT_S3_ENDPOINT",
    "access_key": "HONEY_DUCK_BENCH_REDSHIFT_S3_KEY",
    "secret_key": "HONEY_DUCK_BENCH_REDSHIFT_S3_SECRET",
    "region": "HONEY_DUCK_BENCH_REDSHIFT_S3_REGION",
}
FILE_ROWS = 1_000_000  # ours' default max_file_rows: the hand-written stage splits alike


def unavailable() -> str | None:
    from honey_duck_dev.benchmarks.approaches._base import server_missing

    def find_weed() -> object:
        from honey_duck_dev.services.s3 import find_weed

        return find_weed()

    return postgres.unavailable() or server_missing(S3, find_weed)


def environment() -> Mapping[str, str]:
    """In the parent, once the servers are up: a fresh staging bucket, and its endpoint."""
    from honey_duck_dev.services.registry import service

    endpoint = service(S3).handle(os.environ)
    bucket = endpoint.create_bucket("bench-redshift")
    return {
        BUCKET_VAR: bucket,
        S3_VARS["endpoint"]: endpoint.endpoint_url,
        S3_VARS["access_key"]: endpoint.access_key,
        S3_VARS["secret_key"]: endpoint.secret_key,
        S3_VARS["region"]: endpoint.region,
    }


def _s3(name: str) -> str:
    return os.environ[S3_VARS[name]]


def manager(out: Path) -> object:
    """Our `RedshiftIOManager` on PostgreSQL: Parquet staged on S3, loaded by ADBC, swapped."""
    from honey_duck.connections import PostgresConfig, S3Config
    from honey_duck.targets.redshift import RedshiftIOManager, RedshiftStaging

    s3 = S3Config(
        endpoint_url=_s3("endpoint"),
        region=_s3("region"),
        access_key_id=_s3("access_key"),
        secret_access_key=_s3("secret_key"),
    )
    return RedshiftIOManager(
        engine="postgres",
        connection=PostgresConfig.from_url(postgres.url()),
        staging=RedshiftStaging(bucket=os.environ[BUCKET_VAR], prefix=f"bench/{out.name}", s3=s3),
        default_schema=out.name,
    )


def floor(source: Path, out: Path) -> None:
    """By hand, no framework: the table's batches written as Parquet files to S3 (pyarrow's
    dataset writer, what Redshift's COPY reads), then those files scanned back from S3 and
    ADBC-ingested into a plain table (what COPY does, on PostgreSQL), then the files deleted."""
    from urllib.parse import urlsplit

    import boto3
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyarrow import fs

    bucket, prefix = os.environ[BUCKET_VAR], f"bench/{out.name}/floor"
    parts = urlsplit(_s3("endpoint"))
    s3 = fs.S3FileSystem(
        endpoint_override=parts.netloc,
        scheme=parts.scheme,
        access_key=_s3("access_key"),
        secret_key=_s3("secret_key"),
        region=_s3("region"),
    )
    frame = pl.scan_parquet(source)
    schema = pl.DataFrame(schema=frame.collect_schema()).to_arrow().schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in frame.collect_batches(chunk_size=postgres.BATCH_ROWS):
            yield from batch.to_arrow().to_batches()

    written: list[str] = []
    ds.write_dataset(
        pa.RecordBatchReader.from_batches(schema, batches()),
        f"{bucket}/{prefix}",
        format="parquet",
        filesystem=s3,
        basename_template="part-{i}.parquet",
        max_rows_per_file=FILE_ROWS,
        max_rows_per_group=postgres.BATCH_ROWS,
        file_visitor=lambda file: written.append(file.path),
        create_dir=False,
    )
    postgres.create_plain_table(out, source)
    options = {
        "aws_endpoint_url": _s3("endpoint"),
        "aws_allow_http": "true",
        "aws_region": _s3("region"),
        "aws_access_key_id": _s3("access_key"),
        "aws_secret_access_key": _s3("secret_key"),
    }
    staged = pl.scan_parquet([f"s3://{path}" for path in written], storage_options=options)

    def loaded() -> Iterator[pa.RecordBatch]:
        for batch in staged.collect_batches(chunk_size=postgres.BATCH_ROWS):
            yield from batch.to_arrow().to_batches()

    postgres.adbc_ingest(out, pa.RecordBatchReader.from_batches(schema, loaded()))
    client = boto3.client(
        "s3",
        endpoint_url=_s3("endpoint"),
        region_name=_s3("region"),
        aws_access_key_id=_s3("access_key"),
        aws_secret_access_key=_s3("secret_key"),
    )
    keys = [{"Key": path.removeprefix(f"{bucket}/")} for path in written]
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000]})


def readback(out: Path) -> object:
    return manager(out).readback()  # type: ignore[attr-defined]


OURS = through_dagster(
    "RedshiftIOManager(engine='postgres') via dg.materialize (Parquet staged on S3 by"
    " pyarrow's dataset writer, loaded by ADBC into a staging table, validation, swap)",
    manager,
    "honey_duck.targets.redshift",
    postgres.ADBC,
    "pyarrow",
    "pyarrow.dataset",
)

SINKS = {
    "redshift": Sink(
        postgres.count,
        {
            "ours": OURS,
            "naive": per_row(
                f"{TO_DICTS} → psycopg executemany(INSERT ... VALUES (%s, ...)), plain table, no"
                " staging (what people send to Redshift before they learn COPY)",
                postgres.naive,
                "psycopg",
            ),
            "floor": plain(
                "scan_parquet batches → pyarrow write_dataset to S3 (Parquet, 1M rows a file) →"
                " scan_parquet(s3://...) batches → ADBC adbc_ingest, plain table → delete_objects",
                floor,
                "pyarrow",
                "pyarrow.dataset",
                "boto3",
                "psycopg",
                postgres.ADBC,
            ),
        },
        unavailable=unavailable,
        cleanup=postgres.drop,
        servers=(postgres.SERVER, S3),
        server_version=postgres.version,
        environment=environment,
    ),
}

CHECKS: dict[str, Checked] = {
    "redshift": Checked(
        "redshift", "ours", OURS, readback, OURS_READER.format("RedshiftIOManager")
    ),
}
