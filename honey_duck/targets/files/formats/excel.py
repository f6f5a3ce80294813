"""Excel workbooks: written row by row in constant memory, read back strictly with fastexcel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import polars as pl
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from honey_duck import seam
from honey_duck.seam import Landing, iter_batches
from honey_duck.targets.files.formats.base import FileFormat, FileRecord, Written, is_float
from honey_duck.targets.files.formats.excel_read import read_workbook

EXCEL_MAX_ROWS = 1_048_576  # rows per worksheet, header included (Excel's own limit)
SHEET_NAME_UNITS = 31  # Excel's limit on a sheet name, counted in UTF-16 code units
_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})

# Excel's 1900 date system counts days from 1899-12-30, but for a 1900-02-29 that never was
# (kept from Lotus 1-2-3): readers disagree about serials before 1900-03-01 and Excel shows none
# before 1900-01-01, so a cell holds a date or a time from 1900-03-01 to 9999-12-31.
_EXCEL_FIRST_DAY, _EXCEL_LAST_DAY = -25_508, 2_932_896  # 1900-03-01, 9999-12-31 (days from 1970)
_EXCEL_DAYS_TO_1970 = 25_569
_MS_PER_DAY = 86_400_000
_EXCEL_EXACT_INT = 2**53  # an Excel number is a double: every integer up to 2^53 is one
_EXCEL_CELL_UNITS = 32_767  # characters a cell holds, counted in UTF-16 code units
_ASTRAL = r"[\x{10000}-\x{10FFFF}]"  # characters that take two UTF-16 code units


def utf16_prefix(text: str, units: int) -> str:
    """The longest prefix of `text` that is at most `units` UTF-16 code units long."""
    out, used = [], 0
    for char in text:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            break
        out.append(char)
    return "".join(out)


def sheet_title(stem: str) -> str:
    """An Excel sheet name from a file stem: at most 31 characters, none of []:*?/\\."""
    return utf16_prefix(stem.translate(_SHEET_FORBIDDEN).strip("'"), SHEET_NAME_UNITS) or "Sheet"


def _refusals(column: str, dtype: pl.DataType) -> list[seam.Refusal]:
    """The values of one column an Excel cell would change or cannot hold."""
    col = seam.column(column)
    if is_float(dtype):
        return [seam.Refusal(column, ~col.is_finite(), "Excel cells cannot hold NaN or infinities")]
    if dtype in (pl.Int64, pl.UInt64, pl.Int128):
        too_big = (col > _EXCEL_EXACT_INT) | (col < -_EXCEL_EXACT_INT)
        why = "Excel numbers are doubles: integers beyond 2^53 (9,007,199,254,740,992) change"
        return [seam.Refusal(column, too_big, why)]
    if isinstance(dtype, pl.Decimal):
        double = col.cast(pl.Float64)
        # A double past the type's integer digits cannot be cast back at all.
        fits = double.abs() < float(10 ** ((dtype.precision or 38) - (dtype.scale or 0)))
        back = pl.when(fits).then(double).cast(dtype, strict=False)
        changed = col.is_not_null() & (~fits | back.ne_missing(col))
        why = "Excel numbers are doubles: this decimal does not survive a float (16+ digits)"
        return [seam.Refusal(column, changed, why)]
    if dtype == pl.String:
        chars = col.str.len_chars()
        # A character beyond the BMP counts twice; only strings that could be too long pay for
        # counting them.
        long = (chars > _EXCEL_CELL_UNITS) | (
            (chars > _EXCEL_CELL_UNITS // 2)
            & (chars + col.str.count_matches(_ASTRAL) > _EXCEL_CELL_UNITS)
        )
        # XML cannot carry U+FFFE and U+FFFF: writers escape them as text that reads back as is.
        odd = col.str.contains("[\ufffe\uffff]")
        return [
            seam.Refusal(column, long, "an Excel cell holds at most 32,767 characters (UTF-16)"),
            seam.Refusal(column, odd, "Excel cells cannot hold the characters U+FFFE or U+FFFF"),
        ]
    why = "Excel's 1900 date system holds 1900-03-01 to 9999-12-31 (UTC for tz-aware values)"
    if dtype == pl.Date:
        days = col.cast(pl.Int32)
        return [seam.Refusal(column, (days < _EXCEL_FIRST_DAY) | (days > _EXCEL_LAST_DAY), why)]
    if isinstance(dtype, pl.Datetime):
        ms = col.dt.epoch("ms")
        first, end = _EXCEL_FIRST_DAY * _MS_PER_DAY, (_EXCEL_LAST_DAY + 1) * _MS_PER_DAY
        return [seam.Refusal(column, (ms < first) | (ms >= end), why)]
    return []


def _cell(column: str, dtype: pl.DataType) -> pl.Expr:
    """A column as the Python values its cells take: dates and times as serial numbers."""
    col = seam.column(column)
    if dtype == pl.Date:
        return (col.cast(pl.Int32) + _EXCEL_DAYS_TO_1970).cast(pl.Float64)
    if isinstance(dtype, pl.Datetime):
        # Whole milliseconds (Excel's resolution), UTC for aware values; one exact division.
        ms = col.dt.epoch("ms") + _EXCEL_DAYS_TO_1970 * _MS_PER_DAY
        return ms.cast(pl.Float64) / _MS_PER_DAY
    if isinstance(dtype, pl.Decimal):
        return col.cast(pl.Float64)
    return col


def _cell_writer(dtype: pl.DataType) -> str:
    """Which typed xlsxwriter call writes a column's cells."""
    if dtype == pl.String:
        return "write_string"  # `write` would turn "" into no cell and "=..." into a formula
    return "write_boolean" if dtype == pl.Boolean else "write_number"


