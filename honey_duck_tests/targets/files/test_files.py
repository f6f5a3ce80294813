"""The file sink end to end through Dagster: every format, mode, partition shape and failure."""

import json
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from honey_duck.seam import SinkError
from honey_duck.targets.files import FileIOManager
from honey_duck_tests.contract.files import EXT, independent_read, typed_frame
from honey_duck_tests.contract.runs import MONTHLY, MULTI, RANGE, error_of, run

FORMATS = ["json", "csv", "excel", "feather", "parquet"]


def sales(months: list[int], channel: str | None = None) -> pl.DataFrame:
    rows = [(m * 10 + i, date(2024, m, 1 + i), channel or "online") for m in months for i in (0, 1)]
    return pl.DataFrame(rows, schema={"id": pl.Int64, "d": pl.Date, "c": pl.String}, orient="row")


def manager(tmp_path: Path, fmt: str, **config: object) -> FileIOManager:
    return FileIOManager(format=fmt, base_path=str(tmp_path / "out"), **config)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_type_round_trips_and_replace_is_idempotent(tmp_path: Path, fmt: str) -> None:
    frame = typed_frame()
    seen: dict[str, pl.DataFrame] = {}

    def consumer(table: pl.DataFrame) -> None:
        seen["frame"] = table

    io = manager(tmp_path, fmt)
    first = run(io, lambda: frame.lazy(), consume=consumer)
    assert first.success
    path = tmp_path / "out" / "t" / f"table.{EXT[fmt]}"
    before = path.read_bytes()
    assert run(io, lambda: frame.lazy(), consume=consumer).success
    assert_frame_equal(seen["frame"], frame)
    if fmt != "excel":  # xlsx zips carry a timestamp; compare the values instead
        assert path.read_bytes() == before
    other = independent_read(fmt, path)
    assert other["id"].to_list() == [1, 2, 3]
    assert other["name"].to_list()[0] == 'Zoë "the" artist, Jr.'
    assert float(other["amount"][0]) == 12.34
    meta = first.get_asset_materialization_events()[0].materialization.metadata
    assert meta["dagster/row_count"].value == 3
    assert meta["dagster/storage_kind"].value == fmt
    assert meta["dagster/uri"].value == str(path)
    assert meta["dagster/table_name"].value == "t.table"
    assert [c.name for c in meta["dagster/column_schema"].schema.columns] == frame.columns
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_frame_writes_a_typed_empty_output(tmp_path: Path, fmt: str) -> None:
    empty = typed_frame().clear()
    seen: dict[str, pl.DataFrame] = {}
    result = run(manager(tmp_path, fmt), lambda: empty, consume=lambda table: seen.update(t=table))
    assert result.success
    assert seen["t"].height == 0
    assert seen["t"].schema == empty.schema


