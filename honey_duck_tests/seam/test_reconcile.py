"""Reconciliation: the comparison itself (pure polars), then the check around a real sink."""

import os
import struct
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from honey_duck.seam import Landing
from honey_duck.seam.reconcile import compare, figures
from honey_duck.targets.files import FileIOManager
from honey_duck.targets.files.formats import ExcelFormat
from honey_duck_tests.contract.reconciling import reconciled


def same(dtype: pl.DataType) -> Landing:
    return Landing(dtype)


FRAME = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "price": [1.5, None, float("nan"), -0.0],
        "name": ["a", "b", None, "Zoë ✓"],
        "day": [date(1, 1, 1), date(2024, 2, 29), None, date(9999, 12, 31)],
        "*": [True, False, None, True],  # a name polars would read as a pattern
    }
)


def test_equal_frames_in_another_row_order_pass() -> None:
    result = compare("t", FRAME.lazy(), FRAME.reverse().lazy(), same, ["id"])
    assert result.passed, result.problems
    assert result.expected == result.landed
    assert "holds the asset's 4 rows" in result.description()


def test_a_deleted_row_fails_naming_the_count_and_the_key() -> None:
    result = compare("t", FRAME.lazy(), FRAME.filter(pl.col("id") != 3).lazy(), same, ["id"])
    assert not result.passed
    assert result.problems[0] == "3 rows where the asset has 4"
    assert result.examples == {"missing": [3]}
    assert "missing id [3]" in result.description()


def test_a_changed_value_fails_naming_the_column_and_the_key() -> None:
    landed = FRAME.with_columns(
        pl.when(pl.col("id") == 2).then(pl.lit("B")).otherwise(pl.col("name")).alias("name")
    )
    result = compare("t", FRAME.lazy(), landed.lazy(), same, ["id"])
    assert not result.passed
    assert result.differing == ["name"]
    assert result.examples == {"changed": [2]}
    assert "values of `name` differ" in result.description()


def test_a_value_turned_null_is_named_by_its_null_count() -> None:
    landed = FRAME.with_columns(pl.lit(None, pl.Float64).alias("price"))
    result = compare("t", FRAME.lazy(), landed.lazy(), same, ["id"])
    assert result.differing == ["price"]
    assert "`price` has 4 nulls where the asset has 1" in result.description()


def test_values_swapped_between_rows_are_caught_by_the_row_digest() -> None:
    swapped = FRAME.with_columns(pl.col("name").reverse())
    result = compare("t", FRAME.lazy(), swapped.lazy(), same, ["id"])
    assert not result.passed
    assert result.differing == []  # each column holds the same values ...
    assert "the same values sit in different rows" in result.description()  # ... not row-wise


def test_equal_columns_swapped_between_rows_do_not_cancel_out() -> None:
    # two columns equal in every row: their hashes must not cancel in the row's hash
    asset = pl.DataFrame({"a": [1, 2], "b": [1, 2], "c": ["p", "q"]})
    moved = pl.DataFrame({"a": [2, 1], "b": [2, 1], "c": ["p", "q"]})
    result = compare("t", asset.lazy(), moved.lazy(), same)
    assert "the same values sit in different rows" in result.description()


def test_values_swapped_between_columns_of_one_type_are_caught() -> None:
    asset = pl.DataFrame({"a": [1, 2], "b": [3, 4]})
    result = compare("t", asset.lazy(), asset.select(a="b", b="a").lazy(), same)
    assert result.differing == ["a", "b"]


def test_polars_uint64_sums_and_products_wrap() -> None:
    # the digests are sums modulo 2^64 and the row hash multiplies: if polars ever raised or
    # saturated instead, every digest of a large table would be wrong
    top = pl.Series([2**64 - 1, 5], dtype=pl.UInt64)
    assert top.sum() == 4
    assert (
        pl.DataFrame({"x": top}).lazy().select(pl.col("x").sum()).collect(engine="streaming").item()
        == 4
    )
    assert (top * pl.Series([3, 1], dtype=pl.UInt64)).to_list() == [2**64 - 3, 5]