class _ExactNumbers(Worksheet):
    """A worksheet that writes every number exactly, the sign of a zero included.

    xlsxwriter writes `%.16G`, which drops the 17th digit some doubles need (0.30000000000000004
    reads back 0.3, the largest double as inf); repr is the shortest text that reads back equal.
    """

    def _xml_number_element(self, number: float, attributes: list | None = None) -> None:
        attrs = "".join(f' {k}="{self._escape_attributes(v)}"' for k, v in attributes or ())
        self.fh.write(f"<c{attrs}><v>{number!r}</v></c>")


@dataclass
class _Sheets:
    """The sheets of one workbook being written, named after its file, each starting with
    the header row."""

    workbook: Workbook
    title: str
    columns: list[str]

    def __post_init__(self) -> None:
        self.header = self.workbook.add_format({"bold": True})

    def add(self) -> Worksheet:
        n = len(self.workbook.worksheets()) + 1
        suffix = "" if n == 1 else f" ({n})"
        name = utf16_prefix(self.title, SHEET_NAME_UNITS - len(suffix)) + suffix
        sheet = self.workbook.add_worksheet(name, worksheet_class=_ExactNumbers)
        for col, column in enumerate(self.columns):
            sheet.write_string(0, col, column, self.header)
        return sheet


# xlsxwriter rather than rustpy-xlsxwriter 0.8, which writes about 10x faster: it writes no
# cell for an empty string or a row of nulls (so both vanish on read), takes a sheet's rows as
# one frame or as dicts, keeps whole seconds of a datetime and leaves decimals of a polars
# frame empty.
@dataclass
class ExcelFormat(FileFormat):
    """Excel workbooks written row by row in constant memory, split across sheets when long.

    Each sheet is named after its file (`2024-03-01`, `sales_enriched`), `(2)`, `(3)` added to
    the sheets after the first.
    """

    name, ext = "excel", "xlsx"
    max_sheet_rows: int = EXCEL_MAX_ROWS

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if dtype.is_nested() or dtype == pl.Time:
            return f"Excel cells cannot hold {dtype}; use json, feather or parquet"
        return super().unsupported(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        return [r for c, t in schema.items() for r in _refusals(c, t)]

    def landing(self, dtype: pl.DataType) -> Landing:
        if not isinstance(dtype, pl.Datetime):
            return Landing(dtype)
        zone = dtype.time_zone

        def whole_milliseconds(expr: pl.Expr) -> pl.Expr:
            # what `_cell` writes: the epoch in whole milliseconds (UTC for aware values)
            utc = pl.from_epoch(expr.dt.epoch("ms"), time_unit="ms")
            return utc.dt.replace_time_zone("UTC").dt.convert_time_zone(zone) if zone else utc

        return Landing(dtype, whole_milliseconds, "truncated to whole milliseconds")

    def write(self, frame: pl.LazyFrame, path: Any, *, batch_rows: int) -> Written:
        schema = frame.collect_schema()
        cells = frame.select(_cell(c, t).alias(c) for c, t in schema.items())
        # Rows are flushed as written: memory stays flat.
        workbook = Workbook(path, {"constant_memory": True})
        sheets = _Sheets(workbook, sheet_title(PurePath(path).stem), schema.names())
        formats = {
            pl.Date: workbook.add_format({"num_format": "yyyy-mm-dd"}),
            pl.Datetime: workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss.000"}),
        }
        cell_formats = [formats.get(t.base_type()) for t in schema.values()]
        # A row of nulls has no cell; a formatted blank one keeps it inside the sheet's extent.
        blank = workbook.add_format()
        writers = [_cell_writer(t) for t in schema.values()]
        data_rows = self.max_sheet_rows - 1
        sheet, row, total, write = None, 0, 0, []
        try:
            for batch in iter_batches(cells, batch_rows):
                for values in batch.iter_rows():
                    if sheet is None or row > data_rows:
                        sheet = sheets.add()
                        write = [getattr(sheet, w) for w in writers]
                        row = 1
                    empty = True
                    for col, value in enumerate(values):
                        if value is not None:
                            write[col](row, col, value, cell_formats[col])
                            empty = False
                    if empty:
                        sheet.write_blank(row, 0, None, blank)
                    row += 1
                    total += 1
            if sheet is None:  # an empty frame still gets its header row
                sheets.add()
        finally:
            workbook.close()
        return Written(rows=total)

    def scan(
        self,
        path: str,
        record: FileRecord | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        return read_workbook(path, record).lazy()
