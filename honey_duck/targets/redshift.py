"""The Redshift sink: Parquet staged to S3 in bounded files, COPY into staging, one transaction.

The transactional part (staging, swap, delete of the partition slice, upsert) is the shared SQL
write of `honey_duck.targets.sql.session`. `engine="postgres"` runs that same write against a
PostgreSQL server, bulk-loading the staged Parquet over ADBC instead of `COPY ... FROM 's3://...'`,
which is how the tests exercise it without Redshift (see the README for what that leaves
untested).
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
from pydantic import Field

from honey_duck import seam
from honey_duck.connections import PostgresConfig, S3Config
from honey_duck.seam import Landing, Target
from honey_duck.seam.faults import connect_failed
from honey_duck.targets.postgres import (
    TRANSIENT_STATES,
    PostgresDialect,
    PostgresTarget,
    adbc_transient,
    ingest,
)
from honey_duck.targets.postgres import TYPES as POSTGRES_TYPES
from honey_duck.targets.sql.dialect import Cursor, Dialect, Table, json_text, parse_type, widen
from honey_duck.targets.sql.session import Streamer, committing
from honey_duck.targets.sql.target import SqlIOManager, SqlTarget, nul_refusals

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX = re.compile(r"^[\w./-]*$")

# PostgreSQL's names, except where Redshift has no such type or a different one.
_SCALARS: dict[type[pl.DataType], str] = {
    **POSTGRES_TYPES,
    pl.Duration: "bigint",  # microseconds: Redshift cannot load intervals from Parquet
    **dict.fromkeys([pl.String, pl.Categorical, pl.Enum, pl.Null], "character varying(65535)"),
    pl.Binary: "varbyte(1024000)",
}
_NOT_CANONICAL = {
    pl.Int8, pl.UInt8, pl.UInt16, pl.UInt32, pl.Duration, pl.Categorical, pl.Enum, pl.Null
}  # fmt: skip


class RedshiftDialect(PostgresDialect):
    """Redshift: PostgreSQL's catalog and quoting, its own types, DELETE USING for upserts."""

    name = "Redshift"
    max_identifier = 127

    def param(self, index: int) -> str:
        return "%s"  # psycopg's placeholder; statements run through psycopg on both engines

    def column_type(self, dtype: pl.DataType) -> str:
        if isinstance(dtype, pl.Struct | pl.List | pl.Array):
            return "super"
        if isinstance(dtype, pl.Decimal):
            if dtype.precision and dtype.precision > 38:
                raise ValueError(f"Redshift decimals hold at most 38 digits, not {dtype}")
            return f"numeric({dtype.precision or 38},{dtype.scale})"
        if isinstance(dtype, pl.Datetime):
            return f"timestamp {'with' if dtype.time_zone else 'without'} time zone"
        sql_type = _SCALARS.get(dtype.base_type())
        if sql_type is None:
            raise ValueError(f"Redshift has no type for polars {dtype}")
        return sql_type

    def polars_type(self, sql_type: str) -> pl.DataType:
        if sql_type.startswith("varbyte"):
            return pl.Binary()
        return parse_type(
            sql_type, {t: d() for d, t in _SCALARS.items() if d not in _NOT_CANONICAL}
        )

    def wire(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        casts = []
        for name, dtype in frame.collect_schema().items():
            if isinstance(dtype, pl.Duration):
                casts.append(seam.column(name).dt.total_microseconds())
            elif (cast := widen(name, dtype)) is not None:
                casts.append(cast)
        return frame.with_columns(casts) if casts else frame

    def read_column(self, name: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        col = self.quote(name)
        if sql_type == "super":
            return f"JSON_SERIALIZE({col})", pl.Struct({})
        if sql_type.startswith("numeric"):
            return col, self.polars_type(sql_type)
        return col, None

    def quote(self, identifier: str) -> str:
        # Statements run through psycopg, which reads `%` as a placeholder: `%%` is one `%`.
        # The IO manager's cursor always passes parameters, so psycopg always un-doubles it.
        return super().quote(identifier).replace("%", "%%")

    def upsert_from(
        self,
        target: Table,
        source: str,
        columns: Sequence[str],
        keys: Sequence[str],
        partial: bool = False,
    ) -> list[str]:
        match = " AND ".join(
            f"{self.table(target)}.{self.quote(k)} = {source}.{self.quote(k)}" for k in keys
        )
        if not partial:  # every column comes from the data: replace matched rows whole
            return [
                f"DELETE FROM {self.table(target)} USING {source} WHERE {match}",
                self.insert_from(target, source, columns),
            ]
        # The table has columns the data lacks: update matched rows in place, so those keep
        # their stored values, then insert the rows whose keys are new.
        updates = ", ".join(
            f"{self.quote(c)} = {source}.{self.quote(c)}" for c in columns if c not in keys
        )
        names = ", ".join(self.quote(c) for c in columns)
        statements = []
        if updates:
            statements.append(
                f"UPDATE {self.table(target)} SET {updates} FROM {source} WHERE {match}"
            )
        statements.append(
            f"INSERT INTO {self.table(target)} ({names}) SELECT {names} FROM {source}"
            f" WHERE NOT EXISTS (SELECT 1 FROM {self.table(target)} WHERE {match})"
        )
        return statements

    def lift_definitions(self, cursor: Cursor, table: Table) -> tuple[bool, list[str]]:
        # Redshift has no indexes, and enforces no key, but its planner uses a declared primary
        # key: keep that one (information_schema is what both Redshift and PostgreSQL serve).
        cursor.execute(
            "SELECT k.column_name FROM information_schema.table_constraints c"
            " JOIN information_schema.key_column_usage k"
            " ON k.constraint_schema = c.constraint_schema"
            " AND k.constraint_name = c.constraint_name AND k.table_name = c.table_name"
            f" WHERE c.table_schema = {self.param(1)} AND c.table_name = {self.param(2)}"
            " AND c.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position",
            [table.schema, table.name],
        )
        keys = [row[0] for row in cursor.fetchall()]
        return bool(keys), [self.add_primary_key(table, keys)] if keys else []

    def has_unique_key(self, cursor: Cursor, table: Table, keys: Any) -> bool:
        return True  # DELETE USING + INSERT needs no unique index (Redshift enforces none)

    def copy(
        self, table: Table, columns: Sequence[str], uri: str, role: str, temporary: bool
    ) -> str:
        """`COPY ... FORMAT AS PARQUET` from a staged S3 prefix, authorised by an IAM role."""
        name = self.quote(table.name) if temporary else self.table(table)
        names = ", ".join(self.quote(c) for c in columns)
        # COPY takes no bind parameters: the URI and role are validated, then quoted.
        return (
            f"COPY {name} ({names}) FROM '{uri}' IAM_ROLE '{role}' FORMAT AS PARQUET"
            " SERIALIZETOJSON"
        )


class RedshiftOnPostgresDialect(RedshiftDialect):
    """Redshift's statements on a PostgreSQL server: only the types Redshift alone has differ."""

    name = "Redshift (on PostgreSQL)"
    max_identifier = 63  # the server is PostgreSQL: it would silently cut a longer name

    def column_type(self, dtype: pl.DataType) -> str:
        sql_type = super().column_type(dtype)
        return {"super": "jsonb", "varbyte(1024000)": "bytea"}.get(sql_type, sql_type)

    def polars_type(self, sql_type: str) -> pl.DataType:
        return pl.Binary() if sql_type == "bytea" else super().polars_type(sql_type)

    def quote(self, identifier: str) -> str:
        return Dialect.quote(self, identifier)  # ADBC binds `$n`: a `%` is just a `%`

    def param(self, index: int) -> str:
        return f"${index}"  # statements run through ADBC on PostgreSQL

    def read_column(self, name: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        if sql_type == "jsonb":
            return f"{self.quote(name)}::text", pl.Struct({})
        if sql_type.startswith("numeric"):  # ADBC hands NUMERIC over as text
            return f"{self.quote(name)}::text", self.polars_type(sql_type)
        return super().read_column(name, sql_type)


class RedshiftTarget(SqlTarget):
    """A Redshift cluster or workgroup: Parquet staged to S3, COPY, swap in one transaction."""

    word = "redshift"

    def __init__(self, config: RedshiftIOManager) -> None:
        super().__init__(config.default_schema)
        self.c = config
        self.connection = config.connection

    def dialect(self) -> Dialect:
        return RedshiftOnPostgresDialect() if self.c.engine == "postgres" else RedshiftDialect()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        if self.c.engine == "postgres":
            # ADBC runs the statements and bulk-loads the staged Arrow on one connection, so
            # the load stays inside the write's one transaction.
            with PostgresTarget(self.connection, self.default_schema, self.c.batch_rows)\
                    .transaction() as cursor:  # fmt: skip
                yield cursor
            return
        import psycopg

        c = self.connection
        try:
            connection = psycopg.connect(
                host=c.host,
                port=c.port,
                user=c.user,
                password=c.password,
                dbname=c.database,
                application_name="honey_duck",
                connect_timeout=c.connect_timeout,
            )
        except Exception as exc:
            raise connect_failed(self.c.engine, c.where(), exc, TRANSIENT_STATES) from None
        with committing(connection, connection.cursor()) as cursor:
            yield _BoundCursor(cursor)

    # -- staging ----------------------------------------------------------------------------

    def _check_names(self) -> None:
        if not BUCKET.match(self.c.s3_bucket) or not PREFIX.match(self.c.s3_prefix):
            raise ValueError(f"s3_bucket {self.c.s3_bucket!r} or s3_prefix is not a plain S3 name")
        if self.c.engine == "redshift" and not ROLE_ARN.match(self.c.iam_role):
            raise ValueError(
                "iam_role must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )

    def stage(self, frame: pl.LazyFrame) -> tuple[str, list[str]]:
        """Write `frame` as Parquet files of at most `max_file_rows` rows under one new prefix."""
        self._check_names()
        prefix = f"{self.c.s3_prefix.strip('/')}/{uuid.uuid4().hex}/"
        s3, keys = self.c.s3.client(), []
        with tempfile.TemporaryDirectory(prefix="honey_duck_stage_") as folder:
            writer, path, rows = None, "", 0

            def publish() -> None:
                key = f"{prefix}part-{len(keys):05d}.parquet"
                s3.upload_file(path, self.c.s3_bucket, key)
                keys.append(key)
                os.remove(path)

            try:
                for batch in seam.iter_batches(frame, min(self.c.batch_rows, self.c.max_file_rows)):
                    table = batch.to_arrow()
                    if writer is None:
                        path = os.path.join(folder, f"part-{len(keys):05d}.parquet")
                        writer, rows = pq.ParquetWriter(path, table.schema), 0
                    writer.write_table(table)
                    rows += table.num_rows
                    if rows >= self.c.max_file_rows:
                        writer.close()
                        writer = None
                        publish()
                if writer is not None:
                    writer.close()
                    writer = None
                    publish()
            except BaseException:
                if writer is not None:
                    writer.close()
                with suppress(Exception):  # the staging error is the one to report
                    self.unstage(keys)
                raise
        return prefix, keys

    def unstage(self, keys: Sequence[str]) -> None:
        """Delete staged files, 1,000 per request (S3's limit); raise if any stays."""
        s3 = self.c.s3.client()
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            answer = s3.delete_objects(Bucket=self.c.s3_bucket, Delete={"Objects": chunk})
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"could not delete {len(errors)} staged file(s) in s3://{self.c.s3_bucket},"
                    f" e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')};"
                    " delete them by hand or with a lifecycle rule on the staging prefix"
                )

    def sweep(self, now: datetime | None = None) -> list[str]:
        """Delete staged files older than `stale_after_hours` (a killed writer's); their keys.

        Only keys in staging's own layout (`<prefix>/<32 hex>/part-NNNNN.parquet`) are touched,
        so a prefix shared with other files loses nothing else.
        """
        self._check_names()
        base = self.c.s3_prefix.strip("/")
        layout = re.compile(rf"^{re.escape(base)}/[0-9a-f]{{32}}/part-\d{{5}}\.parquet$")
        cutoff = (now or datetime.now(UTC)) - timedelta(hours=self.c.stale_after_hours)
        s3, stale = self.c.s3.client(), []
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.c.s3_bucket, Prefix=f"{base}/"
        )
        for page in pages:
            for item in page.get("Contents", []):
                if item["LastModified"] < cutoff and layout.match(item["Key"]):
                    stale.append(item["Key"])
        if stale:
            self.unstage(stale)
        return stale

    def load(self, cursor: Cursor, table: Table, frame: pl.LazyFrame, temporary: bool) -> None:
        columns = list(frame.collect_schema())
        try:
            self.sweep()
        except Exception as exc:  # a sweep is housekeeping: the next load tries again
            dg.get_dagster_logger().warning(f"redshift: could not sweep stale staging: {exc}")
        prefix, keys = self.stage(frame)
        if not keys:  # no rows: nothing staged, and COPY of an empty prefix is an error
            return
        try:
            if self.c.engine == "redshift":
                uri = f"s3://{self.c.s3_bucket}/{prefix}"
                statement = RedshiftDialect().copy(table, columns, uri, self.c.iam_role, temporary)
                cursor.execute(statement)
            else:
                self._ingest_into_postgres(cursor, table, keys, temporary)
        except BaseException:
            with suppress(Exception):  # the load's error is the one to report (and retry)
                self.unstage(keys)
            raise
        try:
            self.unstage(keys)
        except Exception as exc:  # the rows are loaded: leftover files must not undo that
            dg.get_dagster_logger().warning(f"redshift: staged files were left behind: {exc}")

    def _ingest_into_postgres(
        self, cursor: Any, table: Table, keys: list[str], temporary: bool
    ) -> None:
        """What Redshift's COPY does, done by ADBC: the staged Parquet, in bulk (binary COPY)."""
        urls = [f"s3://{self.c.s3_bucket}/{key}" for key in keys]
        staged = pl.scan_parquet(urls, storage_options=self.c.s3.polars_options())
        # SUPER's stand-in is jsonb, whose binary COPY form is a version byte (1) and the text.
        frame = staged.with_columns(
            ("\x01" + json_text(name, dtype)).alias(name)
            for name, dtype in staged.collect_schema().items()
            if isinstance(dtype, pl.Struct | pl.List | pl.Array)
        )
        ingest(cursor, table, frame, self.c.batch_rows, temporary)

    # -- reading ----------------------------------------------------------------------------

    def fetch(
        self, cursor: Cursor, sql: str, params: list[Any], schema: Mapping[str, pl.DataType]
    ) -> pl.DataFrame:
        cursor.execute(sql, params)
        if self.c.engine == "postgres":
            return pl.from_arrow(cursor.fetch_arrow_table())  # type: ignore[attr-defined,return-value]
        # psycopg hands over Python values: the stored column types type them, so an Int16
        # stays Int16 and an empty or all-null column keeps its type.
        return pl.DataFrame(cursor.fetchall(), schema=dict(schema), orient="row")

    def landing(self, dtype: pl.DataType) -> Landing:
        if isinstance(dtype, pl.Duration):  # Redshift cannot load intervals from Parquet
            return Landing(pl.Int64(), lambda e: e.dt.total_microseconds(), "microseconds")
        return super().landing(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        server = "Redshift" if self.c.engine == "redshift" else "PostgreSQL"
        return super().refusals(schema) + nul_refusals(schema, server)

    def streamer(self) -> Streamer | None:
        if self.c.engine != "postgres":
            return None  # psycopg hands over Python rows: nothing to stream as Arrow
        return PostgresTarget(self.connection, self.default_schema, self.c.batch_rows).stream

    def transient(self, exc: BaseException) -> bool:
        import psycopg

        if super().transient(exc) or adbc_transient(exc):
            return True
        state = getattr(exc, "sqlstate", None) or ""
        return isinstance(exc, psycopg.OperationalError) or state.startswith(("40001", "40P01"))

    def uri(self, location: Table, partitions: Any = None) -> str:
        c = self.connection
        return f"redshift://{c.host}:{c.port}/{c.database}?table={location}"

    def secrets(self) -> Sequence[str | None]:
        return [*self.connection.secrets(), *self.c.s3.secrets()]


class RedshiftIOManager(SqlIOManager):
    """Writes polars frames to Redshift: Parquet staged to S3, COPY, swap in one transaction."""

    connection: PostgresConfig = Field(
        default_factory=PostgresConfig,
        description="The cluster or workgroup endpoint (Redshift speaks PostgreSQL's protocol;"
        " its port is usually 5439).",
    )
    iam_role: str = Field(default="", description="IAM role ARN that COPY reads S3 with.")
    s3_bucket: str = Field(default="", description="Bucket for staged Parquet files.")
    s3_prefix: str = Field(default="honey_duck/staging", description="Key prefix for staging.")
    s3: S3Config = Field(
        default_factory=S3Config, description="Endpoint and keys of the staging bucket."
    )
    max_file_rows: int = Field(default=1_000_000, description="Rows per staged Parquet file.")
    stale_after_hours: float = Field(
        default=6.0,
        description="Staged files older than this (left by a killed writer) are deleted at the"
        " start of each load.",
    )
    engine: Literal["redshift", "postgres"] = Field(
        default="redshift",
        description="`postgres` runs the same load against PostgreSQL (tests, demos).",
    )

    @classmethod
    def target_class(cls) -> type[Target]:
        return RedshiftTarget

    def target(self) -> RedshiftTarget:
        return RedshiftTarget(self)


class _BoundCursor:
    """A psycopg cursor that always passes parameters, so `%%` in identifiers reads as `%`."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql, list(parameters))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)
