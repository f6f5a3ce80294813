"""File formats the file sink writes: how each one writes, scans and types a frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import polars as pl

from honey_duck.io.core import iter_batches

EXCEL_MAX_ROWS = 1_048_576  # rows per worksheet, header included (Excel's own limit)


def _nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


SHEET_NAME_UNITS = 31  # Excel's limit on a sheet name, counted in UTF-16 code units


def utf16_prefix(text: str, units: int) -> str:
    """The longest prefix of `text` that is at most `units` UTF-16 code units long."""
    out, used = [], 0
    for char in text:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            break
        out.append(char)
    return "".join(out)


class FileFormat:
    """One file format; subclasses say how to write, read and which types they keep."""

    name: ClassVar[str]
    ext: ClassVar[str]
    # Text formats do not carry their types, so a schema file beside the data records them.
    sidecar_schema: ClassVar[bool] = True

    def unsupported(self, dtype: pl.DataType) -> str | None:
        """Why this format cannot store `dtype`, or None when it can."""
        if dtype in (pl.Binary, pl.Object, pl.Null) or isinstance(dtype, pl.Duration):
            return f"{self.name} files cannot hold {dtype}"
        return None

    def write(self, frame: pl.LazyFrame, path: str, *, batch_rows: int, title: str) -> int | None:
        """Write `frame` to the local file `path`; return the row count when it is known."""
        raise NotImplementedError

    def scan(self, path: str, schema: pl.Schema | None) -> pl.LazyFrame:
        raise NotImplementedError

    def schema_of(self, path: str) -> pl.Schema:
        """The schema stored in the file itself (formats that keep one)."""
        return self.scan(path, None).collect_schema()


class CsvFormat(FileFormat):
    name, ext = "csv", "csv"

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if _nested(dtype):
            return "CSV cannot hold nested values; use json, feather or parquet"
        return super().unsupported(dtype)

    def write(self, frame: pl.LazyFrame, path: str, *, batch_rows: int, title: str) -> int | None:
        frame.sink_csv(path)
        return None

    def scan(self, path: str, schema: pl.Schema | None) -> pl.LazyFrame:
        return pl.scan_csv(path, schema=schema)


class JsonFormat(FileFormat):
    """Newline-delimited JSON: one object per row, streamable by every consumer."""

    name, ext = "json", "json"

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if dtype == pl.Time:
            return "JSON has no time type; cast it to a string or a duration in the asset"
        return super().unsupported(dtype)

    def write(self, frame: pl.LazyFrame, path: str, *, batch_rows: int, title: str) -> int | None:
        frame.sink_ndjson(path)
        return None

    def scan(self, path: str, schema: pl.Schema | None) -> pl.LazyFrame:
        if schema is None:
            return pl.scan_ndjson(path)
        # Decimals travel as JSON strings (exact); read them as text, then cast.
        wire = {c: pl.String if isinstance(t, pl.Decimal) else t for c, t in schema.items()}
        return pl.scan_ndjson(path, schema=wire).cast(schema)  # type: ignore[arg-type]


class FeatherFormat(FileFormat):
    """Arrow IPC (Feather v2): the schema travels inside the file."""

    name, ext = "feather", "feather"
    sidecar_schema = False

    def unsupported(self, dtype: pl.DataType) -> str | None:
        return "cannot store Python objects" if dtype == pl.Object else None

    def write(self, frame: pl.LazyFrame, path: str, *, batch_rows: int, title: str) -> int | None:
        frame.sink_ipc(path, compression="zstd")
        return None

    def scan(self, path: str, schema: pl.Schema | None) -> pl.LazyFrame:
        return pl.scan_ipc(path)


class ParquetFormat(FeatherFormat):
    name, ext = "parquet", "parquet"

    def write(self, frame: pl.LazyFrame, path: str, *, batch_rows: int, title: str) -> int | None:
        frame.sink_parquet(path, row_group_size=batch_rows)
        return None

    def scan(self, path: str, schema: pl.Schema | None) -> pl.LazyFrame:
        return pl.scan_parquet(path)


@dataclass
class ExcelFormat(FileFormat):
    """Excel workbooks written row by row in constant memory, split across sheets when long."""

    name, ext = "excel", "xlsx"
    max_sheet_rows: int = EXCEL_MAX_ROWS

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if _nested(dtype) or dtype == pl.Time:
            return f"Excel cells cannot hold {dtype}; use json, feather or parquet"
        return super().unsupported(dtype)

    def write(self, frame: pl.LazyFrame, path: str, *, batch_rows: int, title: str) -> int | None:
        import xlsxwriter

        # Excel has no time zones: aware timestamps are written in UTC and restored on read.
        schema = frame.collect_schema()
        frame = frame.with_columns(
            pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            for c, t in schema.items()
            if isinstance(t, pl.Datetime) and t.time_zone
        )
        options = {
            "constant_memory": True,  # rows are flushed as written: memory stays flat
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        }
        workbook = xlsxwriter.Workbook(path, options)
        header = workbook.add_format({"bold": True})
        formats = {
            pl.Date: workbook.add_format({"num_format": "yyyy-mm-dd"}),
            pl.Datetime: workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss.000"}),
        }
        cell_formats = [formats.get(t.base_type()) for t in schema.values()]
        data_rows = self.max_sheet_rows - 1
        sheet, row, total = None, 0, 0
        try:
            for batch in iter_batches(frame, batch_rows):
                batch = batch.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
                for values in batch.iter_rows():
                    if sheet is None or row > data_rows:
                        sheet = self._new_sheet(workbook, title, schema.names(), header)
                        row = 1
                    for col, value in enumerate(values):
                        if value is not None:
                            sheet.write(row, col, value, cell_formats[col])
                    row += 1
                    total += 1
            if sheet is None:  # an empty frame still gets its header row
                self._new_sheet(workbook, title, schema.names(), header)
        finally:
            workbook.close()
        return total

    @staticmethod
    def _new_sheet(workbook, title: str, columns: list[str], header):
        n = len(workbook.worksheets()) + 1
        suffix = "" if n == 1 else f" ({n})"
        name = utf16_prefix(title, SHEET_NAME_UNITS - len(suffix)) + suffix
        sheet = workbook.add_worksheet(name)
        sheet.write_row(0, 0, columns, header)
        return sheet

    def scan(self, path: str, schema: pl.Schema | None) -> pl.LazyFrame:
        import fastexcel

        reader = fastexcel.read_excel(path)
        wire = {
            c: _EXCEL_READ_TYPES.get(t.base_type(), "string") for c, t in (schema or {}).items()
        }
        frames = [
            pl.DataFrame(reader.load_sheet(name, dtypes=wire or None).to_arrow())
            for name in reader.sheet_names
        ]
        frame = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
        if schema is not None:
            frame = frame.select(_restore(c, t) for c, t in schema.items())
        return frame.lazy()


_EXCEL_READ_TYPES: dict[type[pl.DataType], str] = {
    **dict.fromkeys(
        [
            pl.Int8,
            pl.Int16,
            pl.Int32,
            pl.Int64,
            pl.UInt8,
            pl.UInt16,
            pl.UInt32,
            pl.UInt64,
        ],
        "int",
    ),
    pl.Float32: "float",
    pl.Float64: "float",
    pl.Decimal: "float",
    pl.Boolean: "boolean",
    pl.Date: "date",
    pl.Datetime: "datetime",
}


def _restore(column: str, dtype: pl.DataType) -> pl.Expr:
    """Cast a column read from Excel back to the type it was written with."""
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        col = col.cast(pl.Datetime(dtype.time_unit))
        if dtype.time_zone:
            col = col.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
        return col
    return col.cast(dtype)


FORMATS: dict[str, type[FileFormat]] = {
    f.name: f for f in (CsvFormat, JsonFormat, FeatherFormat, ParquetFormat, ExcelFormat)
}
