"""The Redshift target and its IO manager: Parquet staged to S3, COPY into a staging table, the
family's transactional write (`honey_duck.targets.sql.session`) around it.

`engine="postgres"` runs that same write against a PostgreSQL server, bulk-loading the staged
Parquet over ADBC instead of `COPY ... FROM 's3://...'`, which is how the tests exercise it
without Redshift (see the README for what that leaves untested).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Literal

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck.connections import PostgresConfig
from honey_duck.seam import Landing, Target
from honey_duck.seam.faults import connect_failed
from honey_duck.targets.postgres import TRANSIENT_STATES, PostgresTarget, adbc_transient, ingest
from honey_duck.targets.redshift.dialect import RedshiftDialect, RedshiftOnPostgresDialect
from honey_duck.targets.redshift.staging import RedshiftStaging, Staging
from honey_duck.targets.sql.dialect import Cursor, Dialect, Table, json_text
from honey_duck.targets.sql.session import Streamer, committing
from honey_duck.targets.sql.target import SqlIOManager, SqlTarget

Engine = Literal["redshift", "postgres"]


class RedshiftTarget(SqlTarget):
    """A Redshift cluster or workgroup: Parquet staged to S3, COPY, swap in one transaction."""

    word = "redshift"
    case_folding = "Redshift (it folds names to lower case)"

    def __init__(
        self,
        connection: PostgresConfig,
        staging: RedshiftStaging,
        *,
        engine: Engine = "redshift",
        default_schema: str = "public",
        batch_rows: int = 100_000,
    ) -> None:
        super().__init__(default_schema)
        self.connection, self.engine, self.batch_rows = connection, engine, batch_rows
        self.staging = Staging(staging, batch_rows, needs_role=engine == "redshift")

    def dialect(self) -> Dialect:
        return RedshiftOnPostgresDialect() if self.engine == "postgres" else RedshiftDialect()

    def _postgres(self) -> PostgresTarget:
        """The PostgreSQL server that `engine="postgres"` runs the statements on."""
        return PostgresTarget(self.connection, self.default_schema, self.batch_rows)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        if self.engine == "postgres":
            # ADBC runs the statements and bulk-loads the staged Arrow on one connection, so
            # the load stays inside the write's one transaction.
            with self._postgres().transaction() as cursor:
                yield cursor
            return
        import psycopg

        config = self.connection
        try:
            connection = psycopg.connect(
                host=config.host,
                port=config.port,
                user=config.user,
                password=config.password,
                dbname=config.database,
                application_name="honey_duck",
                connect_timeout=config.connect_timeout,
            )
        except Exception as exc:
            raise connect_failed(self.engine, config.where(), exc, TRANSIENT_STATES) from None
        with committing(connection, connection.cursor()) as cursor:
            yield _BoundCursor(cursor)

    # -- loading ----------------------------------------------------------------------------

    def load(self, cursor: Cursor, table: Table, frame: pl.LazyFrame, temporary: bool) -> None:
        columns = list(frame.collect_schema())
        try:
            self.staging.sweep()
        except Exception as exc:  # a sweep is housekeeping: the next load tries again
            dg.get_dagster_logger().warning(f"redshift: could not sweep stale staging: {exc}")
        staged = self.staging.stage(frame)
        if not staged.keys:  # no rows: nothing staged, and COPY of an empty prefix is an error
            return
        try:
            if self.engine == "redshift":
                role = self.staging.config.iam_role
                uri = self.staging.uri(staged.prefix)
                cursor.execute(RedshiftDialect().copy(table, columns, uri, role, temporary))
            else:
                self._ingest_into_postgres(cursor, table, staged.keys, temporary)
        except BaseException:
            with suppress(Exception):  # the load's error is the one to report (and retry)
                self.staging.unstage(staged.keys)
            raise
        try:
            self.staging.unstage(staged.keys)
        except Exception as exc:  # the rows are loaded: leftover files must not undo that
            dg.get_dagster_logger().warning(f"redshift: staged files were left behind: {exc}")

    def _ingest_into_postgres(
        self, cursor: Cursor, table: Table, keys: list[str], temporary: bool
    ) -> None:
        """What Redshift's COPY does, done by ADBC: the staged Parquet, in bulk (binary COPY)."""
        urls = [self.staging.uri(key) for key in keys]
        options = self.staging.config.s3.polars_options()
        staged = pl.scan_parquet(urls, storage_options=options)
        # SUPER's stand-in is jsonb, whose binary COPY form is a version byte (1) and the text.
        frame = staged.with_columns(
            ("\x01" + json_text(name, dtype)).alias(name)
            for name, dtype in staged.collect_schema().items()
            if dtype.is_nested()
        )
        ingest(cursor, table, frame, self.batch_rows, temporary)

    # -- reading ----------------------------------------------------------------------------

    def fetch(
        self, cursor: Cursor, sql: str, params: list[Any], schema: Mapping[str, pl.DataType]
    ) -> pl.DataFrame:
        cursor.execute(sql, params)
        if self.engine == "postgres":
            return pl.from_arrow(cursor.fetch_arrow_table())  # type: ignore[attr-defined,return-value]
        # psycopg hands over Python values: the stored column types type them, so an Int16
        # stays Int16 and an empty or all-null column keeps its type.
        return pl.DataFrame(cursor.fetchall(), schema=dict(schema), orient="row")

    def streamer(self) -> Streamer | None:
        if self.engine != "postgres":
            return None  # psycopg hands over Python rows: nothing to stream as Arrow
        return self._postgres().stream

    # -- the seam ---------------------------------------------------------------------------

    def landing(self, dtype: pl.DataType) -> Landing:
        if isinstance(dtype, pl.Duration):  # Redshift cannot load intervals from Parquet
            return Landing(pl.Int64(), lambda e: e.dt.total_microseconds(), "microseconds")
        return super().landing(dtype)

    def transient(self, exc: BaseException) -> bool:
        import psycopg

        if super().transient(exc) or adbc_transient(exc):
            return True
        state = getattr(exc, "sqlstate", None) or ""
        return isinstance(exc, psycopg.OperationalError) or state.startswith(("40001", "40P01"))

    def uri(self, location: Table, partitions: Any = None) -> str:
        config = self.connection
        return f"redshift://{config.host}:{config.port}/{config.database}?table={location}"

    def secrets(self) -> Sequence[str | None]:
        return [*self.connection.secrets(), *self.staging.config.s3.secrets()]