@pytest.mark.parametrize("fmt", ["json", "csv", "feather"])
def test_strict_drift_fails_with_the_diff_and_keeps_the_old_file(tmp_path: Path, fmt: str) -> None:
    io = manager(tmp_path, fmt)
    assert run(io, lambda: pl.DataFrame({"id": [1], "price": [1.0]})).success
    path = tmp_path / "out" / "t" / f"table.{EXT[fmt]}"
    before = path.read_bytes()
    drifted = run(io, lambda: pl.DataFrame({"id": ["1"], "extra": [True]}))
    message = error_of(drifted)
    assert "column `extra` is new (Boolean)" in message
    assert "column `id` is String in the data but Int64 in the target" in message
    assert "column `price` (Float64) is missing" in message
    assert path.read_bytes() == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_evolve_adds_a_nullable_column(tmp_path: Path, fmt: str) -> None:
    io = manager(tmp_path, fmt, schema_policy="evolve")
    seen: dict[str, pl.DataFrame] = {}
    assert run(io, lambda: pl.DataFrame({"id": [1], "price": [1.0]})).success
    upsert = {"write_mode": "append"}
    result = run(
        io,
        lambda: pl.DataFrame({"id": [2], "note": ["new"]}),
        metadata=upsert,
        consume=lambda table: seen.update(t=table),
    )
    assert result.success
    assert seen["t"].rows() == [(1, 1.0, None), (2, None, "new")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_upsert_updates_and_inserts_by_key(tmp_path: Path, fmt: str) -> None:
    io = manager(tmp_path, fmt)
    upsert = {"write_mode": "upsert", "upsert_keys": ["id"]}
    first = pl.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    assert run(io, lambda: first, metadata=upsert).success
    seen: dict[str, pl.DataFrame] = {}
    second = pl.DataFrame({"id": [3, 4], "v": ["C", "D"]})
    result = run(io, lambda: second, metadata=upsert, consume=lambda table: seen.update(t=table))
    assert result.success
    assert seen["t"].sort("id").rows() == [(1, "a"), (2, "b"), (3, "C"), (4, "D")]
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["dagster/row_count"].value == 4
    assert meta["honey_duck/rows_written"].value == 2
    assert meta["honey_duck/write_mode"].value == "upsert"


def test_duplicate_upsert_keys_fail_before_anything_is_written(tmp_path: Path) -> None:
    io = manager(tmp_path, "csv")
    upsert = {"write_mode": "upsert", "upsert_keys": ["id"]}
    assert run(io, lambda: pl.DataFrame({"id": [1], "v": ["a"]}), metadata=upsert).success
    path = tmp_path / "out" / "t" / "table.csv"
    before = path.read_bytes()
    result = run(io, lambda: pl.DataFrame({"id": [5, 5], "v": ["x", "y"]}), metadata=upsert)
    message = error_of(result)
    assert "SinkError: csv sink, `t/table`: " in message
    assert "appear more than once in the data (the first is rows 0 and 1)" in message
    assert path.read_bytes() == before


@pytest.mark.parametrize("fmt", ["json", "csv", "excel", "feather"])
def test_a_failure_mid_write_leaves_the_previous_file(tmp_path: Path, fmt: str) -> None:
    io = manager(tmp_path, fmt, batch_rows=10)
    good = pl.DataFrame({"id": list(range(100)), "v": [str(i) for i in range(100)]})
    assert run(io, lambda: good).success
    path = tmp_path / "out" / "t" / f"table.{EXT[fmt]}"
    before = path.read_bytes()
    # The last row fails to cast only when the write reaches it, after earlier batches went out.
    bad = [str(i) for i in range(99)] + ["not a number"]
    breaks = pl.LazyFrame({"id": list(range(100)), "v": bad}).with_columns(
        pl.col("v").cast(pl.Int64).cast(pl.String)
    )
    assert not run(io, lambda: breaks).success
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name] + ([path.name + ".schema"] if fmt != "feather" else [])
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_range_backfills_in_one_run_and_a_rerun_touches_one_partition(
    tmp_path: Path, fmt: str
) -> None:
    io = manager(tmp_path, fmt)
    meta = {"partition_expr": "d"}

    def produce(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        window = context.partition_time_window
        months = list(range(window.start.month, window.end.month))
        return sales(months, "first").lazy()

    seen: dict[str, pl.DataFrame] = {}
    result = run(
        io,
        produce,
        metadata=meta,
        partitions_def=MONTHLY,
        tags=RANGE,
        consume=lambda table: seen.update(t=table),
    )
    assert result.success
    folder = tmp_path / "out" / "t" / "table"
    files = sorted(p.name for p in folder.glob(f"*.{EXT[fmt]}"))
    assert files == [f"2024-0{m}-01.{EXT[fmt]}" for m in (1, 2, 3, 4)]
    assert seen["t"].height == 8
    events = result.get_asset_materialization_events()
    table_events = [e for e in events if e.asset_key == dg.AssetKey(["t", "table"])]
    assert len(table_events) == 4  # one materialization per partition of the range
    # the range's total is named as one; each partition's own count and file are observed
    metadata = table_events[0].materialization.metadata
    assert metadata["honey_duck/range_row_count"].value == 8
    assert "dagster/partition_row_count" not in metadata
    observed = {
        e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert sorted(observed) == [f"2024-0{m}-01" for m in (1, 2, 3, 4)]
    for key, observation in observed.items():
        assert observation.metadata["dagster/partition_row_count"].value == 2
        assert observation.metadata["dagster/uri"].value.endswith(f"/{key}.{EXT[fmt]}")

    march = folder / f"2024-03-01.{EXT[fmt]}"
    untouched = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != march.name}
    rerun = run(
        io,
        lambda: sales([3], "second").lazy(),
        metadata=meta,
        partitions_def=MONTHLY,
        partition_key="2024-03-01",
    )
    assert rerun.success
    for name, content in untouched.items():
        if not name.startswith("2024-03-01"):
            assert (folder / name).read_bytes() == content, name
    assert set(independent_read(fmt, march)["c"].to_list()) == {"second"}


def test_rows_outside_the_partition_are_refused(tmp_path: Path) -> None:
    result = run(
        manager(tmp_path, "json"),
        lambda: sales([1, 2]),
        metadata={"partition_expr": "d"},
        partitions_def=MONTHLY,
        partition_key="2024-01-01",
    )
    assert "2 rows fall outside partitions 2024-01-01" in error_of(result)
    assert not (tmp_path / "out" / "t" / "table").exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_multi_partitions_write_exactly_their_key_set(tmp_path: Path, fmt: str) -> None:
    io = manager(tmp_path, fmt)
    meta = {"partition_expr": {"month": "d", "channel": "c"}}

    def produce(context: dg.AssetExecutionContext) -> pl.DataFrame:
        key = context.partition_key.keys_by_dimension
        return sales([int(key["month"][5:7])], key["channel"])

    for key in ("2024-01-01|online", "2024-02-01|gallery"):
        month, channel = key.split("|")
        mk = dg.MultiPartitionKey({"month": month, "channel": channel})
        assert run(io, produce, metadata=meta, partitions_def=MULTI, partition_key=mk).success
    root = tmp_path / "out" / "t" / "table"
    written = sorted(str(p.relative_to(root)) for p in root.rglob(f"*.{EXT[fmt]}"))
    assert written == [
        f"channel=gallery/month=2024-02-01.{EXT[fmt]}",
        f"channel=online/month=2024-01-01.{EXT[fmt]}",
    ]
    wrong = run(
        io,
        lambda: sales([1], "gallery"),  # January gallery rows under the February key
        metadata=meta,
        partitions_def=MULTI,
        partition_key=dg.MultiPartitionKey({"month": "2024-02-01", "channel": "gallery"}),
    )
    assert "fall outside partitions" in error_of(wrong)


def test_partition_keys_that_would_escape_their_folder_are_refused(tmp_path: Path) -> None:
    keys = dg.StaticPartitionsDefinition(["ok", "../escape"])
    result = run(
        manager(tmp_path, "csv"),
        lambda: pl.DataFrame({"k": ["../escape"]}),
        metadata={"partition_expr": "k"},
        partitions_def=keys,
        partition_key="../escape",
    )
    assert "cannot name a file" in error_of(result)
    assert not (tmp_path / "out" / "t" / "escape.csv").exists()


def test_excel_splits_sheets_past_the_row_limit(tmp_path: Path) -> None:
    frame = pl.DataFrame({"id": list(range(25)), "day": [date(2024, 1, 1)] * 25})
    io = manager(tmp_path, "excel", max_sheet_rows=10, batch_rows=7)
    seen: dict[str, pl.DataFrame] = {}
    assert run(io, lambda: frame.lazy(), consume=lambda table: seen.update(t=table)).success
    book = openpyxl.load_workbook(tmp_path / "out" / "t" / "table.xlsx", read_only=True)
    assert [s.max_row for s in book.worksheets] == [10, 10, 8]  # header + 9 data rows each
    assert book.sheetnames == ["table", "table (2)", "table (3)"]
    assert_frame_equal(seen["t"], frame)


def test_input_columns_metadata_selects_columns(tmp_path: Path) -> None:
    seen: dict[str, pl.DataFrame] = {}
    result = run(
        manager(tmp_path, "feather"),
        typed_frame,
        consume=lambda table: seen.update(t=table),
        consume_metadata={"columns": ["name", "id"]},
    )
    assert result.success
    assert seen["t"].columns == ["name", "id"]


def test_lazy_consumers_get_a_lazy_frame(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def consumer(table: pl.LazyFrame) -> None:
        seen["t"] = table

    assert run(manager(tmp_path, "csv"), typed_frame, consume=consumer).success
    assert isinstance(seen["t"], pl.LazyFrame)


def test_object_storage_paths_work_through_fsspec(tmp_path: Path) -> None:
    io = FileIOManager(format="csv", base_path=f"memory://{tmp_path.name}/bucket")
    seen: dict[str, pl.DataFrame] = {}
    frame = typed_frame()
    assert run(io, lambda: frame, consume=lambda table: seen.update(t=table)).success
    assert_frame_equal(seen["t"], frame)
    import fsspec

    fs = fsspec.filesystem("memory")
    sidecar = json.loads(fs.cat(f"/{tmp_path.name}/bucket/t/table.csv.schema"))
    assert [c["name"] for c in sidecar["columns"]] == frame.columns


def test_types_a_format_cannot_hold_are_refused_by_name(tmp_path: Path) -> None:
    result = run(manager(tmp_path, "csv"), lambda: pl.DataFrame({"tags": [["a", "b"]]}))
    assert "`tags` (List(String)): CSV cannot hold nested values" in error_of(result)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_backfill_whose_later_partition_drifted_writes_no_partition(
    tmp_path: Path, fmt: str
) -> None:
    meta = {"partition_expr": "d"}

    def produce(context: dg.AssetExecutionContext) -> pl.LazyFrame:
        window = context.partition_time_window
        return sales(list(range(window.start.month, window.end.month)), "new").lazy()

    strict = manager(tmp_path, fmt)
    assert run(strict, produce, metadata=meta, partitions_def=MONTHLY, tags=RANGE).success
    # March alone gains a column under `evolve`; the other months keep the old schema.
    widened = sales([3], "march").with_columns(extra=pl.lit(1))
    evolve = manager(tmp_path, fmt, schema_policy="evolve")
    single = {"partitions_def": MONTHLY, "partition_key": "2024-03-01", "metadata": meta}
    assert run(evolve, lambda: widened, **single).success
    folder = tmp_path / "out" / "t" / "table"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    result = run(strict, produce, metadata=meta, partitions_def=MONTHLY, tags=RANGE)
    assert "extra" in error_of(result) and "2024-03-01" in error_of(result)
    # January and February come before March in the range, and were not rewritten either.
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_sidecar_that_no_longer_matches_its_file_is_reported_and_repaired(
    tmp_path: Path,
) -> None:
    io = manager(tmp_path, "csv")
    frame = pl.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    assert run(io, lambda: frame).success
    path = tmp_path / "out" / "t" / "table.csv"
    # What a crash between publishing the file and publishing its sidecar leaves behind.
    path.write_text("id,v,w\n1,a,x\n2,b,y\n")
    context = dg.build_input_context(
        asset_key=dg.AssetKey(["t", "table"]), dagster_type=dg.PythonObjectDagsterType(pl.DataFrame)
    )
    with pytest.raises(SinkError, match="interrupted") as raised:
        io.load_input(context)
    assert "materialize the asset again" in str(raised.value)
    # A replace is not blocked by the mismatch: it writes a consistent pair again.
    seen: dict[str, pl.DataFrame] = {}
    assert run(io, lambda: frame, consume=lambda table: seen.update(t=table)).success
    assert_frame_equal(seen["t"], frame)
    assert duckdb.sql(f"select count(*) from read_csv('{path}')").fetchone() == (2,)


def test_excel_sheet_names_drop_characters_excel_forbids(tmp_path: Path) -> None:
    hourly = dg.HourlyPartitionsDefinition(start_date="2024-01-01-00:00")
    frame = pl.DataFrame({"at": [datetime(2024, 1, 1, 5, 30)], "v": [1]})
    result = run(
        manager(tmp_path, "excel"),
        lambda: frame,
        metadata={"partition_expr": "at"},
        partitions_def=hourly,
        partition_key="2024-01-01-05:00",
    )
    assert result.success
    path = tmp_path / "out" / "t" / "table" / "2024-01-01-05:00.xlsx"
    assert openpyxl.load_workbook(path, read_only=True).sheetnames == ["2024-01-01-05_00"]


def test_sheet_names_fit_excel_limit_in_utf16_units() -> None:
    from honey_duck.targets.files.formats import sheet_title as _sheet_title
    from honey_duck.targets.files.formats import utf16_prefix

    assert _sheet_title("2024-01-01-05:00") == "2024-01-01-05_00"
    title = _sheet_title("🦆" * 20)  # each duck is two UTF-16 units
    assert title == "🦆" * 15 and len(title.encode("utf-16-le")) // 2 == 30
    assert utf16_prefix("a" * 40, 31 - len(" (1000)")) == "a" * 24


def _lmt(zone: str) -> pl.Series:
    """Instants from when `zone` kept local mean time (an offset with seconds) and today."""
    utc = pl.Series([datetime(1890, 1, 1, 12), datetime(2024, 6, 1, 12, 0, 0, 123456), None])
    return utc.dt.replace_time_zone("UTC").dt.convert_time_zone(zone)


@pytest.mark.parametrize("fmt", FORMATS)
def test_values_text_and_cells_used_to_change_read_back_equal(tmp_path: Path, fmt: str) -> None:
    frame = pl.DataFrame(
        {
            "ratio": [0.30000000000000004, 1.7976931348623157e308, None],
            "tiny": pl.Series([-128, 127, None], dtype=pl.Int8),
            "code": pl.Series([0, 65_535, None], dtype=pl.UInt16),
            "name": ["", "x", None],
        }
    )
    if fmt == "excel":  # from 1900-03-01, in whole milliseconds (the rest is refused)
        at = pl.Series([datetime(1900, 3, 1, 12), datetime(2024, 6, 1, 12, 0, 0, 123000), None])
        frame = frame.with_columns(at=at.dt.replace_time_zone("Europe/Amsterdam"))
    else:
        frame = frame.with_columns(
            special=pl.Series([float("nan"), float("-inf"), float("inf")]),
            amsterdam=_lmt("Europe/Amsterdam"),
            kolkata=_lmt("Asia/Kolkata"),
        )
    seen: dict[str, pl.DataFrame] = {}
    result = run(manager(tmp_path, fmt), lambda: frame, consume=lambda table: seen.update(t=table))
    assert result.success
    assert_frame_equal(seen["t"], frame)


def test_excel_keeps_a_last_row_of_nulls(tmp_path: Path) -> None:
    frame = pl.DataFrame({"id": [1, None], "name": ["a", None]})
    seen: dict[str, pl.DataFrame] = {}
    result = run(
        manager(tmp_path, "excel"), lambda: frame, consume=lambda table: seen.update(t=table)
    )
    assert result.success
    assert_frame_equal(seen["t"], frame)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_range_with_an_empty_month_writes_every_file_typed(tmp_path: Path, fmt: str) -> None:
    """Every partition of a range gets its file, an empty month too, each with its own rows
    (csv, json, feather and parquet write all of them in one pass over the rows)."""
    io = manager(tmp_path, fmt)
    result = run(
        io,
        lambda: sales([1, 3, 4]).lazy(),
        metadata={"partition_expr": "d"},
        partitions_def=MONTHLY,
        tags=RANGE,
    )
    assert result.success, error_of(result)
    folder = tmp_path / "out" / "t" / "table"
    for month in (1, 2, 3, 4):
        path = folder / f"2024-{month:02d}-01.{EXT[fmt]}"
        landed = independent_read(fmt, path) if month != 2 or fmt != "json" else None
        expected = sales([month] if month != 2 else [])
        if landed is not None:
            assert landed.height == expected.height, path
            if expected.height:
                assert landed["id"].to_list() == expected["id"].to_list()
    context = dg.build_input_context(
        asset_key=dg.AssetKey(["t", "table"]),
        dagster_type=dg.PythonObjectDagsterType(pl.DataFrame),
        asset_partitions_def=MONTHLY,
        asset_partition_key_range=dg.PartitionKeyRange("2024-02-01", "2024-02-01"),
    )
    empty = io.load_input(context)
    assert empty.height == 0 and empty.schema == sales([1]).schema
