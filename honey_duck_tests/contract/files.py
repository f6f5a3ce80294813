"""The probe of the file sinks (json, csv, excel, feather): files under a temporary root,
read back with readers that share no code with ours (DuckDB, openpyxl, pyarrow)."""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import openpyxl
import polars as pl
import pyarrow.feather
import pyarrow.ipc
import pyarrow.parquet
import pytest

from honey_duck.targets.files import FileIOManager
from honey_duck_tests.conftest import LocalRun
from honey_duck_tests.contract.probe import Probe, opt_out
from honey_duck_tests.contract.suite import DataContract, LandedContract
from honey_duck_tests.sinks import readback

EXT = {"json": "json", "csv": "csv", "excel": "xlsx", "feather": "feather", "parquet": "parquet"}


def independent_read(fmt: str, path: Path) -> pl.DataFrame:
    """Read a file with a reader that shares no code with ours."""
    if fmt == "feather":
        return pl.from_arrow(pyarrow.feather.read_table(path))  # type: ignore[return-value]
    if fmt == "parquet":
        return pl.from_arrow(pyarrow.parquet.read_table(path))  # type: ignore[return-value]
    if fmt == "excel":
        sheets = openpyxl.load_workbook(path, read_only=True).worksheets
        rows = [r for sheet in sheets for r in list(sheet.iter_rows(values_only=True))[1:]]
        header = next(sheets[0].iter_rows(values_only=True))
        return pl.DataFrame(rows, schema=list(header), orient="row", infer_schema_length=None)
    if fmt == "csv":  # a quoted empty field is an empty string, an empty one a null
        return duckdb.sql(f"select * from read_csv('{path}', allow_quoted_nulls=false)").pl()
    return duckdb.sql(f"select * from read_json('{path}')").pl()


class FileProbe(Probe):
    """One format's files under `root`. Every asset of the contract is `t/table` (a file
    sink places an asset by its key alone), so `table` names nothing here; `fresh` clears
    the root between the round trip's examples."""

    holds_keys = False  # a file has no constraint: an append takes a key again
    python_scan = False  # polars scans the file itself
    decimal_words = "Float64 in the data but Decimal(precision=12, scale=2) in the target"

    def __init__(self, fmt: str, root: Path) -> None:
        self.word = self.title = fmt
        self.fmt, self.root = fmt, root
        self.streams = fmt != "excel"  # openpyxl reads a workbook whole

    def manager(self, **config: Any) -> FileIOManager:
        return FileIOManager(format=self.fmt, base_path=str(self.root), **config)  # type: ignore[arg-type]

    def location(self, table: str) -> dict[str, Any]:
        return {}

    def table_name(self, table: str) -> str:
        return "t.table"

    def files(self) -> list[Path]:
        single = self.root / "t" / f"table.{EXT[self.fmt]}"
        if single.exists():
            return [single]
        return sorted((self.root / "t" / "table").rglob(f"*.{EXT[self.fmt]}"))

    def native(self, table: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        """Every file of the asset, read independently, its columns cast to `schema` where
        the format stores them another way (Excel's dates are midnight timestamps)."""
        frames = [independent_read(self.fmt, f) for f in self.files()]
        if not frames or all(f.width == 0 for f in frames):
            return pl.DataFrame(schema=dict(schema))
        read = pl.concat(frames, how="diagonal_relaxed")
        columns = []
        for name, dtype in schema.items():
            column = read[name] if name in read.columns else pl.Series(name, [None] * read.height)
            try:
                columns.append(column.cast(dtype, strict=True))
            except Exception:
                columns.append(column)
        return pl.DataFrame(columns)

    def exists(self, table: str) -> bool:
        return bool(self.files())

    def update(self, table: str, id: int, column: str, value: Any) -> None:
        path, stored = self._feather()
        changed = stored.with_columns(
            pl.when(pl.col("id") == id).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
        )
        _write_feather(changed, path)

    def delete(self, table: str, id: int) -> None:
        path, stored = self._feather()
        _write_feather(stored.filter(pl.col("id") != id), path)

    def _feather(self) -> tuple[Path, pl.DataFrame]:
        assert self.fmt == "feather", "only a feather file is changed behind our back here"
        path = self.files()[0]
        return path, pl.from_arrow(pyarrow.feather.read_table(path))  # type: ignore[return-value]

    def check_metadata(self, metadata: Mapping[str, Any], table: str) -> None:
        assert metadata["dagster/storage_kind"].value == self.fmt
        assert metadata["dagster/uri"].value == str(self.files()[0])

    def leftovers(self) -> list[str]:
        return [str(p) for p in self.root.rglob("*") if p.name.endswith(".tmp")]

    def odd_location(self) -> dict[str, Any]:
        return {}

    def read_odd(self, meta: Mapping[str, Any], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        return self.native("table", schema)

    def fresh(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


def _write_feather(frame: pl.DataFrame, path: Path) -> None:
    """Feather V2 is the Arrow IPC file format: written with pyarrow, not with our code."""
    table = frame.to_arrow()
    with pyarrow.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)


def typed_frame() -> pl.DataFrame:
    """Every type the file type maps keep, with nulls, quoting and non-ASCII text."""
    from datetime import date, datetime
    from decimal import Decimal

    return pl.DataFrame(
        {
            "id": [1, 2, 3],
            "small": pl.Series([1, -2, None], dtype=pl.Int32),
            "price": [1.25, None, 1e-7],
            "name": ['Zoë "the" artist, Jr.', "", None],
            "flag": [True, False, None],
            "day": [date(2024, 1, 2), None, date(1999, 12, 31)],
            "at": [datetime(2024, 1, 2, 3, 4, 5), None, datetime(2000, 1, 1)],
            "at_utc": pl.Series([datetime(2024, 6, 1, 12), None, datetime(2024, 1, 1)])
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone("Europe/Paris"),
            "amount": pl.Series(
                [Decimal("12.34"), None, Decimal("-0.01")], dtype=pl.Decimal(12, 2)
            ),
        }
    )


def lazy_frame(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": pl.int_range(0, n, eager=True), "v": pl.int_range(0, n, eager=True).cast(pl.String)}
    )


class FileContract(DataContract, LandedContract):
    """The contract of one file sink: subclasses give `word`, `lands` (the extension) and
    `read` (how `local`'s files are read back independently)."""

    typed_frame = staticmethod(typed_frame)
    lazy_frame = staticmethod(lazy_frame)
    read: ClassVar[Callable[[Path], pl.DataFrame]]

    test_any_frame_of_the_claimed_types_round_trips = opt_out(
        "each format's own property test round-trips its type table (targets/files/"
        "test_formats.py::test_<format>_round_trips_every_claimed_type, 120 examples); "
        "a reader without our sidecar cannot type the file's values back"
    )
    test_the_reconciliation_check_names_rows_changed_or_deleted_with_the_native_client = opt_out(
        "a file changed behind the manager's back fails its sidecar's digest on the next read,"
        " before the check compares values (targets/files/test_files.py::"
        "test_a_sidecar_that_no_longer_matches_its_file_is_reported_and_repaired)"
    )

    @pytest.fixture
    def probe(self, tmp_path: Path) -> FileProbe:
        return FileProbe(type(self).word, tmp_path / "out")

    def assert_files_land(self, local_run: LocalRun) -> None:
        word = type(self).word
        readback.assert_files_land(local_run, word, type(self).lands, type(self).read)
