"""The Redshift sink: statements checked with sqlglot's Redshift dialect, Parquet staged to a real
S3 server, and the transactional load run against PostgreSQL (`engine="postgres"`)."""

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import exp

from honey_duck import seam
from honey_duck.connections import PostgresConfig, S3Config
from honey_duck.targets.redshift import RedshiftDialect, RedshiftIOManager, RedshiftStaging
from honey_duck.targets.sql.dialect import Table
from honey_duck.targets.sql.target import write
from honey_duck_tests.contract import sql
from honey_duck_tests.contract.runs import MONTHLY, error_of, run
from honey_duck_tests.contract.sql import PostgresProbe, fresh_schema
from honey_duck_tests.contract.suite import LandedContract, ServerContract
from honey_duck_tests.sinks import roundtrip

ROLE = "arn:aws:iam::123456789012:role/honey-duck-copy"


def sales(months: list[int], label: str = "first") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [m * 100 + i for m in months for i in range(3)],
            "d": [date(2024, m, 1 + i) for m in months for i in range(3)],
            "at": [datetime(2024, m, 1, i) for m in months for i in range(3)],
            "amount": pl.Series(
                [Decimal(f"{m}.{i}0") for m in months for i in range(3)], dtype=pl.Decimal(12, 2)
            ),
            "label": [label] * (3 * len(months)),
            "tags": [[f"t{i}"] for _ in months for i in range(3)],
        }
    )


class Recorder:
    """Collects the statements a write would send to Redshift, answering catalog queries."""

    def __init__(self, stored: dict[str, str] | None) -> None:
        self.stored, self.statements, self.rows = stored, [], []

    def execute(self, sql: str, parameters: Any = ()) -> None:
        self.statements.append(sql)
        if "format_type" in sql:
            self.rows = list((self.stored or {}).items())
        elif "key_column_usage" in sql:
            self.rows = [("id",)]  # the stored table's declared primary key
        else:
            self.rows = [(0,)]

    def fetchall(self) -> list[tuple]:
        return self.rows


def plan(
    stored: dict[str, str] | None, settings: seam.WriteSettings, keys: list[str] | None = None
) -> list[str]:
    dialect = RedshiftDialect()
    recorder = Recorder(stored)
    partitions = seam.slice_for(MONTHLY, keys, "d", "t") if keys else None

    def load(cursor: Any, table: Table, frame: pl.LazyFrame, temporary: bool) -> None:
        uri = "s3://honey-duck/staging/0f0f/"
        columns = list(frame.collect_schema())
        cursor.execute(dialect.copy(table, columns, uri, ROLE, temporary))

    frame = sales([1, 2, 3]).lazy()
    write(recorder, dialect, Table("sales", "orders"), frame, settings, partitions, load)
    return recorder.statements


STORED = {
    "id": "bigint",
    "d": "date",
    "at": "timestamp without time zone",
    "amount": "numeric(12,2)",
    "label": "character varying(65535)",
    "tags": "super",
}
PLANS = {
    "replace, new table": (None, seam.WriteSettings(), None),
    "replace, existing table": (STORED, seam.WriteSettings(), None),
    "partition range": (STORED, seam.WriteSettings(), ["2024-01-01", "2024-02-01", "2024-03-01"]),
    "upsert": (STORED, seam.WriteSettings(seam.WriteMode.UPSERT, keys=("id",)), None),
    "append": (STORED, seam.WriteSettings(seam.WriteMode.APPEND), None),
    "upsert, the table has more columns": (
        {**STORED, "note": "character varying(65535)"},
        seam.WriteSettings(
            seam.WriteMode.UPSERT, keys=("id",), schema_policy=seam.SchemaPolicy.EVOLVE
        ),
        None,
    ),
    "evolve": (
        {k: v for k, v in STORED.items() if k != "tags"},
        seam.WriteSettings(schema_policy=seam.SchemaPolicy.EVOLVE),
        None,
    ),
}


@pytest.mark.parametrize("name", PLANS)
def test_every_generated_statement_is_valid_redshift_sql(name: str) -> None:
    statements = plan(*PLANS[name])
    assert statements
    for statement in statements:
        parsed = sqlglot.parse_one(statement, read="redshift")
        assert not isinstance(parsed, exp.Command), f"sqlglot could not parse: {statement}"
        assert parsed.sql(dialect="redshift")


