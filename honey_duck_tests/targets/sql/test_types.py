"""The SQL family's type tables: what each dialect stores a polars type as and reads it back as."""

import polars as pl
import pytest

from honey_duck.targets.postgres import PostgresDialect
from honey_duck.targets.redshift import RedshiftDialect, RedshiftOnPostgresDialect
from honey_duck.targets.sql.dialect import Dialect
from honey_duck.targets.standin import DuckDBDialect

DIALECTS = [PostgresDialect(), RedshiftDialect(), RedshiftOnPostgresDialect(), DuckDBDialect()]
NAMES = [
    d.name + (" on PostgreSQL" if isinstance(d, RedshiftOnPostgresDialect) else "")
    for d in DIALECTS
]

STORED = {  # polars type: PostgreSQL, Redshift, Redshift on PostgreSQL, DuckDB
    pl.Int8(): ("smallint", "smallint", "smallint", "TINYINT"),
    pl.UInt64(): ("numeric(20,0)", "numeric(20,0)", "numeric(20,0)", "UBIGINT"),
    pl.String(): ("text", "character varying(65535)", "character varying(65535)", "VARCHAR"),
    pl.Duration("us"): ("interval", "bigint", "bigint", "INTERVAL"),
    pl.Binary(): ("bytea", "varbyte(1024000)", "bytea", "BLOB"),
    pl.Decimal(12, 2): ("numeric(12,2)", "numeric(12,2)", "numeric(12,2)", "DECIMAL(12,2)"),
    pl.Datetime("us", "UTC"): (
        "timestamp with time zone", "timestamp with time zone", "timestamp with time zone",
        "TIMESTAMP WITH TIME ZONE",
    ),
    pl.List(pl.Int64): ("bigint[]", "super", "jsonb", "BIGINT[]"),
    pl.Array(pl.String, 2): ("text[]", "super", "jsonb", "VARCHAR[]"),
    pl.List(pl.List(pl.Int64)): ("jsonb", "super", "jsonb", "JSON"),
    pl.Struct({"k": pl.Int64}): ("jsonb", "super", "jsonb", "JSON"),
}  # fmt: skip


@pytest.mark.parametrize("dtype", STORED, ids=str)
def test_each_dialect_stores_a_type_as_its_table_says(dtype: pl.DataType) -> None:
    assert tuple(d.column_type(dtype) for d in DIALECTS) == STORED[dtype]


@pytest.mark.parametrize("dialect", DIALECTS, ids=NAMES)
def test_every_scalar_reads_back_as_the_first_type_listed_for_its_sql_type(
    dialect: Dialect,
) -> None:
    """Int8 and Int16 share `smallint`: a `smallint` column reads back as Int16, listed first."""
    for kind, sql_type in dialect.scalars.items():
        if sql_type.lower().startswith(("numeric(", "decimal(")):
            continue  # read back as the exact decimal, checked below
        first = next(k for k, t in dialect.scalars.items() if t == sql_type)
        assert dialect.polars_type(sql_type) == first(), (kind, sql_type)
    assert dialect.polars_type(dialect.column_type(pl.UInt64())) in (
        pl.Decimal(20, 0), pl.UInt64()
    )  # fmt: skip
    assert dialect.polars_type(dialect.column_type(pl.Decimal(12, 2))) == pl.Decimal(12, 2)


def test_postgres_reads_arrays_of_decimals_as_lists_of_decimals() -> None:
    """A `numeric(20,0)[]` column (a list of UInt64) reads back typed, not as an error."""
    dialect = PostgresDialect()
    sql, dtype = dialect.read_column("v", dialect.column_type(pl.List(pl.UInt64)))
    assert sql == '"v"::text[]' and dtype == pl.List(pl.Decimal(20, 0))


@pytest.mark.parametrize("dialect", DIALECTS, ids=NAMES)
def test_binary_inside_a_json_value_is_refused_as_a_type(dialect: Dialect) -> None:
    """JSON has no binary: polars would panic half-way through the write."""
    with pytest.raises(ValueError, match="no form for binary"):
        dialect.column_type(pl.Struct({"b": pl.Binary}))


def test_redshift_decimals_hold_38_digits() -> None:
    with pytest.raises(ValueError, match="at most 38 digits"):
        RedshiftDialect().column_type(pl.Decimal(39, 2))
    assert PostgresDialect().column_type(pl.Decimal(39, 2)) == "numeric(39,2)"