def test_a_duplicated_row_is_not_the_same_as_one() -> None:
    doubled = pl.concat([FRAME, FRAME.head(1)])
    trimmed = pl.concat([FRAME.head(3), FRAME.head(1)])  # row 4 replaced by a copy of row 1
    assert not compare("t", FRAME.lazy(), doubled.lazy(), same).passed
    assert not compare("t", FRAME.lazy(), trimmed.lazy(), same).passed


def test_a_column_read_back_in_another_type_fails_even_when_the_values_cast_back() -> None:
    landed = FRAME.with_columns(pl.col("id").cast(pl.Float64))
    result = compare("t", FRAME.lazy(), landed.lazy(), same, ["id"])
    assert not result.passed
    assert result.differing == ["id"]
    assert "`id` reads back as Float64, where the type table says Int64" in result.description()


def test_missing_and_extra_columns_are_named() -> None:
    landed = FRAME.drop("name").with_columns(pl.lit(1).alias("extra"))
    problems = compare("t", FRAME.lazy(), landed.lazy(), same).problems
    assert "column(s) ['name'] are missing from the target" in problems
    assert "column(s) ['extra'] are in the target but not in the asset" in problems


def test_a_declared_conversion_is_no_false_alarm_and_an_undeclared_one_is_caught() -> None:
    """Excel keeps whole milliseconds: declared, so a truncated value passes; a value off by
    more fails, though it reads back in the declared type."""
    moment = datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    asset = pl.DataFrame({"at": [moment, None]}).with_columns(
        pl.col("at").dt.convert_time_zone("Asia/Kathmandu")
    )
    excel = ExcelFormat().landing
    truncated = asset.with_columns(pl.col("at").dt.truncate("1ms"))
    assert compare("x", asset.lazy(), truncated.lazy(), excel).passed
    assert not compare("x", asset.lazy(), asset.lazy().with_columns(pl.col("at")), same).differing
    one_second = truncated.with_columns(pl.col("at").dt.offset_by("1s"))
    result = compare("x", asset.lazy(), one_second.lazy(), excel)
    assert result.differing == ["at"]
    # without the declaration, the truncation itself is a difference
    assert compare("x", asset.lazy(), truncated.lazy(), same).differing == ["at"]


def test_a_declared_type_change_compares_in_the_target_type() -> None:
    asset = pl.DataFrame({"u": [0, 2**64 - 1, None]}, schema={"u": pl.UInt64})
    landed = asset.with_columns(pl.col("u").cast(pl.Decimal(20, 0)))
    as_sql = lambda dtype: Landing(pl.Decimal(20, 0))  # noqa: E731
    assert compare("sql", asset.lazy(), landed.lazy(), as_sql).passed
    off_by_one = landed.with_columns(pl.col("u") - Decimal(1))
    assert not compare("sql", asset.lazy(), off_by_one.lazy(), as_sql).passed


def test_an_upsert_target_is_compared_on_the_asset_keys_only() -> None:
    older = pl.DataFrame([[99], [1.0], ["old"], [None], [None]], schema=FRAME.schema)
    landed = pl.concat([FRAME, older])
    assert not compare("t", FRAME.lazy(), landed.lazy(), same, ["id"]).passed
    assert compare("t", FRAME.lazy(), landed.lazy(), same, ["id"], only_expected_keys=True).passed


def test_empty_frames_and_frames_without_keys() -> None:
    empty = FRAME.clear()
    assert compare("t", empty.lazy(), empty.lazy(), same).passed
    result = compare("t", FRAME.lazy(), FRAME.head(2).lazy(), same)
    assert result.examples["only in the asset"][0]["id"] in (3, 4)


def test_figures_stream_and_do_not_depend_on_order_or_category_codes() -> None:
    words = pl.DataFrame({"w": ["b", "a", "b"]}, schema={"w": pl.Categorical})
    other = pl.DataFrame({"w": ["a", "b", "b"]}).cast({"w": pl.Categorical})
    assert figures(words.lazy(), words.schema) == figures(other.lazy(), other.schema)
    assert figures(words.lazy(), words.schema).rows == 3


# -- the check around a real sink -----------------------------------------------------------


