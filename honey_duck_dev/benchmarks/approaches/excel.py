"""Excel: our file sink against openpyxl per row and raw xlsxwriter in constant-memory mode."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from honey_duck_dev.benchmarks.approaches import _files
from honey_duck_dev.benchmarks.approaches._base import TO_DICTS, Sink, dicts, only, per_row, plain
from honey_duck_dev.benchmarks.inputs import TABLE

EXCEL_SHEET_ROWS = 1_048_576  # Excel's own limit per worksheet, header included


def naive(source: Path, out: Path) -> None:
    """Every row as a dict, one openpyxl `append` per row, one workbook saved at the end."""
    import openpyxl

    rows = dicts(source)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(rows[0]) if rows else [])
    for row in rows:
        sheet.append(list(row.values()))
    workbook.save(out / f"{TABLE}.xlsx")


def floor(source: Path, out: Path) -> None:
    """Raw xlsxwriter, a row per call, a new sheet at Excel's row limit."""
    import xlsxwriter

    # xlsxwriter's constant-memory mode, a row at a time: faster than polars' write_excel
    # (which formats a whole table object) and the fastest writer installed.
    options = {"constant_memory": True, "default_date_format": "yyyy-mm-dd"}
    workbook = xlsxwriter.Workbook(str(out / f"{TABLE}.xlsx"), options)
    frame = pl.scan_parquet(source)
    columns = frame.collect_schema().names()
    sheet, row = None, EXCEL_SHEET_ROWS
    for batch in frame.collect_batches(chunk_size=100_000):
        for values in batch.iter_rows():
            if row == EXCEL_SHEET_ROWS:  # a full sheet: continue on a new one, as Excel must
                sheet, row = workbook.add_worksheet(), 1
                sheet.write_row(0, 0, columns)
            sheet.write_row(row, 0, values)
            row += 1
    workbook.close()


def count(out: Path) -> int:
    import fastexcel

    reader = fastexcel.read_excel(str(only(out, "xlsx")))
    return sum(reader.load_sheet(name).height for name in reader.sheet_names)


SINKS = {
    "excel": Sink(
        count,
        {
            "ours": _files.ours("excel"),
            "naive": per_row(
                f"{TO_DICTS} → openpyxl Workbook.append per row, one save",
                naive,
                "openpyxl",
                cap=100_000,
            ),
            "floor": plain(
                "scan_parquet batches → iter_rows → xlsxwriter write_row, constant_memory=True",
                floor,
                "xlsxwriter",
            ),
        },
    ),
}
