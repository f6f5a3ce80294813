"""Redshift's SQL: PostgreSQL's catalog and quoting, its own types and limits, DELETE USING.

`RedshiftOnPostgresDialect` runs the same statements on a PostgreSQL server (`engine="postgres"`)
and refuses what Redshift refuses, since it stands in for Redshift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import polars as pl

from honey_duck import seam
from honey_duck.targets.postgres import PostgresDialect
from honey_duck.targets.sql.dialect import Cursor, Definitions, Dialect, ScalarTypes, Table, widen
from honey_duck.targets.sql.refusals import JULIAN_1970, POSTGRES, Limits, Range

MAX_VARCHAR = 65_535  # bytes of UTF-8, not characters
MAX_VARBYTE = 1_024_000

REDSHIFT = Limits(
    dates=Range(-JULIAN_1970, 106_762_939, "from 4714-11-24 BC to 294276-12-31"),
    timestamps=POSTGRES.timestamps,
    text_bytes=MAX_VARCHAR,
    binary_bytes=MAX_VARBYTE,
    # a string inside SUPER is limited like a VARCHAR, unless the cluster opts into large
    # strings (enable_large_strings_opt_in); one SUPER value holds at most 16 MB
    json_string_bytes=MAX_VARCHAR,
    json_bytes=16_000_000,
)


class RedshiftDialect(PostgresDialect):
    """Redshift: PostgreSQL's catalog and quoting, its own types, DELETE USING for upserts."""

    name = "Redshift"
    max_identifier = 127
    limits = REDSHIFT
    json_type = "super"
    # PostgreSQL's names, except where Redshift has no such type or a different one
    scalars: ClassVar[ScalarTypes] = {
        **PostgresDialect.scalars,
        pl.Duration: "bigint",  # microseconds: Redshift cannot load intervals from Parquet
        **dict.fromkeys(
            [pl.String, pl.Categorical, pl.Enum, pl.Null], f"character varying({MAX_VARCHAR})"
        ),
        pl.Binary: f"varbyte({MAX_VARBYTE})",
    }

    def param(self, index: int) -> str:
        return "%s"  # psycopg's placeholder; statements run through psycopg on both engines

    def quote(self, identifier: str) -> str:
        # Statements run through psycopg, which reads `%` as a placeholder: `%%` is one `%`.
        # The IO manager's cursor always passes parameters, so psycopg always un-doubles it.
        return super().quote(identifier).replace("%", "%%")

    # -- types ----------------------------------------------------------------------------

    def stores_as_json(self, dtype: pl.DataType) -> bool:
        return dtype.is_nested()  # SUPER holds every nested value; Redshift has no arrays

    def decimal_type(self, precision: int | None, scale: int) -> str:
        if precision and precision > 38:
            raise ValueError(f"Redshift decimals hold at most 38 digits, not {precision}")
        return f"numeric({precision or 38},{scale})"

    def polars_type(self, sql_type: str) -> pl.DataType:
        if sql_type.startswith("varbyte"):  # any length, tables made by hand included
            return pl.Binary()
        return super().polars_type(sql_type)

    def json_wire(self, name: str, dtype: pl.DataType) -> pl.Expr | None:
        return None  # staged as nested Parquet; COPY's SERIALIZETOJSON makes it SUPER

    def scalar_wire(self, name: str, dtype: pl.DataType) -> pl.Expr | None:
        if isinstance(dtype, pl.Duration):  # the declared landing: microseconds in a bigint
            return seam.column(name).dt.total_microseconds()
        return widen(name, dtype)

    def read_column(self, name: str, sql_type: str) -> tuple[str, pl.DataType | None]:
        col = self.quote(name)
        if sql_type == "super":
            return f"JSON_SERIALIZE({col})", pl.Struct({})
        if sql_type.startswith("numeric"):
            return col, self.polars_type(sql_type)
        return col, None

    # -- statements and catalog -------------------------------------------------------------

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

    def keys_and_indexes(self, cursor: Cursor, table: Table) -> Definitions:
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
        return Definitions([self.add_primary_key(table, keys)] if keys else [], bool(keys))

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
    """Redshift's statements and limits on a PostgreSQL server: only the types Redshift alone
    has (SUPER, VARBYTE), the placeholders and the length of a name differ."""

    max_identifier = 63  # the server is PostgreSQL: it would silently cut a longer name
    names_server: ClassVar[str | None] = "PostgreSQL (standing in for Redshift)"
    json_type = "jsonb"
    scalars: ClassVar[ScalarTypes] = {**RedshiftDialect.scalars, pl.Binary: "bytea"}

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