def test_a_csv_edited_by_hand_fails_the_check_with_the_reason(tmp_path: Path) -> None:
    frame = pl.DataFrame({"sale_id": [1, 2, 3], "price": [1.25, 2.5, 10.0]})
    sink = FileIOManager(format="csv", base_path=str(tmp_path / "out"))
    run = reconciled(tmp_path, sink, frame, metadata={"reconcile_keys": ["sale_id"]})
    assert run.write().passed
    path = tmp_path / "out" / "t" / "table.csv"
    path.write_text(path.read_text().replace("2.5", "2.6"))  # the schema sidecar notices
    verdict = run.check()
    assert not verdict.passed
    assert "could not be read back" in verdict.description
    assert "describes another version of table.csv" in verdict.description


def test_the_check_passes_after_a_write_and_fails_after_a_pyarrow_edit(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    frame = pl.DataFrame({"sale_id": [1, 2, 3], "price": [1.25, 2.5, 10.0]})
    sink = FileIOManager(format="feather", base_path=str(tmp_path / "out"))
    run = reconciled(tmp_path, sink, frame, metadata={"reconcile_keys": ["sale_id"]})
    verdict = run.write()
    assert verdict.passed, verdict.description
    assert verdict.metadata["honey_duck/asset_rows"] == 3
    assert verdict.metadata["honey_duck/target_rows"] == 3
    assert (
        verdict.metadata["honey_duck/asset_checksum"]
        == (verdict.metadata["honey_duck/target_checksum"])
    )
    path = tmp_path / "out" / "t" / "table.feather"
    with ipc.open_file(path) as reader:  # pyarrow, not our reader
        table = reader.read_all()
    prices = table.column("price").to_pylist()
    prices[1] = 2.6
    changed = table.set_column(1, "price", pa.array(prices, pa.float64()))
    with ipc.new_file(path, changed.schema) as writer:
        writer.write_table(changed)
    verdict = run.check()
    assert not verdict.passed
    assert "values of `price` differ" in verdict.description
    assert "changed sale_id [2]" in verdict.description
    assert verdict.metadata["honey_duck/differing_columns"] == ["price"]


def test_the_check_of_a_partition_range_reads_only_those_partitions(tmp_path: Path) -> None:
    months = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-05-01")
    frame = pl.DataFrame({"id": [1, 2, 3, 4], "day": [date(2024, m, 15) for m in (1, 2, 3, 4)]})
    sink = FileIOManager(format="feather", base_path=str(tmp_path / "out"))
    tags = {
        "dagster/asset_partition_range_start": "2024-02-01",
        "dagster/asset_partition_range_end": "2024-03-01",
    }
    run = reconciled(
        tmp_path, sink, frame, metadata={"partition_expr": "day"}, partitions_def=months, tags=tags
    )
    verdict = run.write()
    assert verdict.passed, verdict.description
    assert verdict.metadata["honey_duck/target_rows"] == 2
    (tmp_path / "out" / "t" / "table" / "2024-03-01.feather").unlink()
    verdict = run.check()
    assert not verdict.passed
    assert "file(s) not found" in verdict.description or "rows" in verdict.description


@pytest.mark.parametrize("fmt", ["json", "excel"])
def test_text_and_excel_files_reconcile_their_declared_types(tmp_path: Path, fmt: str) -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2],
            "at": [datetime(2024, 1, 1, 12, 0, 0, 123_456), None],
            "amount": [Decimal("1.10"), Decimal("-7.25")],
        }
    )
    sink = FileIOManager(format=fmt, base_path=str(tmp_path / "out"))
    verdict = reconciled(tmp_path, sink, frame, metadata={"reconcile_keys": ["id"]}).write()
    assert verdict.passed, verdict.description


# -- the sign of zero is a value; JSON read back typed from its values keeps its kinds --------


@pytest.mark.parametrize(
    "column",
    [
        pl.Series([1.0, -0.0, None]),
        pl.Series([1.0, -0.0, None], dtype=pl.Float32),
        pl.Series([[1.0], [-0.0], None]),
        pl.Series([{"x": 1.0}, {"x": -0.0}, None]),
    ],
    ids=["Float64", "Float32", "List", "Struct"],
)
def test_minus_zero_stored_as_zero_fails_the_check(column: pl.Series) -> None:
    asset = pl.DataFrame({"id": [1, 2, 3], "x": column})
    values = column.to_list()
    values[1] = abs(values[1]) if isinstance(values[1], float) else _zero_of(values[1])
    flipped = asset.with_columns(pl.Series("x", values, dtype=column.dtype))
    result = compare("t", asset.lazy(), flipped.lazy(), same, ["id"])
    assert result.differing == ["x"], result.problems
    assert result.examples == {"changed": [2]}
    assert compare("t", asset.lazy(), asset.lazy(), same, ["id"]).passed


