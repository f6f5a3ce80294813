"""What is measured: per sink, our IO manager and its baselines (naive, official, floor).

A sink is one `Sink` entry in `SINKS`: a row counter that reads back what an approach wrote,
and up to four approaches. An approach is a function `(source, out) -> None` that reads the
enriched sales from the Parquet file `source` and lands them as table `sales_enriched` under the
fresh folder `out` (a server-backed sink names its table or index after `out.name`: unique per
measurement, lowercase letters, digits and underscores). Heavy imports stay inside the
functions: this module is imported by the parent process, which is never measured.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import polars as pl

from honey_duck_dev.benchmarks.inputs import TABLE

Kind = Literal["ours", "naive", "official", "floor"]
KINDS: tuple[Kind, ...] = ("ours", "naive", "official", "floor")
# A sink may add other raw paths (no framework) beside its floor, each under its own name: the
# report shows them as extra rows with their ratios, so the floor stays one, the fastest.
Run = Callable[[Path, Path], None]
Count = Callable[[Path], int]

# Every measuring child imports all of these before it starts, and so does the idle child, so
# peak RSS compares like with like: what an approach adds on top of the same process.
PLAIN_IMPORTS = (
    "polars",
    "pyarrow",
    "pyarrow.parquet",
    "pyarrow.feather",
    "duckdb",
    "openpyxl",
    "xlsxwriter",
    "fastexcel",
    "psycopg",
    "sqlalchemy",
    "pandas",
    "adbc_driver_postgresql.dbapi",
)
FRAMEWORK_IMPORTS = (
    "dagster",
    "dagster_polars",
    "dagster_duckdb_polars",
    "honey_duck.targets.files.target",
)


@dataclass(frozen=True)
class Approach:
    """One way of landing the table: a label for the report and the function that does it."""

    label: str
    run: Run
    # Per-row approaches are measured on at most this many rows (None: the runner's naive cap
    # for kind "naive", every row otherwise); rows/s is measured at that size, never extrapolated.
    cap: int | None = None


@dataclass(frozen=True)
class Sink:
    """One destination: how to count what landed, and the approaches to measure."""

    count: Count
    # Keyed by kind (KINDS) or by the name of another raw path; reported in this order.
    approaches: dict[str, Approach]
    # The whole-table-in-memory baseline of `--memory` mode.
    collect: Approach | None = None
    # Why this sink cannot run here (e.g. no server configured), or None when it can.
    unavailable: Callable[[], str | None] = field(default=lambda: None)
    # Removes what an approach left outside `out` (a server-side table), after it is counted.
    cleanup: Callable[[Path], None] | None = None
    # The `honey_duck_dev.services` server this sink writes to: the runner starts one for the whole
    # run, unless the service's URL variable already points at a running server.
    server: str | None = None
    # The server's version, for the report (asked while the runner's server is up).
    server_version: Callable[[], str] | None = None


# ---------------------------------------------------------------------------------------------
# Through Dagster: a one-asset graph whose asset returns the frame, landed by `handle_output`
# ---------------------------------------------------------------------------------------------


def materialize(source: Path, io_manager: object, *, eager: bool = False) -> None:
    """Materialize `sales_enriched` from `source` through `io_manager`, as a user's run would."""
    import dagster as dg

    if eager:  # managers that take DataFrames only get what the project's group hands them

        @dg.asset(name=TABLE)
        def table_eager() -> pl.DataFrame:
            return pl.scan_parquet(source).collect()

        asset = table_eager
    else:

        @dg.asset(name=TABLE)
        def table_lazy() -> pl.LazyFrame:
            return pl.scan_parquet(source)

        asset = table_lazy
    dg.materialize([asset], resources={"io_manager": io_manager}, raise_on_error=True)


def ours_files(fmt: str) -> Run:
    """Our `FileIOManager` writing `fmt`."""

    def run(source: Path, out: Path) -> None:
        from honey_duck.targets.files import FileIOManager

        materialize(source, FileIOManager(format=fmt, base_path=str(out)))  # type: ignore[arg-type]

    return run


def official_parquet(source: Path, out: Path) -> None:
    """dagster-polars' `PolarsParquetIOManager` (streams a LazyFrame with `sink_parquet`)."""
    from dagster_polars import PolarsParquetIOManager

    materialize(source, PolarsParquetIOManager(base_dir=str(out)))


def official_duckdb(source: Path, out: Path) -> None:
    """dagster-duckdb-polars' `DuckDBPolarsIOManager` (DataFrames only, so the asset collects)."""
    from dagster_duckdb_polars import DuckDBPolarsIOManager

    manager = DuckDBPolarsIOManager(database=str(out / "bench.duckdb"), schema="main")
    materialize(source, manager, eager=True)


# ---------------------------------------------------------------------------------------------
# Naive: what people write by hand, the whole table as Python dicts, one write per row
# ---------------------------------------------------------------------------------------------


def _dicts(source: Path) -> list[dict]:
    return pl.read_parquet(source).to_dicts()


def naive_json(source: Path, out: Path) -> None:
    """Every row as a dict, one `json.dumps` and write per row."""
    with open(out / f"{TABLE}.json", "w") as f:
        for row in _dicts(source):
            f.write(json.dumps(row, default=str) + "\n")


