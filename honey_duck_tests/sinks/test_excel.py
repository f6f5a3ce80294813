"""The excel group, landed by the README's main command and read back with openpyxl."""

from pathlib import Path

import openpyxl
import polars as pl

from honey_duck_tests.conftest import LocalRun
from honey_duck_tests.contract.files import FileContract


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


class TestExcel(FileContract):
    """The contract on excel files, and what `local` landed."""

    word = "excel"
    lands = "xlsx"
    read = staticmethod(read)

    def test_the_local_command_lands_the_pipeline_tables(self, local_run: LocalRun) -> None:
        """xlsx files carry their creation time: the landing here, and the cells equal on a
        rerun in `test_excel_replace_is_idempotent`, not the bytes."""
        self.assert_files_land(local_run)