def test_the_plans_say_what_redshift_needs() -> None:
    new = plan(*PLANS["replace, new table"])
    create = next(s for s in new if s.startswith('CREATE TABLE "sales"."_hd_stage_'))
    for column_type in ("bigint", "date", "timestamp without time zone", "numeric(12,2)", "super"):
        assert column_type in create  # typed DDL, no blanket VARCHAR
    copy = next(s for s in new if s.startswith("COPY"))
    assert f"IAM_ROLE '{ROLE}'" in copy and "FORMAT AS PARQUET" in copy
    ranged = plan(*PLANS["partition range"])
    delete = next(s for s in ranged if s.startswith("DELETE"))
    assert delete == 'DELETE FROM "sales"."orders" WHERE "d" >= %s AND "d" < %s'
    upsert = plan(*PLANS["upsert"])
    assert any(s.startswith('DELETE FROM "sales"."orders" USING "_hd_stage_') for s in upsert)
    partial = plan(*PLANS["upsert, the table has more columns"])
    update = next(s for s in partial if s.startswith("UPDATE"))
    assert '"note"' not in update  # a column the data lacks keeps its stored values
    assert any("WHERE NOT EXISTS" in s for s in partial)
    assert not any(s.startswith("DELETE") for s in partial)
    evolve = plan(*PLANS["evolve"])
    assert 'ALTER TABLE "sales"."orders" ADD COLUMN "tags" super' in evolve


def staging_on(s3: Any, bucket: str, max_file_rows: int) -> RedshiftStaging:
    """Staging to `bucket` on the session's S3 server."""
    return RedshiftStaging(
        bucket=bucket,
        s3=S3Config(
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key_id=s3.access_key,
            secret_access_key=s3.secret_key,
        ),
        max_file_rows=max_file_rows,
    )


@pytest.fixture
def redshift(postgres_server: str, s3_server) -> tuple[RedshiftIOManager, str, Any]:
    bucket = s3_server.create_bucket("redshift")
    io = RedshiftIOManager(
        engine="postgres",
        connection=PostgresConfig.from_url(postgres_server),
        staging=staging_on(s3_server, bucket, max_file_rows=1000),
        batch_rows=250,
        default_schema=f"rs_{time.time_ns() % 10**8}",
    )
    return io, bucket, s3_server.client()