def naive_csv(source: Path, out: Path) -> None:
    rows = _dicts(source)
    with open(out / f"{TABLE}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def naive_excel(source: Path, out: Path) -> None:
    import openpyxl

    rows = _dicts(source)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(rows[0]) if rows else [])
    for row in rows:
        sheet.append(list(row.values()))
    workbook.save(out / f"{TABLE}.xlsx")


def naive_feather(source: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather

    feather.write_feather(pa.Table.from_pylist(_dicts(source)), out / f"{TABLE}.feather")


def naive_parquet(source: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(_dicts(source)), out / f"{TABLE}.parquet")


# The column types a person would write into the CREATE TABLE by hand.
_DUCKDB_TYPES = {
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Float64: "DOUBLE",
    pl.String: "VARCHAR",
    pl.Date: "DATE",
}


def _hand_written_columns(source: Path, types: dict[type[pl.DataType], str]) -> list[str]:
    """The column definitions of a CREATE TABLE for `source`, in the target's type names."""
    schema = pl.read_parquet_schema(source)
    return [f'"{c}" {types[t.base_type()]}' for c, t in schema.items()]


def naive_duckdb(source: Path, out: Path) -> None:
    """A hand-written CREATE TABLE, then one parameterised INSERT per row."""
    import duckdb

    rows = _dicts(source)
    columns = _hand_written_columns(source, _DUCKDB_TYPES)
    with duckdb.connect(str(out / "bench.duckdb")) as con:
        con.execute(f"CREATE TABLE main.{TABLE} ({', '.join(columns)})")
        marks = ", ".join("?" * len(columns))
        con.executemany(
            f"INSERT INTO main.{TABLE} VALUES ({marks})", [tuple(r.values()) for r in rows]
        )


# ---------------------------------------------------------------------------------------------
# Floor: the target's own fastest bulk path, no framework around it
# ---------------------------------------------------------------------------------------------


def floor_json(source: Path, out: Path) -> None:
    pl.scan_parquet(source).sink_ndjson(out / f"{TABLE}.json")


def floor_csv(source: Path, out: Path) -> None:
    pl.scan_parquet(source).sink_csv(out / f"{TABLE}.csv")


def floor_feather(source: Path, out: Path) -> None:
    # zstd, as our sink writes it: the same bytes, so the ratio is the framework's cost alone.
    pl.scan_parquet(source).sink_ipc(out / f"{TABLE}.feather", compression="zstd")


def floor_parquet(source: Path, out: Path) -> None:
    pl.scan_parquet(source).sink_parquet(out / f"{TABLE}.parquet")


EXCEL_SHEET_ROWS = 1_048_576  # Excel's own limit per worksheet, header included


def floor_excel(source: Path, out: Path) -> None:
    """Raw xlsxwriter, a row per call, a new sheet at Excel's row limit."""
    import xlsxwriter

    # xlsxwriter's constant-memory mode, a row at a time: faster than polars' write_excel
    # (which formats a whole table object) and the fastest writer installed.
    options = {"constant_memory": True, "default_date_format": "yyyy-mm-dd"}
    workbook = xlsxwriter.Workbook(str(out / f"{TABLE}.xlsx"), options)
    frame = pl.scan_parquet(source)
    columns = frame.collect_schema().names()
    sheet, row = None, EXCEL_SHEET_ROWS
    for batch in frame.collect_batches(chunk_size=100_000):
        for values in batch.iter_rows():
            if row == EXCEL_SHEET_ROWS:  # a full sheet: continue on a new one, as Excel must
                sheet, row = workbook.add_worksheet(), 1
                sheet.write_row(0, 0, columns)
            sheet.write_row(row, 0, values)
            row += 1
    workbook.close()


def floor_duckdb(source: Path, out: Path) -> None:
    import duckdb

    with duckdb.connect(str(out / "bench.duckdb")) as con:
        con.execute(f"CREATE TABLE main.{TABLE} AS SELECT * FROM read_parquet(?)", [str(source)])


# ---------------------------------------------------------------------------------------------
# Collect-everything: the whole table in memory, then one write (`--memory` mode's baseline)
# ---------------------------------------------------------------------------------------------


def collect_csv(source: Path, out: Path) -> None:
    pl.scan_parquet(source).collect().write_csv(out / f"{TABLE}.csv")


def collect_feather(source: Path, out: Path) -> None:
    pl.scan_parquet(source).collect().write_ipc(out / f"{TABLE}.feather", compression="zstd")


def collect_json(source: Path, out: Path) -> None:
    pl.scan_parquet(source).collect().write_ndjson(out / f"{TABLE}.json")


def collect_parquet(source: Path, out: Path) -> None:
    pl.scan_parquet(source).collect().write_parquet(out / f"{TABLE}.parquet")


# ---------------------------------------------------------------------------------------------
# PostgreSQL: each measurement writes `sales_enriched` into a schema named after `out`
# ---------------------------------------------------------------------------------------------


def _postgres_url() -> str:
    from honey_duck.sinks.postgres import URL

    POSTGRES_URL_VAR = URL.name

    url = os.environ.get(POSTGRES_URL_VAR)
    if not url:
        raise RuntimeError(f"{POSTGRES_URL_VAR} is not set (the runner sets it for its server)")
    return url


def _postgres_unavailable() -> str | None:
    from honey_duck.sinks.postgres import URL

    POSTGRES_URL_VAR = URL.name
    from honey_duck_dev.services.lifecycle import ServiceError
    from honey_duck_dev.services.postgres import find_postgres_bindir

    if os.environ.get(POSTGRES_URL_VAR):
        return None
    try:
        find_postgres_bindir()
    except ServiceError as exc:
        return f"no PostgreSQL: set {POSTGRES_URL_VAR} or install one ({exc})"
    return None


def ours_postgres(source: Path, out: Path) -> None:
    """Our `PostgresIOManager`: ADBC ingest (binary COPY) into a staging table, then a swap."""
    from honey_duck.targets.postgres import PostgresIOManager

    materialize(source, PostgresIOManager.from_url(_postgres_url(), default_schema=out.name))


# The column types a person would write into the CREATE TABLE by hand.
_POSTGRES_TYPES = {
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Float64: "DOUBLE PRECISION",
    pl.String: "TEXT",
    pl.Date: "DATE",
}


def naive_postgres(source: Path, out: Path) -> None:
    """pandas `DataFrame.to_sql` through SQLAlchemy and psycopg: one INSERT per row."""
    import sqlalchemy

    url = _postgres_url().replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as con:
            con.execute(sqlalchemy.text(f'CREATE SCHEMA "{out.name}"'))
        frame = pl.read_parquet(source).to_pandas()
        frame.to_sql(TABLE, engine, schema=out.name, index=False, chunksize=10_000)
    finally:
        engine.dispose()


def _postgres_create(out: Path, source: Path) -> None:
    """Create the measurement's schema and a plain `sales_enriched` with hand-written types."""
    import psycopg

    columns = ", ".join(_hand_written_columns(source, _POSTGRES_TYPES))
    with psycopg.connect(_postgres_url(), autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{out.name}"')
        con.execute(f'CREATE TABLE "{out.name}".{TABLE} ({columns})')  # type: ignore[arg-type]


def _adbc_ingest(out: Path, reader: object) -> None:
    """ADBC `adbc_ingest` (binary COPY) of `reader` into the plain table, in one transaction."""
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(_postgres_url()) as con, con.cursor() as cursor:
        cursor.adbc_ingest(TABLE, reader, mode="append", db_schema_name=out.name)
        con.commit()


def floor_postgres(source: Path, out: Path) -> None:
    """ADBC `adbc_ingest` of polars' streamed Arrow batches into a plain table, nothing else."""
    import pyarrow as pa

    _postgres_create(out, source)
    # The same Arrow batches ours hands ADBC (scan_parquet, collect_batches, to_arrow), written
    # into the table as it is: no staging table, no swap, no validation, no Dagster run.
    frame = pl.scan_parquet(source)
    schema = pl.DataFrame(schema=frame.collect_schema()).to_arrow().schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in frame.collect_batches(chunk_size=POSTGRES_BATCH_ROWS):
            yield from batch.to_arrow().to_batches()

    _adbc_ingest(out, pa.RecordBatchReader.from_batches(schema, batches()))


def adbc_pyarrow_postgres(source: Path, out: Path) -> None:
    """ADBC `adbc_ingest` of pyarrow's own Parquet batches (no polars) into a plain table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _postgres_create(out, source)
    parquet = pq.ParquetFile(source)
    batches = parquet.iter_batches(batch_size=POSTGRES_BATCH_ROWS)
    _adbc_ingest(out, pa.RecordBatchReader.from_batches(parquet.schema_arrow, batches))


POSTGRES_BATCH_ROWS = 100_000  # ours' default batch_rows, so both stream alike


def copy_postgres(source: Path, out: Path) -> None:
    """psycopg's binary `COPY ... FROM STDIN`, the rows handed over from polars batches."""
    import psycopg

    _postgres_create(out, source)
    types = [
        _POSTGRES_TYPES[t.base_type()].lower() for t in pl.read_parquet_schema(source).values()
    ]
    with psycopg.connect(_postgres_url()) as con, con.cursor() as cursor:
        sql = f'COPY "{out.name}".{TABLE} FROM STDIN (FORMAT BINARY)'
        with cursor.copy(sql) as copy:  # type: ignore[arg-type]
            copy.set_types(types)
            # psycopg encodes each value in C, but the rows pass through Python one by one
            for batch in pl.scan_parquet(source).collect_batches(chunk_size=POSTGRES_BATCH_ROWS):
                for row in batch.iter_rows():
                    copy.write_row(row)


def psql_postgres(source: Path, out: Path) -> None:
    """psql `\\copy` of the table written as CSV by polars: the classic text bulk load."""
    import subprocess

    columns = ", ".join(_hand_written_columns(source, _POSTGRES_TYPES))
    prepared = out / f"{TABLE}.csv"
    pl.scan_parquet(source).sink_csv(prepared)
    script = (
        f'CREATE SCHEMA "{out.name}";\n'
        f'CREATE TABLE "{out.name}".{TABLE} ({columns});\n'
        f"\\copy \"{out.name}\".{TABLE} FROM '{prepared}' WITH (FORMAT csv, HEADER true)\n"
    )
    # The password travels in the environment, never on a command line others can read.
    url = urlsplit(_postgres_url())
    env = {**os.environ, "PGPASSWORD": unquote(url.password or "")}
    user = f"{url.username}@" if url.username else ""
    bare = url._replace(netloc=user + url.netloc.rpartition("@")[2])
    command = ["psql", bare.geturl(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1"]
    done = subprocess.run(command, input=script, text=True, capture_output=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
    prepared.unlink()


def collect_postgres(source: Path, out: Path) -> None:
    """The whole table in memory, then polars' own `write_database` (ADBC ingest)."""
    import psycopg

    url = _postgres_url()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{out.name}"')
    frame = pl.scan_parquet(source).collect()
    frame.write_database(f"{out.name}.{TABLE}", url, engine="adbc")


def count_postgres(out: Path) -> int:
    import psycopg

    with psycopg.connect(_postgres_url()) as con:
        row = con.execute(f'SELECT count(*) FROM "{out.name}".{TABLE}').fetchone()
    return int(row[0])  # type: ignore[index]


def postgres_version() -> str:
    """The PostgreSQL server's version, e.g. `15.14`."""
    import psycopg

    with psycopg.connect(_postgres_url()) as con:
        row = con.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0]  # type: ignore[index]


def drop_postgres(out: Path) -> None:
    import psycopg

    with psycopg.connect(_postgres_url(), autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{out.name}" CASCADE')


# ---------------------------------------------------------------------------------------------
# Monthly partitions: the same table as one file per month, in one single-run range backfill
# ---------------------------------------------------------------------------------------------

# The generated sales span these 24 months (`honey_duck.pipeline.generate`: 2024 and 2025).
FIRST_MONTH, LAST_MONTH, END = "2024-01-01", "2025-12-01", "2026-01-01"
PARTITION_COLUMN = "sale_date"
PARTITIONED_EXT = {"csv": "csv", "json": "json", "parquet": "parquet"}


def materialize_range(source: Path, io_manager: object) -> None:
    """Materialize all 24 monthly partitions of `sales_enriched` in one run, as a backfill would.

    The asset is the tests' partitioned shape (BackfillPolicy.single_run, `partition_expr`),
    run with the range tags a single-run backfill carries: one call lands every partition.
    """
    import dagster as dg

    monthly = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, end_date=END)

    @dg.asset(
        name=TABLE,
        partitions_def=monthly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata={"partition_expr": PARTITION_COLUMN},
    )
    def table_monthly() -> pl.LazyFrame:
        return pl.scan_parquet(source)  # the whole range: every month's rows

    tags = {
        "dagster/asset_partition_range_start": FIRST_MONTH,
        "dagster/asset_partition_range_end": LAST_MONTH,
    }
    dg.materialize([table_monthly], resources={"io_manager": io_manager}, tags=tags)


def ours_monthly(fmt: str) -> Run:
    """Our `FileIOManager` writing `fmt`, one file per monthly partition."""

    def run(source: Path, out: Path) -> None:
        from honey_duck.targets.files import FileIOManager

        manager = FileIOManager(format=fmt, base_path=str(out))  # type: ignore[arg-type]
        materialize_range(source, manager)

    return run


def floor_monthly(fmt: str) -> Run:
    """Polars' one-pass partitioned sink: `sink_<fmt>(pl.PartitionBy(key=month))`, same files."""
    ext = PARTITIONED_EXT[fmt]

    def run(source: Path, out: Path) -> None:
        frame = pl.scan_parquet(source)
        sink = {"csv": frame.sink_csv, "json": frame.sink_ndjson, "parquet": frame.sink_parquet}
        month = pl.col(PARTITION_COLUMN).dt.truncate("1mo").alias("month")

        def name(args: pl.io.partition.FileProviderArgs) -> str:  # as ours names them
            return f"{args.partition_keys['month'].item()}.{ext}"

        # Polars 1.44 spells `PartitionByKey(...)` as `PartitionBy(key=...)`; the key is derived,
        # so include_key=False keeps the files to the table's own 15 columns, as ours writes.
        target = pl.PartitionBy(out / TABLE, key=month, include_key=False, file_path_provider=name)
        sink[fmt](target, mkdir=True)

    return run


def count_monthly(fmt: str) -> Count:
    """Rows in every partition file under `out/sales_enriched/`, read by DuckDB or pyarrow."""
    ext = PARTITIONED_EXT[fmt]

    def count(out: Path) -> int:
        files = sorted((out / TABLE).glob(f"*.{ext}"))
        if not files:
            raise FileNotFoundError(f"no {ext} partition files under {out / TABLE}")
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        reader = "read_csv" if fmt == "csv" else "read_json"
        options = "" if fmt == "csv" else ", format='newline_delimited'"
        return _duckdb_count(f"SELECT count(*) FROM {reader}(?{options})", [str(f) for f in files])

    return count


# ---------------------------------------------------------------------------------------------
# Reading back: an independent reader counts the rows that landed
# ---------------------------------------------------------------------------------------------


def _only(out: Path, ext: str) -> Path:
    path = out / f"{TABLE}.{ext}"
    if not path.is_file():
        raise FileNotFoundError(f"{path} was not written")
    return path


def _duckdb_count(query: str, *params: object, database: str = ":memory:") -> int:
    import duckdb

    with duckdb.connect(database, read_only=database != ":memory:") as con:
        return int(con.execute(query, list(params)).fetchone()[0])  # type: ignore[index]


def count_json(out: Path) -> int:
    query = "SELECT count(*) FROM read_json(?, format='newline_delimited')"
    return _duckdb_count(query, str(_only(out, "json")))


def count_csv(out: Path) -> int:
    return _duckdb_count("SELECT count(*) FROM read_csv(?)", str(_only(out, "csv")))


def count_excel(out: Path) -> int:
    import fastexcel

    reader = fastexcel.read_excel(str(_only(out, "xlsx")))
    return sum(reader.load_sheet(name).height for name in reader.sheet_names)


def count_feather(out: Path) -> int:
    import pyarrow.ipc

    with pyarrow.ipc.open_file(_only(out, "feather")) as reader:
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def count_parquet(out: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(_only(out, "parquet")).metadata.num_rows


def count_duckdb(out: Path) -> int:
    database = out / "bench.duckdb"
    if not database.is_file():
        raise FileNotFoundError(f"{database} was not written")
    return _duckdb_count(f"SELECT count(*) FROM main.{TABLE}", database=str(database))


# ---------------------------------------------------------------------------------------------
# Kafka: each measurement writes `sales_enriched` into the topic `<out.name>.sales_enriched`
# ---------------------------------------------------------------------------------------------

KAFKA_KEY = "sale_id"  # the key the project's kafka group gives sales_enriched
KAFKA_NAIVE_CAP = 20_000  # one produce + flush (a broker round trip) per row: ~1 to 3 ms each


def _kafka_bootstrap() -> str:
    from honey_duck.sinks.kafka import BOOTSTRAP

    KAFKA_BOOTSTRAP_VAR = BOOTSTRAP.name

    bootstrap = os.environ.get(KAFKA_BOOTSTRAP_VAR)
    if not bootstrap:
        raise RuntimeError(f"{KAFKA_BOOTSTRAP_VAR} is not set (the runner sets it for its broker)")
    return bootstrap


def _kafka_unavailable() -> str | None:
    from honey_duck.sinks.kafka import BOOTSTRAP

    KAFKA_BOOTSTRAP_VAR = BOOTSTRAP.name
    from honey_duck_dev.services.kafka import find_noida
    from honey_duck_dev.services.lifecycle import ServiceError

    if os.environ.get(KAFKA_BOOTSTRAP_VAR):
        return None
    try:
        find_noida()
    except ServiceError as exc:
        return f"no Kafka broker: set {KAFKA_BOOTSTRAP_VAR} or install noida-db ({exc})"
    return None


def _kafka_topic(out: Path) -> str:
    return f"{out.name}.{TABLE}"


def _kafka_producer_settings(out: Path) -> dict[str, object]:
    """The producer configuration ours uses (idempotent, acks=all, lz4, linger, batch size)."""
    from honey_duck.targets.kafka.target import KafkaConnection, KafkaIOManager

    settings = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=_kafka_bootstrap())
    ).settings()
    return settings.producer(f"bench-{out.name}")


def ours_kafka(source: Path, out: Path) -> None:
    """Our `KafkaIOManager`: a compacted topic replaced in one transaction, keyed by sale_id."""
    import dagster as dg

    from honey_duck.targets.kafka.target import KafkaConnection, KafkaIOManager

    @dg.asset(name=TABLE, metadata={"upsert_keys": [KAFKA_KEY]})
    def table_keyed() -> pl.LazyFrame:
        return pl.scan_parquet(source)

    manager = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=_kafka_bootstrap()),
        topic_prefix=f"{out.name}.",
    )
    dg.materialize([table_keyed], resources={"io_manager": manager}, raise_on_error=True)


def naive_kafka(source: Path, out: Path) -> None:
    """`to_dicts()` → `json.dumps` per row → `produce` + `flush` per row (no transaction)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": _kafka_bootstrap(), "acks": "all"})
    topic = _kafka_topic(out)
    for row in pl.read_parquet(source).to_dicts():
        key = json.dumps({KAFKA_KEY: row[KAFKA_KEY]})
        producer.produce(topic, key=key, value=json.dumps(row, default=str))
        producer.flush()


def _bare_kafka(source: Path, out: Path, headers: dict[str, str] | None) -> None:
    """A bare transactional producer with ours' settings, values serialised by polars in bulk."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = _kafka_topic(out)
    admin = AdminClient({"bootstrap.servers": _kafka_bootstrap()})
    new = NewTopic(
        topic, num_partitions=3, replication_factor=1, config={"cleanup.policy": "compact"}
    )
    admin.create_topics([new])[topic].result(timeout=30)
    producer = Producer(_kafka_producer_settings(out))
    producer.init_transactions(30)
    producer.begin_transaction()
    frame = pl.scan_parquet(source)
    for batch in frame.collect_batches(chunk_size=100_000):
        encoded = batch.select(
            pl.struct(pl.all()).struct.json_encode().alias("value"),
            pl.struct(KAFKA_KEY).struct.json_encode().alias("key"),
        )
        for value, key in zip(encoded["value"].to_list(), encoded["key"].to_list(), strict=True):
            while True:
                try:
                    producer.produce(topic, value=value, key=key, headers=headers)
                    break
                except BufferError:
                    producer.poll(0.05)
    producer.commit_transaction(60)


def floor_kafka(source: Path, out: Path) -> None:
    """The floor: bare values and keys, no headers."""
    _bare_kafka(source, out, None)


def headers_kafka(source: Path, out: Path) -> None:
    """The floor plus the three headers ours sends (asset, partition, run id) on each message."""
    run_id = "00000000-0000-0000-0000-000000000000"
    _bare_kafka(source, out, {"asset": TABLE, "partition": "", "run_id": run_id})


def count_kafka(out: Path) -> int:
    """Live keys of the measurement's topic, read back with a plain read_committed consumer."""
    from honey_duck.targets.kafka.target import KafkaConnection, KafkaIOManager, consume

    settings = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=_kafka_bootstrap())
    ).settings()
    alive: dict[bytes | None, bool] = {}  # the last message of each key: a value, or a tombstone
    for key, value in consume(settings, _kafka_topic(out)):
        alive[key] = value is not None
    return sum(alive.values())


