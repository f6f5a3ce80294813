"""PostgreSQL: ours against the batched ADBC `adbc_ingest` floor, the naive to_dicts +
executemany, pandas' `to_sql`, and other raw paths (pyarrow-fed ADBC, psycopg's binary COPY row
by row, `psql \\copy` of CSV).

Each measurement writes `sales_enriched` into a schema named after `out`, dropped once counted.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import polars as pl

from honey_duck_dev.benchmarks.approaches._base import (
    OURS_READER,
    TO_DICTS,
    Checked,
    Sink,
    dicts,
    hand_written_columns,
    per_row,
    plain,
    server_address,
    server_missing,
)
from honey_duck_dev.benchmarks.approaches._dagster import through_dagster
from honey_duck_dev.benchmarks.inputs import TABLE

SERVER = "postgres"
BATCH_ROWS = 100_000  # ours' default batch_rows, so the floor streams alike

# The column types a person would write into the CREATE TABLE by hand.
HAND_WRITTEN_TYPES = {
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Float64: "DOUBLE PRECISION",
    pl.String: "TEXT",
    pl.Date: "DATE",
}


def url() -> str:
    return server_address(SERVER)


def unavailable() -> str | None:
    def find() -> object:
        from honey_duck_dev.services.postgres import find_postgres_bindir

        return find_postgres_bindir()

    return server_missing(SERVER, find)


def manager(out: Path) -> object:
    """Our `PostgresIOManager`: ADBC ingest into a staging table, validation, then a swap."""
    from honey_duck.targets.postgres import PostgresIOManager

    return PostgresIOManager.from_url(url(), default_schema=out.name)


def create_plain_table(out: Path, source: Path) -> None:
    """Create the measurement's schema and a plain `sales_enriched` with hand-written types."""
    import psycopg

    columns = ", ".join(hand_written_columns(source, HAND_WRITTEN_TYPES))
    with psycopg.connect(url(), autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{out.name}"')
        con.execute(f'CREATE TABLE "{out.name}".{TABLE} ({columns})')  # type: ignore[arg-type]


def naive(source: Path, out: Path) -> None:
    """A hand-written CREATE TABLE, then psycopg's `executemany` of one INSERT per row."""
    import psycopg

    rows = dicts(source)
    create_plain_table(out, source)
    marks = ", ".join(["%s"] * len(rows[0])) if rows else ""
    with psycopg.connect(url()) as con, con.cursor() as cursor:
        sql = f'INSERT INTO "{out.name}".{TABLE} VALUES ({marks})'
        cursor.executemany(sql, [tuple(row.values()) for row in rows])  # type: ignore[arg-type]


def to_sql(source: Path, out: Path) -> None:
    """pandas `DataFrame.to_sql` through SQLAlchemy and psycopg with `method=None`, pandas'
    default: one INSERT per row, sent with `executemany`, 10,000 rows per call."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url().replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as con:
            con.execute(sqlalchemy.text(f'CREATE SCHEMA "{out.name}"'))
        frame = pl.read_parquet(source).to_pandas()
        frame.to_sql(TABLE, engine, schema=out.name, index=False, chunksize=10_000, method=None)
    finally:
        engine.dispose()


def adbc_ingest(out: Path, reader: object) -> None:
    """ADBC `adbc_ingest` (binary COPY) of `reader` into the plain table, in one transaction."""
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url()) as con, con.cursor() as cursor:
        cursor.adbc_ingest(TABLE, reader, mode="append", db_schema_name=out.name)
        con.commit()


def floor(source: Path, out: Path) -> None:
    """ADBC `adbc_ingest` of polars' streamed Arrow batches into a plain table, nothing else."""
    import pyarrow as pa

    create_plain_table(out, source)
    # The same Arrow batches ours hands ADBC (scan_parquet, collect_batches, to_arrow), written
    # into the table as it is: no staging table, no swap, no validation, no Dagster run.
    frame = pl.scan_parquet(source)
    schema = pl.DataFrame(schema=frame.collect_schema()).to_arrow().schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in frame.collect_batches(chunk_size=BATCH_ROWS):
            yield from batch.to_arrow().to_batches()

    adbc_ingest(out, pa.RecordBatchReader.from_batches(schema, batches()))


def adbc_pyarrow(source: Path, out: Path) -> None:
    """ADBC `adbc_ingest` of pyarrow's own Parquet batches (no polars) into a plain table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    create_plain_table(out, source)
    parquet = pq.ParquetFile(source)
    batches = parquet.iter_batches(batch_size=BATCH_ROWS)
    adbc_ingest(out, pa.RecordBatchReader.from_batches(parquet.schema_arrow, batches))


def copy(source: Path, out: Path) -> None:
    """psycopg's binary `COPY ... FROM STDIN`, the rows handed over from polars batches."""
    import psycopg

    create_plain_table(out, source)
    types = [
        HAND_WRITTEN_TYPES[t.base_type()].lower() for t in pl.read_parquet_schema(source).values()
    ]
    with psycopg.connect(url()) as con, con.cursor() as cursor:
        sql = f'COPY "{out.name}".{TABLE} FROM STDIN (FORMAT BINARY)'
        with cursor.copy(sql) as copying:  # type: ignore[arg-type]
            copying.set_types(types)
            # psycopg encodes each value in C, but the rows pass through Python one by one
            for batch in pl.scan_parquet(source).collect_batches(chunk_size=BATCH_ROWS):
                for row in batch.iter_rows():
                    copying.write_row(row)


def psql(source: Path, out: Path) -> None:
    """psql `\\copy` of the table written as CSV by polars: the classic text bulk load."""
    columns = ", ".join(hand_written_columns(source, HAND_WRITTEN_TYPES))
    prepared = out / f"{TABLE}.csv"
    pl.scan_parquet(source).sink_csv(prepared)
    script = (
        f'CREATE SCHEMA "{out.name}";\n'
        f'CREATE TABLE "{out.name}".{TABLE} ({columns});\n'
        f"\\copy \"{out.name}\".{TABLE} FROM '{prepared}' WITH (FORMAT csv, HEADER true)\n"
    )
    # The password travels in the environment, never on a command line others can read.
    parts = urlsplit(url())
    env = {**os.environ, "PGPASSWORD": unquote(parts.password or "")}
    user = f"{parts.username}@" if parts.username else ""
    bare = parts._replace(netloc=user + parts.netloc.rpartition("@")[2])
    command = ["psql", bare.geturl(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1"]
    done = subprocess.run(command, input=script, text=True, capture_output=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
    prepared.unlink()


def collect(source: Path, out: Path) -> None:
    """The whole table in memory, then polars' own `write_database` (ADBC ingest)."""
    import psycopg

    with psycopg.connect(url(), autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{out.name}"')
    frame = pl.scan_parquet(source).collect()
    frame.write_database(f"{out.name}.{TABLE}", url(), engine="adbc")


def count(out: Path) -> int:
    import psycopg

    with psycopg.connect(url()) as con:
        row = con.execute(f'SELECT count(*) FROM "{out.name}".{TABLE}').fetchone()
    return int(row[0])  # type: ignore[index]


def version() -> str:
    """The PostgreSQL server's version, e.g. `15.14`."""
    import psycopg

    with psycopg.connect(url()) as con:
        row = con.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0]  # type: ignore[index]


def drop(out: Path) -> None:
    import psycopg

    with psycopg.connect(url(), autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{out.name}" CASCADE')


def readback(out: Path) -> object:
    return manager(out).readback()  # type: ignore[attr-defined]


ADBC = "adbc_driver_postgresql.dbapi"
OURS = through_dagster(
    "PostgresIOManager via dg.materialize (ADBC ingest to a staging table, validation, swap)",
    manager,
    "honey_duck.targets.postgres",
    ADBC,
    "pyarrow",
)

SINKS = {
    "postgres": Sink(
        count,
        {
            "ours": OURS,
            "naive": per_row(
                f"{TO_DICTS} → psycopg executemany(INSERT ... VALUES (%s, ...)), plain table",
                naive,
                "psycopg",
            ),
            "to_sql": per_row(
                "read_parquet → to_pandas → pandas DataFrame.to_sql(method=None,"
                " chunksize=10_000) via SQLAlchemy + psycopg",
                to_sql,
                "sqlalchemy",
                "pandas",
                "pyarrow",
                "psycopg",
            ),
            "floor": plain(
                "scan_parquet → collect_batches(100_000) → to_arrow → batched ADBC adbc_ingest"
                " (binary COPY), one transaction, plain table",
                floor,
                "pyarrow",
                "psycopg",
                ADBC,
            ),
            "adbc_pyarrow": plain(
                "pq.ParquetFile.iter_batches(100_000) → ADBC adbc_ingest (binary COPY), plain"
                " table",
                adbc_pyarrow,
                "pyarrow",
                "pyarrow.parquet",
                "psycopg",
                ADBC,
            ),
            "copy": plain(
                "scan_parquet batches → iter_rows → psycopg binary COPY write_row per row",
                copy,
                "psycopg",
            ),
            "psql": plain("scan_parquet → sink_csv → psql \\copy (CSV)", psql),
        },
        collect=plain("collect() → write_database(engine='adbc')", collect, "psycopg", ADBC),
        unavailable=unavailable,
        cleanup=drop,
        servers=(SERVER,),
        server_version=version,
    ),
}

CHECKS: dict[str, Checked] = {
    "postgres": Checked(
        "postgres", "ours", OURS, readback, OURS_READER.format("PostgresIOManager")
    ),
}