def test_staging_writes_bounded_parquet_files_and_cleans_them_up(redshift) -> None:
    io, bucket, client = redshift
    frame = pl.LazyFrame({"id": range(3_500), "v": [str(i) for i in range(3_500)]})
    staging = io.target().staging
    prefix, keys = (staged := staging.stage(frame)).prefix, staged.keys
    try:
        sizes = []
        for key in keys:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            sizes.append(pq.read_table(pa.BufferReader(body)).num_rows)
        assert sizes == [1000, 1000, 1000, 500]
        assert key.startswith(prefix) and prefix.startswith("honey_duck/staging/")
    finally:
        staging.unstage(keys)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_the_transactional_load_round_trips_through_postgres(
    redshift, postgres_server: str
) -> None:
    io, bucket, client = redshift
    schema = io.default_schema
    meta = {"partition_expr": "d", "schema": schema}

    def produce(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        window = context.partition_time_window
        return sales(list(range(window.start.month, window.end.month))).lazy()

    tags = {
        "dagster/asset_partition_range_start": "2024-01-01",
        "dagster/asset_partition_range_end": "2024-03-01",
    }
    seen: dict[str, pl.DataFrame] = {}
    result = run(io, produce, metadata=meta, partitions_def=MONTHLY, tags=tags)
    assert result.success, error_of(result)
    rerun = run(
        io,
        lambda: sales([2], "second").head(1).lazy(),
        metadata=meta,
        partitions_def=MONTHLY,
        partition_key="2024-02-01",
        consume=lambda table: seen.update(table=table),
    )
    assert rerun.success, error_of(rerun)
    with psycopg.connect(postgres_server) as connection:
        rows = connection.execute(
            f'SELECT extract(month FROM d)::int, label, count(*) FROM "{schema}"."table"'
            " GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
        types = dict(connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s",
            [schema],
        ).fetchall())  # fmt: skip
    assert rows == [(1, "first", 3), (2, "second", 1), (3, "first", 3)]
    assert types["amount"] == "numeric" and types["label"] == "character varying"
    assert seen["table"]["tags"].to_list() == [["t0"]]
    assert seen["table"]["amount"].to_list() == [Decimal("2.00")]
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # staging cleaned up


def test_upserts_use_delete_using_and_a_failed_load_keeps_the_old_table(
    redshift, postgres_server: str
) -> None:
    io, bucket, client = redshift
    schema = io.default_schema
    upsert = {"schema": schema, "write_mode": "upsert", "upsert_keys": ["id"]}
    first = pl.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    assert run(io, lambda: first, metadata=upsert).success
    result = run(io, lambda: pl.DataFrame({"id": [2, 3], "v": ["B", "c"]}), metadata=upsert)
    assert result.success, error_of(result)
    too_long = pl.DataFrame({"id": [4], "v": ["x" * 70_000]})  # over VARCHAR(65535)
    refused = run(io, lambda: too_long, metadata=upsert)
    assert "at most 65,535 bytes" in error_of(refused)  # refused before anything is staged
    with psycopg.connect(postgres_server, autocommit=True) as connection:  # one the load breaks
        connection.execute(f'ALTER TABLE "{schema}"."table" ADD CONSTRAINT small CHECK (id < 4)')
    failed = run(io, lambda: pl.DataFrame({"id": [4], "v": ["d"]}), metadata=upsert)
    assert "small" in error_of(failed)
    with psycopg.connect(postgres_server) as connection:
        rows = connection.execute(f'SELECT id, v FROM "{schema}"."table" ORDER BY id').fetchall()
    assert rows == [(1, "a"), (2, "B"), (3, "c")]
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_a_bad_iam_role_is_refused_before_anything_is_staged(s3_server) -> None:
    io = RedshiftIOManager(
        connection=PostgresConfig(user="u"),
        staging=RedshiftStaging(bucket="b-1", iam_role="'; DROP TABLE x; --"),
    )
    with pytest.raises(ValueError, match="iam_role must be an IAM role ARN"):
        io.target().staging.stage(pl.LazyFrame({"a": [1]}))


def test_odd_identifiers_and_an_empty_frame_load(redshift, postgres_server: str) -> None:
    """`%` reaches psycopg doubled and lands single; an empty frame stages nothing."""
    io, bucket, client = redshift
    schema, table = f"{io.default_schema} 100% Odd", 'Sales "%s" 50%'
    frame = pl.DataFrame({"Rate %": [1.5, None], "id": [1, 2]})
    seen: dict[str, pl.DataFrame] = {}
    where = {"schema": schema, "table": table}
    result = run(io, lambda: frame, metadata=where, consume=lambda table: seen.update(t=table))
    assert result.success, error_of(result)
    assert seen["t"].equals(frame)
    quoted = '"' + schema + '"."' + table.replace('"', '""') + '"'
    with psycopg.connect(postgres_server) as connection:
        rows = connection.execute(f'SELECT "Rate %", id FROM {quoted} ORDER BY id').fetchall()
    assert rows == [(1.5, 1), (None, 2)]

    empty = run(io, lambda: frame.clear(), metadata=where)
    assert empty.success, error_of(empty)
    with psycopg.connect(postgres_server) as connection:
        count = connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()
        types = connection.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    assert count == (0,) and types == [("double precision",), ("bigint",)]
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_unstaging_deletes_more_files_than_one_request_takes(redshift) -> None:
    io, bucket, client = redshift
    keys = [f"honey_duck/staging/many/part-{i:05d}.parquet" for i in range(1_005)]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"")
    io.target().staging.unstage(keys)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_identifiers_are_checked_against_the_engine_actually_used(redshift) -> None:
    """PostgreSQL keeps 63 bytes of a name (Redshift 127): a longer one is refused, not cut."""
    io, _, _ = redshift
    long_name = "c" * 64
    result = run(io, lambda: pl.DataFrame(schema={long_name: pl.Int64}), metadata={"schema": "x"})
    assert not result.success
    assert "1 to 63 bytes" in error_of(result)
    assert RedshiftDialect().quote("c" * 127)  # real Redshift still takes 127 bytes


def test_reads_come_back_with_the_documented_types(redshift) -> None:
    """Narrow ints and floats keep their width; empty tables and all-null columns keep types."""
    io, _, _ = redshift
    frame = pl.DataFrame(
        {
            "small": pl.Series([1, None], dtype=pl.Int16),
            "int": pl.Series([2, 3], dtype=pl.Int32),
            "real": pl.Series([1.5, None], dtype=pl.Float32),
            "nothing": pl.Series([None, None], dtype=pl.Date),
            "at": [datetime(2024, 1, 1), None],
            "amount": pl.Series([Decimal("1.10"), None], dtype=pl.Decimal(12, 2)),
            "label": ["a", None],
            "blob": [b"\x00\xff", None],
        }
    )
    seen: dict[str, pl.DataFrame] = {}
    for data in (frame, frame.clear()):
        seen["in"] = data
        result = run(
            io,
            lambda: seen["in"],
            metadata={"schema": io.default_schema},
            consume=lambda table: seen.update(out=table),
        )
        assert result.success, error_of(result)
        assert seen["out"].schema == frame.schema
        assert seen["out"].equals(data)