def drop_kafka(out: Path) -> None:
    import contextlib

    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": _kafka_bootstrap()})
    for future in admin.delete_topics([_kafka_topic(out)]).values():
        with contextlib.suppress(Exception):  # a broker that keeps it costs disk, not rows
            future.result(timeout=30)


# ---------------------------------------------------------------------------------------------
# MongoDB: each measurement writes collection `sales_enriched` into a database named after `out`
# ---------------------------------------------------------------------------------------------


def _mongo_url() -> str:
    from honey_duck.sinks.mongo import URL

    MONGO_URL_VAR = URL.name

    url = os.environ.get(MONGO_URL_VAR)
    if not url:
        raise RuntimeError(f"{MONGO_URL_VAR} is not set (the runner sets it for its server)")
    return url


def _mongo_unavailable() -> str | None:
    from honey_duck.sinks.mongo import URL

    MONGO_URL_VAR = URL.name
    from honey_duck_dev.services.lifecycle import ServiceError
    from honey_duck_dev.services.mongo import find_secantus

    if os.environ.get(MONGO_URL_VAR):
        return None
    try:
        find_secantus()
    except ServiceError as exc:
        return f"no MongoDB: set {MONGO_URL_VAR} or install SecantusDB ({exc})"
    return None


def _mongo_collection(out: Path) -> object:
    import pymongo

    return pymongo.MongoClient(_mongo_url())[out.name][TABLE]