class RedshiftIOManager(SqlIOManager):
    """Writes polars frames to Redshift: Parquet staged to S3, COPY, swap in one transaction.

    Example::

        RedshiftIOManager(
            connection=PostgresConfig(host=dg.EnvVar("REDSHIFT_HOST"), port=5439, ...),
            staging=RedshiftStaging(
                iam_role="arn:aws:iam::123456789012:role/copy", bucket="my-staging"
            ),
        )
    """

    connection: PostgresConfig = Field(
        default_factory=PostgresConfig,
        description="The cluster or workgroup endpoint (Redshift speaks PostgreSQL's protocol;"
        " its port is usually 5439).",
    )
    staging: RedshiftStaging = Field(
        default_factory=RedshiftStaging,
        description="The S3 bucket COPY loads from, and the IAM role it reads it with.",
    )
    engine: Engine = Field(
        default="redshift",
        description="`postgres` runs the same load against PostgreSQL (tests, demos).",
    )

    @classmethod
    def target_class(cls) -> type[Target]:
        return RedshiftTarget

    def target(self) -> RedshiftTarget:
        return RedshiftTarget(
            self.connection,
            self.staging,
            engine=self.engine,
            default_schema=self.default_schema,
            batch_rows=self.batch_rows,
        )


class _BoundCursor:
    """A psycopg cursor that always passes parameters, so `%%` in identifiers reads as `%`."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql, list(parameters))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)
