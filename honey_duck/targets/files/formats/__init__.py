"""File formats the file sink writes: how each one writes, reads (strictly) and types a frame."""

from honey_duck.targets.files.formats.base import (
    Destination,
    FileFormat,
    FileRecord,
    Written,
)
from honey_duck.targets.files.formats.csv import CsvFormat
from honey_duck.targets.files.formats.excel import (
    EXCEL_MAX_ROWS,
    SHEET_NAME_UNITS,
    ExcelFormat,
    sheet_title,
    utf16_prefix,
)
from honey_duck.targets.files.formats.feather import FeatherFormat
from honey_duck.targets.files.formats.json import JsonFormat
from honey_duck.targets.files.formats.parquet import ParquetFormat

FORMATS: dict[str, type[FileFormat]] = {
    f.name: f for f in (CsvFormat, JsonFormat, FeatherFormat, ParquetFormat, ExcelFormat)
}

__all__ = [
    "EXCEL_MAX_ROWS",
    "FORMATS",
    "SHEET_NAME_UNITS",
    "CsvFormat",
    "Destination",
    "ExcelFormat",
    "FeatherFormat",
    "FileFormat",
    "FileRecord",
    "JsonFormat",
    "ParquetFormat",
    "Written",
    "sheet_title",
    "utf16_prefix",
]