def ours_mongo(source: Path, out: Path) -> None:
    """Our `MongoIOManager`: numpy-encoded BSON batches into a staging collection, renamed."""
    from honey_duck.targets.mongo.target import MongoConnection, MongoIOManager

    materialize(
        source, MongoIOManager(connection=MongoConnection(url=_mongo_url()), database=out.name)
    )


def _mongo_dicts(source: Path) -> list[dict]:
    # BSON has no date: the naive code casts it to a datetime first, as pymongo's error asks
    frame = pl.read_parquet(source)
    return frame.with_columns(pl.col(pl.Date).cast(pl.Datetime("ms"))).to_dicts()


def naive_mongo(source: Path, out: Path) -> None:
    _mongo_collection(out).insert_many(_mongo_dicts(source))  # type: ignore[attr-defined]


def insert_one_mongo(source: Path, out: Path) -> None:
    collection = _mongo_collection(out)
    for row in _mongo_dicts(source):
        collection.insert_one(row)  # type: ignore[attr-defined]


def floor_mongo(source: Path, out: Path) -> None:
    import pyarrow.parquet as pq
    from pymongoarrow.api import write

    write(_mongo_collection(out), pq.read_table(source))


def collect_mongo(source: Path, out: Path) -> None:
    from pymongoarrow.api import write

    write(_mongo_collection(out), pl.read_parquet(source).to_arrow())