def _zero_of(value: object) -> object:
    return [0.0] if isinstance(value, list) else {"x": 0.0}


def test_every_nan_is_one_value() -> None:
    quiet, other = float("nan"), struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_0001))[0]
    asset = pl.DataFrame({"x": [quiet, 1.0], "l": [[quiet], [1.0]]})
    landed = pl.DataFrame({"x": [other, 1.0], "l": [[-other], [1.0]]})
    assert compare("t", asset.lazy(), landed.lazy(), same).passed


def inferred(dtype: pl.DataType) -> Landing:
    return Landing(None)  # read back typed from the values, as JSON columns in SQL are


def test_an_inferred_column_compares_kinds_not_only_text() -> None:
    asset = pl.DataFrame({"id": [1, 2], "info": [{"k": 1, "v": "x"}, {"k": 2, "v": None}]})
    as_text = pl.DataFrame({"id": [1, 2], "info": [{"k": "1", "v": "x"}, {"k": "2", "v": None}]})
    result = compare("t", asset.lazy(), as_text.lazy(), inferred, ["id"])
    assert result.differing == ["info"], result.problems
    reordered = pl.DataFrame({"id": [1, 2], "info": [{"v": "x", "k": 1}, {"v": None, "k": 2}]})
    assert compare("t", asset.lazy(), reordered.lazy(), inferred, ["id"]).passed
    one_changed = pl.DataFrame(
        {"id": [1, 2], "info": [{"k": 1.0, "v": "x"}, {"k": 2.0, "v": None}]}
    )
    assert compare("t", asset.lazy(), one_changed.lazy(), inferred, ["id"]).differing == ["info"]


@pytest.fixture(params=["postgres", "local"])
def sql_sink(request: pytest.FixtureRequest, tmp_path: Path):
    """A SQL sink that keeps structs as jsonb (or DuckDB JSON): its manager, how to run SQL
    natively, its schema, and the SQL of `info` with its field `k` turned from number to text."""
    from honey_duck.targets.postgres import PostgresIOManager
    from honey_duck.targets.standin import StandInIOManager

    schema = f"r_{request.param}_{os.getpid()}_{time.time_ns() % 10**8}"
    if request.param == "postgres":
        import psycopg

        url = request.getfixturevalue("postgres_server")

        def execute(sql: str) -> None:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(sql)

        as_text = "jsonb_set(info, '{k}', to_jsonb(info->>'k'))"
        return PostgresIOManager.from_url(url, default_schema=schema), execute, schema, as_text
    import duckdb

    database = str(tmp_path / "local.duckdb")

    def execute_locally(sql: str) -> None:
        with duckdb.connect(database) as connection:
            connection.execute(sql)

    manager = StandInIOManager.of(PostgresIOManager(), database=database, default_schema=schema)
    return manager, execute_locally, schema, "json_object('k', info->>'k', 'v', info->'v')"


def test_a_json_number_turned_into_text_fails_the_check(sql_sink, tmp_path: Path) -> None:
    manager, execute, schema, k_as_text = sql_sink
    frame = pl.DataFrame({"id": [1, 2], "info": [{"k": 1, "v": "x"}, {"k": 2, "v": None}]})
    metadata = {"schema": schema, "table": "typed", "reconcile_keys": ["id"]}
    run = reconciled(tmp_path, manager, frame, metadata=metadata)
    verdict = run.write()
    assert verdict.passed, verdict.description
    # every row's number as text: the reader then infers a text field, whose values read "1"
    execute(f'UPDATE "{schema}"."typed" SET info = {k_as_text}')
    verdict = run.check()
    assert not verdict.passed
    assert "values of `info` differ" in verdict.description, verdict.description