def test_a_replace_keeps_the_declared_primary_key(redshift, postgres_server: str) -> None:
    io, _, _ = redshift
    schema = io.default_schema
    upsert = {"schema": schema, "write_mode": "upsert", "upsert_keys": ["id"]}
    assert run(io, lambda: pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), metadata=upsert).success
    for _ in range(2):
        result = run(
            io, lambda: pl.DataFrame({"id": [2, 3], "v": ["B", "c"]}), metadata={"schema": schema}
        )
        assert result.success, error_of(result)
        with psycopg.connect(postgres_server) as connection:
            keys = connection.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = to_regclass(%s)",
                [f'"{schema}"."table"'],
            ).fetchall()
        assert keys == [("table_pkey", "PRIMARY KEY (id)")]
    again = run(io, lambda: pl.DataFrame({"id": [3, 4], "v": ["C", "d"]}), metadata=upsert)
    assert again.success, error_of(again)


def test_staged_files_of_a_killed_writer_are_swept_when_stale(redshift) -> None:
    """Leftovers older than `stale_after_hours` go at the start of a load; fresh ones stay."""
    io, bucket, client = redshift
    leftover = "honey_duck/staging/0123456789abcdef0123456789abcdef/part-00000.parquet"
    foreign = "honey_duck/staging/notes.txt"  # not in staging's layout: never ours to delete
    for key in (leftover, foreign):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    staging = io.target().staging
    assert staging.sweep() == []  # fresh: a writer may still be loading it
    later = datetime.now(UTC) + timedelta(hours=6, minutes=1)
    assert staging.sweep(now=later) == [leftover]
    client.put_object(Bucket=bucket, Key=leftover, Body=b"x")
    time.sleep(1.1)
    quick = RedshiftIOManager(
        engine="postgres",
        connection=io.connection,
        # one second: the leftover above is older
        staging=io.staging.model_copy(update={"stale_after_hours": 1 / 3600}),
        default_schema=io.default_schema,
    )
    result = run(quick, lambda: pl.DataFrame({"id": [1]}), metadata={"schema": io.default_schema})
    assert result.success, error_of(result)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [o["Key"] for o in listed] == [foreign]