def count_mongo(out: Path) -> int:
    return int(_mongo_collection(out).count_documents({}))  # type: ignore[attr-defined]


def drop_mongo(out: Path) -> None:
    import pymongo

    with pymongo.MongoClient(_mongo_url()) as client:
        client.drop_database(out.name)


def mongo_version() -> str:
    """The MongoDB version the server reports (SecantusDB answers as a MongoDB release)."""
    import pymongo

    with pymongo.MongoClient(_mongo_url()) as client:
        return str(client.admin.command("buildInfo").get("version"))


# ---------------------------------------------------------------------------------------------
# The registry: one entry per sink
# ---------------------------------------------------------------------------------------------

_TO_DICTS = "read_parquet → to_dicts()"

SINKS: dict[str, Sink] = {
    "json": Sink(
        count_json,
        {
            "ours": Approach('FileIOManager(format="json") via dg.materialize', ours_files("json")),
            "naive": Approach(f"{_TO_DICTS} → json.dumps per row", naive_json),
            "floor": Approach("scan_parquet → sink_ndjson", floor_json),
        },
        collect=Approach("collect() → write_ndjson", collect_json),
    ),
    "csv": Sink(
        count_csv,
        {
            "ours": Approach('FileIOManager(format="csv") via dg.materialize', ours_files("csv")),
            "naive": Approach(f"{_TO_DICTS} → csv.DictWriter per row", naive_csv),
            "floor": Approach("scan_parquet → sink_csv", floor_csv),
        },
        collect=Approach("collect() → write_csv", collect_csv),
    ),
    "excel": Sink(
        count_excel,
        {
            "ours": Approach(
                'FileIOManager(format="excel") via dg.materialize', ours_files("excel")
            ),
            "naive": Approach(f"{_TO_DICTS} → openpyxl append per row", naive_excel, cap=100_000),
            "floor": Approach(
                "scan_parquet batches → xlsxwriter write_row, constant memory", floor_excel
            ),
        },
    ),
    "feather": Sink(
        count_feather,
        {
            "ours": Approach(
                'FileIOManager(format="feather") via dg.materialize', ours_files("feather")
            ),
            "naive": Approach(f"{_TO_DICTS} → pa.Table.from_pylist → write_feather", naive_feather),
            "floor": Approach("scan_parquet → sink_ipc(zstd)", floor_feather),
        },
        collect=Approach("collect() → write_ipc(zstd)", collect_feather),
    ),
    "parquet": Sink(
        count_parquet,
        {
            "ours": Approach(
                'FileIOManager(format="parquet") via dg.materialize', ours_files("parquet")
            ),
            "naive": Approach(
                f"{_TO_DICTS} → pa.Table.from_pylist → pq.write_table", naive_parquet
            ),
            "official": Approach("dagster-polars PolarsParquetIOManager", official_parquet),
            "floor": Approach("scan_parquet → sink_parquet", floor_parquet),
        },
        collect=Approach("collect() → write_parquet", collect_parquet),
    ),
    "duckdb": Sink(
        count_duckdb,
        {
            # 300 to 900 rows/s on the machines measured: 10,000 rows take 11 to 32 s
            "naive": Approach(f"{_TO_DICTS} → executemany INSERT", naive_duckdb, cap=10_000),
            "official": Approach("dagster-duckdb-polars DuckDBPolarsIOManager", official_duckdb),
            "floor": Approach("CREATE TABLE AS SELECT * FROM read_parquet(...)", floor_duckdb),
        },
    ),
    "postgres": Sink(
        count_postgres,
        {
            "ours": Approach("PostgresIOManager via dg.materialize", ours_postgres),
            "naive": Approach("read_parquet → to_pandas → DataFrame.to_sql", naive_postgres),
            "floor": Approach(
                "scan_parquet batches → to_arrow → ADBC adbc_ingest (binary COPY), plain table",
                floor_postgres,
            ),
            "adbc_pyarrow": Approach(
                "pq.ParquetFile batches → ADBC adbc_ingest (binary COPY), plain table",
                adbc_pyarrow_postgres,
            ),
            "copy": Approach(
                "scan_parquet batches → iter_rows → psycopg binary COPY write_row", copy_postgres
            ),
            "psql": Approach("scan_parquet → sink_csv → psql \\copy (CSV)", psql_postgres),
        },
        collect=Approach("collect() → write_database(engine='adbc')", collect_postgres),
        unavailable=_postgres_unavailable,
        cleanup=drop_postgres,
        server="postgres",
        server_version=postgres_version,
    ),
    "csv_monthly": Sink(
        count_monthly("csv"),
        {
            "ours": Approach(
                'FileIOManager(format="csv"), 24 monthly partitions, one single-run range',
                ours_monthly("csv"),
            ),
            "floor": Approach(
                "scan_parquet → sink_csv(pl.PartitionBy(key=month)), one pass",
                floor_monthly("csv"),
            ),
        },
    ),
    "json_monthly": Sink(
        count_monthly("json"),
        {
            "ours": Approach(
                'FileIOManager(format="json"), 24 monthly partitions, one single-run range',
                ours_monthly("json"),
            ),
            "floor": Approach(
                "scan_parquet → sink_ndjson(pl.PartitionBy(key=month)), one pass",
                floor_monthly("json"),
            ),
        },
    ),
    "parquet_monthly": Sink(
        count_monthly("parquet"),
        {
            "ours": Approach(
                'FileIOManager(format="parquet"), 24 monthly partitions, one single-run range',
                ours_monthly("parquet"),
            ),
            "floor": Approach(
                "scan_parquet → sink_parquet(pl.PartitionBy(key=month)), one pass",
                floor_monthly("parquet"),
            ),
        },
    ),
    "kafka": Sink(
        count_kafka,
        {
            "ours": Approach(
                "KafkaIOManager (compacted topic, keyed, one transaction) via dg.materialize",
                ours_kafka,
            ),
            "naive": Approach(
                f"{_TO_DICTS} → json.dumps → produce + flush per row",
                naive_kafka,
                cap=KAFKA_NAIVE_CAP,
            ),
            "floor": Approach(
                "scan_parquet batches → polars json_encode → bare transactional produce",
                floor_kafka,
            ),
            "headers": Approach(
                "the floor, plus ours' three headers (asset, partition, run id) per message",
                headers_kafka,
            ),
        },
        unavailable=_kafka_unavailable,
        cleanup=drop_kafka,
        server="kafka",
    ),
    "mongo": Sink(
        count_mongo,
        {
            "ours": Approach("MongoIOManager via dg.materialize", ours_mongo),
            "naive": Approach(f"{_TO_DICTS} → insert_many", naive_mongo),
            "floor": Approach("pq.read_table → pymongoarrow.api.write", floor_mongo),
            "insert_one": Approach(
                f"{_TO_DICTS} → insert_one per row", insert_one_mongo, cap=2_000
            ),
        },
        collect=Approach("collect() → to_arrow → pymongoarrow.api.write", collect_mongo),
        unavailable=_mongo_unavailable,
        cleanup=drop_mongo,
        server="mongo",
        server_version=mongo_version,
    ),
}

