"""The excel group, landed by the README's main command and read back with openpyxl."""

from pathlib import Path

import openpyxl
import polars as pl
import pytest

from honey_duck_tests.conftest import LocalRun
from honey_duck_tests.contract import files
from honey_duck_tests.contract.files import FileProbe
from honey_duck_tests.contract.probe import opt_out
from honey_duck_tests.contract.suite import DataContract, LandedContract
from honey_duck_tests.sinks import readback


def read(path: Path) -> pl.DataFrame:
    book = openpyxl.load_workbook(path, read_only=True)
    rows = [r for sheet in book.worksheets for r in list(sheet.iter_rows(values_only=True))[1:]]
    header = next(book.worksheets[0].iter_rows(values_only=True))
    frame = pl.DataFrame(rows, schema=list(header), orient="row", infer_schema_length=None)
    # Excel keeps dates as timestamps at midnight; compare them as dates.
    return frame.with_columns(pl.col(c).cast(pl.Date) for c in frame.columns if c.endswith("date"))


def test_excel_replace_is_idempotent(local_run) -> None:
    """xlsx files carry their creation time, so compare what the cells hold."""
    root = local_run.env.home / "output" / "excel"
    for path in sorted(root.rglob("*.xlsx")):
        before = local_run.first[str(path.relative_to(local_run.env.home / "output"))]
        again = path.with_name("first.xlsx")
        again.write_bytes(before)
        try:
            assert read(again).equals(read(path)), path
        finally:
            again.unlink()


class TestExcel(DataContract, LandedContract):
    """The contract on excel files, and what `local` landed."""

    word = "excel"
    lands = "xlsx"
    typed_frame = staticmethod(files.typed_frame)
    lazy_frame = staticmethod(files.lazy_frame)

    test_any_frame_of_the_claimed_types_round_trips = opt_out(
        "the format's own property test round-trips its type table (targets/files/"
        "test_formats.py::test_excel_round_trips_every_claimed_type, 120 examples); "
        "a reader without our sidecar cannot type the file's values back"
    )
    test_the_reconciliation_check_names_rows_changed_or_deleted_with_the_native_client = opt_out(
        "a file changed behind the manager's back fails its sidecar's digest on the next read,"
        " before the check compares values (targets/files/test_files.py::"
        "test_a_sidecar_that_no_longer_matches_its_file_is_reported_and_repaired)"
    )

    @pytest.fixture
    def probe(self, tmp_path: Path) -> FileProbe:
        return FileProbe("excel", tmp_path / "out")

    def assert_files_land(self, local_run: LocalRun) -> None:
        readback.assert_files_land(local_run, "excel", "xlsx", read)

    def test_the_local_command_lands_the_pipeline_tables(self, local_run: LocalRun) -> None:
        """xlsx files carry their creation time: the landing, and cells equal on a rerun
        (`test_excel_replace_is_idempotent`), not bytes."""
        self.assert_files_land(local_run)