def test_a_dev_url_with_an_escaped_at_sign_in_the_password_reaches_the_server(
    s3_server, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The redshift group of `dev` connects with `p%40ss` in its URL, to a server that checks."""
    from urllib.parse import quote

    from honey_duck import environments, sinks
    from honey_duck.sinks import redshift as redshift_sink
    from honey_duck_dev.services.postgres import Postgres

    password = "p@ss:w/rd%40"
    with Postgres.start() as server, psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE hd_at LOGIN PASSWORD '{password}'")  # a literal: DDL
        admin.execute("GRANT CREATE ON DATABASE postgres TO hd_at")
        hba = admin.execute("SHOW hba_file").fetchone()[0]
        admin.execute(  # this role must give its password; everyone else stays trusted
            "COPY (VALUES ('host all hd_at 127.0.0.1/32 scram-sha-256'),"
            f" ('host all all 127.0.0.1/32 trust'), ('local all all trust')) TO '{hba}'"
        )
        admin.execute("SELECT pg_reload_conf()")
        base = f"127.0.0.1:{server.port}/postgres"
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"postgresql://hd_at:wrong@{base}").close()
        bucket = s3_server.create_bucket("redshift")
        settings = {
            sinks.postgres.URL.name: f"postgresql://hd_at:{quote(password, safe='')}@{base}",
            sinks._files.BUCKET.name: bucket,
            **s3_server.env(),
        }
        for name, value in s3_server.env().items():
            monkeypatch.setenv(name, value)
        env = environments.environment("dev", home=tmp_path, variables=settings)
        io = redshift_sink.dev(env)
        result = run(io, lambda: pl.DataFrame({"id": [1, 2]}), metadata={"schema": "at"})
        assert result.success, error_of(result)
        owner = admin.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'at'").fetchone()
        assert owner == ("hd_at",)


def test_psycopg_rows_are_typed_from_the_stored_columns(redshift) -> None:
    """engine='redshift' reads Python rows over psycopg: the catalog types them, even empty."""
    io, bucket, _ = redshift
    schema = io.default_schema
    frame = pl.DataFrame(
        {
            "small": pl.Series([1, None], dtype=pl.Int16),
            "real": pl.Series([1.5, None], dtype=pl.Float32),
            "nothing": pl.Series([None, None], dtype=pl.Date),
            "amount": pl.Series([Decimal("1.10"), None], dtype=pl.Decimal(12, 2)),
            "at": pl.Series([datetime(2024, 1, 1), None]).dt.replace_time_zone("UTC"),
        }
    )
    on_redshift = RedshiftIOManager(
        engine="redshift",
        connection=io.connection,
        staging=RedshiftStaging(iam_role=ROLE, bucket=bucket),
    )
    written: dict[str, pl.DataFrame] = {}
    for data in (frame, frame.clear()):
        written["frame"] = data
        assert run(io, lambda: written["frame"], metadata={"schema": schema}).success
        with on_redshift.target().session() as session:
            back = session.read(Table(schema, "table"), None, None)
        assert isinstance(back, pl.DataFrame)
        assert back.schema == frame.schema and back.equals(data)


class RedshiftProbe(PostgresProbe):
    """Redshift's transactional load on PostgreSQL (`engine="postgres"`), its Parquet staged
    to the session's S3 server: what a write leaves behind includes staged objects."""

    def __init__(self, url: str, schema: str, s3: Any) -> None:
        self.bucket, self.client = s3.create_bucket("redshift"), s3.client()
        staging = staging_on(s3, self.bucket, max_file_rows=200_000)

        def build(connection: PostgresConfig, **config: Any) -> RedshiftIOManager:
            return RedshiftIOManager(
                engine="postgres",
                connection=connection,
                staging=staging,
                default_schema=schema,
                **config,
            )

        super().__init__(url, schema, word="redshift", build=build)

    def leftovers(self) -> list[str]:
        staged = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return super().leftovers() + [o["Key"] for o in staged]


def typed_frame() -> pl.DataFrame:
    """Every type the Redshift type map covers, as its reader types them."""
    return pl.DataFrame(
        {
            "id": [1, 2, 3],
            "small": pl.Series([1, None, -2], dtype=pl.Int16),
            "int": pl.Series([2, 3, None], dtype=pl.Int32),
            "real": pl.Series([1.5, None, -0.0], dtype=pl.Float32),
            "nothing": pl.Series([None, None, None], dtype=pl.Date),
            "day": [date(2024, 1, 2), None, date(1999, 12, 31)],
            "at": [datetime(2024, 1, 1), None, datetime(2000, 1, 1, 0, 0, 0, 1)],
            "amount": pl.Series([Decimal("1.10"), None, Decimal("-0.01")], dtype=pl.Decimal(12, 2)),
            "label": ['Zoë "the" artist, Jr.', None, ""],
            "blob": [b"\x00\xff", None, b""],
            "tags": [["a", "b"], None, []],
        }
    )


class TestRedshift(ServerContract, LandedContract):
    """The contract on Redshift's load as it runs here (on PostgreSQL, staging to S3)."""

    word = "redshift"
    typed_frame = staticmethod(typed_frame)
    # no list (SUPER is JSON, which takes its type from the values and reads eagerly) and no
    # duration (it comes back as microseconds, the README's type table)
    lazy_frame = staticmethod(lambda n: sql.lazy_frame(n, lists=False).drop("took"))

    @pytest.fixture
    def probe(self, request: pytest.FixtureRequest, postgres_server: str, s3_server: Any) -> Any:
        return RedshiftProbe(postgres_server, fresh_schema(request), s3_server)

    def refused(self, probe: Any, frame: pl.DataFrame) -> dict[str, str]:
        """Text holding NUL (PostgreSQL underneath), and the declared refusals."""
        nul = roundtrip.holds_nul(frame)
        if nul is not None:
            return {nul: "NUL"}
        return super().refused(probe, frame)

    def expected(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Redshift keeps durations as microseconds (the README's type table)."""
        return frame.with_columns(
            seam.column(c).dt.total_microseconds()
            for c, t in frame.schema.items()
            if t == pl.Duration
        )