# Every approach name any sink has, the kinds first: what `--approaches` accepts.
APPROACHES: tuple[str, ...] = tuple(
    dict.fromkeys([*KINDS, *(kind for sink in SINKS.values() for kind in sink.approaches)])
)

# Names `--sinks` accepts for several sinks at once.
SINK_GROUPS: dict[str, tuple[str, ...]] = {
    "monthly": tuple(name for name in SINKS if name.endswith("_monthly")),
}


# ---------------------------------------------------------------------------------------------
# Reconciliation checks (`--checks`): a write, then the check of what it wrote, per target
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A write through one of our managers (or an official one) and its reconciliation check.

    The write is timed as the throughput run times its approaches (mostly the same ones); the
    check compares what `readback(out)` reads back (the target's own reader and type table, as
    the asset check opens them) with the write's source.
    """

    sink: str  # the SINKS entry: its server, its row count and its cleanup
    kind: str  # whose manager writes: ours, official, or ours on a stand-in
    write: Approach
    readback: Callable[[Path], object]  # out -> honey_duck.seam.reconcile.Readback
    reader: str  # how the check reads back, for the report
    metadata: dict[str, object] = field(default_factory=dict)  # the asset's, as the check sees it


_CHECKED_FORMATS = ("json", "csv", "feather", "parquet")


def _files_readback(fmt: str) -> Callable[[Path], object]:
    def readback(out: Path) -> object:
        from honey_duck.targets.files import FileIOManager

        return FileIOManager(format=fmt, base_path=str(out)).readback()  # type: ignore[arg-type]

    return readback


def _official_parquet_readback(out: Path) -> object:
    from dagster_polars import PolarsParquetIOManager

    from honey_duck.targets.parquet import readback

    return readback(PolarsParquetIOManager(base_dir=str(out)))


def _official_duckdb_readback(out: Path) -> object:
    from dagster_duckdb_polars import DuckDBPolarsIOManager

    from honey_duck.targets.duckdb import readback

    return readback(DuckDBPolarsIOManager(database=str(out / "bench.duckdb"), schema="main"))


def _local_sql_manager(out: Path) -> object:
    from honey_duck.targets.postgres import PostgresIOManager
    from honey_duck.targets.standin import StandInIOManager

    database = str(out / "bench.duckdb")
    return StandInIOManager.of(PostgresIOManager(), database=database, default_schema="main")


def ours_local_sql(source: Path, out: Path) -> None:
    """Our SQL sink on its embedded DuckDB stand-in (`honey_duck.targets.standin`)."""
    materialize(source, _local_sql_manager(out))


def _local_sql_readback(out: Path) -> object:
    return _local_sql_manager(out).readback()  # type: ignore[attr-defined]


def _postgres_readback(out: Path) -> object:
    from honey_duck.targets.postgres import PostgresIOManager

    return PostgresIOManager.from_url(_postgres_url(), default_schema=out.name).readback()


def _mongo_readback(out: Path) -> object:
    from honey_duck.targets.mongo.target import MongoConnection, MongoIOManager

    return MongoIOManager(
        connection=MongoConnection(url=_mongo_url()), database=out.name
    ).readback()


def _kafka_readback(out: Path) -> object:
    from honey_duck.targets.kafka.target import KafkaConnection, KafkaIOManager

    manager = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=_kafka_bootstrap()),
        topic_prefix=f"{out.name}.",
    )
    return manager.readback()


_OURS_READER = "{}.readback(): the manager's own reader"


def _ours_checked(sink: str, manager: str, readback: Callable[[Path], object]) -> Checked:
    ours = SINKS[sink].approaches["ours"]
    return Checked(sink, "ours", ours, readback, _OURS_READER.format(manager))


CHECKS: dict[str, Checked] = {
    **{fmt: _ours_checked(fmt, "FileIOManager", _files_readback(fmt)) for fmt in _CHECKED_FORMATS},
    "parquet_official": Checked(
        "parquet",
        "official",
        SINKS["parquet"].approaches["official"],
        _official_parquet_readback,
        "honey_duck.targets.parquet.readback: scan_parquet",
    ),
    "duckdb": Checked(
        "duckdb",
        "stand-in",
        Approach("StandInIOManager (embedded DuckDB) via dg.materialize", ours_local_sql),
        _local_sql_readback,
        _OURS_READER.format("StandInIOManager"),
    ),
    "duckdb_official": Checked(
        "duckdb",
        "official",
        SINKS["duckdb"].approaches["official"],
        _official_duckdb_readback,
        "honey_duck.targets.duckdb.readback: duckdb Arrow batches",
    ),
    "postgres": _ours_checked("postgres", "PostgresIOManager", _postgres_readback),
    "mongo": _ours_checked("mongo", "MongoIOManager", _mongo_readback),
    "kafka": Checked(
        "kafka",
        "ours",
        SINKS["kafka"].approaches["ours"],
        _kafka_readback,
        _OURS_READER.format("KafkaIOManager"),
        # the asset's keys, as ours_kafka declares them: the check names example rows by them
        metadata={"upsert_keys": [KAFKA_KEY]},
    ),
}
