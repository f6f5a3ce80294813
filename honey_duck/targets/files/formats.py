"""File formats the file sink writes: how each one writes, scans and types a frame."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import polars as pl
from xlsxwriter.worksheet import Worksheet

from honey_duck import seam
from honey_duck.seam import Landing, iter_batches

EXCEL_MAX_ROWS = 1_048_576  # rows per worksheet, header included (Excel's own limit)


def _cast(frame: pl.LazyFrame, types: dict[str, pl.DataType]) -> pl.LazyFrame:
    """`frame` with each column cast to `types[column]`, names taken literally."""
    return frame.select(seam.column(c).cast(t) for c, t in types.items())


def _nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


def _scalars(dtype: pl.DataType) -> list[pl.DataType]:
    """Every scalar type inside `dtype` (itself when it is one)."""
    if isinstance(dtype, pl.List | pl.Array):
        return _scalars(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return [t for f in dtype.fields for t in _scalars(f.dtype)]
    return [dtype]


def _map_scalars(dtype: pl.DataType, scalar: Callable[[pl.DataType], pl.DataType]) -> pl.DataType:
    """`dtype` with every scalar type inside it replaced by `scalar(type)`."""
    if isinstance(dtype, pl.List):
        return pl.List(_map_scalars(dtype.inner, scalar))
    if isinstance(dtype, pl.Array):
        return pl.Array(_map_scalars(dtype.inner, scalar), dtype.size)
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _map_scalars(f.dtype, scalar) for f in dtype.fields})
    return scalar(dtype)


Bad = Callable[[pl.Expr, pl.DataType], pl.Expr | None]


def _any_scalar(expr: pl.Expr, dtype: pl.DataType, bad: Bad) -> pl.Expr | None:
    """Per row, whether any scalar inside `expr` is `bad`; None when no scalar type can be."""
    if isinstance(dtype, pl.List | pl.Array):
        inner = _any_scalar(pl.element(), dtype.inner, bad)
        if inner is None:
            return None
        items = expr if isinstance(dtype, pl.List) else expr.arr.to_list()
        return items.list.eval(inner).list.any()
    if isinstance(dtype, pl.Struct):
        # Fields by position: polars reads a field called `*` or `^...$` as a pattern.
        plain = expr.struct.rename_fields([f"f{i}" for i in range(len(dtype.fields))])
        fields = [
            _any_scalar(plain.struct.field(f"f{i}"), f.dtype, bad)
            for i, f in enumerate(dtype.fields)
        ]
        found = [f for f in fields if f is not None]
        return pl.any_horizontal(found) if found else None
    return bad(expr, dtype)


def _refusals(schema: pl.Schema, bad: Bad, why: str) -> list[seam.Refusal]:
    """One refusal per column with a scalar that can be `bad`."""
    return [
        seam.Refusal(column, expr, why)
        for column, dtype in schema.items()
        if (expr := _any_scalar(seam.column(column), dtype, bad)) is not None
    ]


def _non_finite(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    return ~expr.is_finite() if dtype in (pl.Float32, pl.Float64) else None


def _to_utc(dtype: pl.DataType) -> pl.DataType:
    """The type an aware datetime travels as in text formats: its UTC instant."""
    # polars writes offsets to the minute: one with seconds (local mean time before about 1900,
    # +00:19:32 in Amsterdam) would shift the value.
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return pl.Datetime(dtype.time_unit, "UTC")
    return dtype


def _utc_instants(schema: pl.Schema) -> dict[str, pl.DataType]:
    return {c: _map_scalars(t, _to_utc) for c, t in schema.items()}


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


Destination = str | pl.PartitionBy
"""A local file, or (for formats that `route`) one file per value of a routing column."""


class FileFormat:
    """One file format; subclasses say how to write, read and which types they keep."""

    name: ClassVar[str]
    ext: ClassVar[str]
    # Text formats do not carry their types, so a schema file beside the data records them.
    sidecar_schema: ClassVar[bool] = True
    # Whether `write` takes a `pl.PartitionBy`: polars' streaming sinks write every partition's
    # file in one pass over the rows.
    routes: ClassVar[bool] = False
    # Whether `scan` reads object storage itself, in ranges (`storage_options`); the others
    # read a local copy. polars' remote CSV and NDJSON readers hold most of the file in
    # memory (a 241 MB CSV raised memory by 214 MB), a copy on disk does not.
    scans_remote: ClassVar[bool] = False

    def unsupported(self, dtype: pl.DataType) -> str | None:
        """Why this format cannot store `dtype`, or None when it can."""
        for scalar in _scalars(dtype):
            if scalar in (pl.Binary, pl.Object, pl.Null) or isinstance(scalar, pl.Duration):
                return f"{self.name} files cannot hold {scalar}"
        return None

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        """Values of `schema`'s columns this format cannot hold exactly (refused before writing)."""
        return []

    def landing(self, dtype: pl.DataType) -> Landing:
        """What a column of `dtype` reads back as: the type it was written with, by default."""
        return Landing(dtype)

    def write(
        self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int, title: str
    ) -> int | None:
        """Write `frame` to the local file `path`; return the row count when it is known."""
        raise NotImplementedError

    def scan(
        self,
        path: str,
        schema: pl.Schema | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        """Read `path` (a URL, with `storage_options`, for formats that `scans_remote`)."""
        raise NotImplementedError


class CsvFormat(FileFormat):
    name, ext = "csv", "csv"
    routes = True

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if _nested(dtype):
            return "CSV cannot hold nested values; use json, feather or parquet"
        return super().unsupported(dtype)

    def write(
        self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int, title: str
    ) -> int | None:
        _cast(frame, _utc_instants(frame.collect_schema())).sink_csv(path)
        return None

    def scan(
        self,
        path: str,
        schema: pl.Schema | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        if schema is None:
            return pl.scan_csv(path)
        return _cast(pl.scan_csv(path, schema=pl.Schema(_utc_instants(schema))), dict(schema))


# JSON datetimes are ISO 8601 text, which polars reads back only for years 1..9999 (naive).
_JSON_FIRST_SECOND, _JSON_END_SECOND = -62_135_596_800, 253_402_300_800  # 0001-01-01, 10000-01-01
_PER_SECOND = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _outside_iso_years(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    if not isinstance(dtype, pl.Datetime) or dtype.time_unit == "ns":  # ns spans 1677..2262
        return None
    per = _PER_SECOND[dtype.time_unit]
    physical = expr.cast(pl.Int64)  # the UTC instant for aware values: what the file holds
    return (physical < _JSON_FIRST_SECOND * per) | (physical >= _JSON_END_SECOND * per)


def _json_read_type(dtype: pl.DataType) -> pl.DataType:
    """The type a scalar is read as from the file, before the cast back to its own."""
    if dtype in (pl.Int8, pl.Int16):  # polars' ndjson reader has no 8- or 16-bit integers
        return pl.Int32
    if dtype in (pl.UInt8, pl.UInt16):
        return pl.UInt32
    if dtype in (pl.Float32, pl.Float64) or isinstance(dtype, pl.Decimal):
        # Floats are numbers, or text where a column holds NaN or infinities; decimals are
        # text. Reading either as text and casting keeps every value exactly.
        return pl.String
    return _to_utc(dtype)


class JsonFormat(FileFormat):
    """Newline-delimited JSON: one object per row, streamable by every consumer.

    JSON numbers cannot be NaN or infinite, so a column (nested fields included) that holds
    one is written with every float as text: "NaN", "inf", "-inf", "0.1". Other float columns
    stay numbers; both read back exactly.
    """

    name, ext = "json", "json"
    routes = True

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if pl.Time in _scalars(dtype):
            return "JSON has no time type; cast it to a string or a duration in the asset"
        return super().unsupported(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        why = "JSON datetimes are ISO 8601 text, years 1 to 9999 (UTC for tz-aware values)"
        return _refusals(schema, _outside_iso_years, why)

    def write(
        self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int, title: str
    ) -> int | None:
        schema = frame.collect_schema()
        as_text = self._non_finite_columns(frame, schema)
        wire = {
            c: _map_scalars(t, lambda s: pl.String if s in (pl.Float32, pl.Float64) else s)
            if c in as_text
            else t
            for c, t in _utc_instants(schema).items()
        }
        _cast(frame, wire).sink_ndjson(path)
        return None

    @staticmethod
    def _non_finite_columns(frame: pl.LazyFrame, schema: pl.Schema) -> set[str]:
        """Columns holding NaN or an infinity somewhere: one streaming pass, float columns only."""
        checks = {c: _any_scalar(seam.column(c), t, _non_finite) for c, t in schema.items()}
        checks = {c: e for c, e in checks.items() if e is not None}
        if not checks:
            return set()
        found = frame.select(
            [e.fill_null(False).any().alias(c) for c, e in checks.items()]
        ).collect(engine="streaming")
        return {c for c, hit in found.row(0, named=True).items() if hit}

    def scan(
        self,
        path: str,
        schema: pl.Schema | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        if schema is None:
            return pl.scan_ndjson(path)
        wire = {c: _map_scalars(t, _json_read_type) for c, t in schema.items()}
        return _cast(pl.scan_ndjson(path, schema=wire), dict(schema))


class FeatherFormat(FileFormat):
    """Arrow IPC (Feather v2): the schema travels inside the file."""

    name, ext = "feather", "feather"
    sidecar_schema = False
    routes = True
    scans_remote = True

    def unsupported(self, dtype: pl.DataType) -> str | None:
        return "cannot store Python objects" if dtype == pl.Object else None

    def write(
        self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int, title: str
    ) -> int | None:
        frame.sink_ipc(path, compression="zstd")
        return None

    def scan(
        self,
        path: str,
        schema: pl.Schema | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        return pl.scan_ipc(path, storage_options=storage_options)


class ParquetFormat(FeatherFormat):
    name, ext = "parquet", "parquet"

    def write(
        self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int, title: str
    ) -> int | None:
        frame.sink_parquet(path, row_group_size=batch_rows)
        return None

    def scan(
        self,
        path: str,
        schema: pl.Schema | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        return pl.scan_parquet(path, storage_options=storage_options)


# Excel's 1900 date system counts days from 1899-12-30, but for a 1900-02-29 that never was
# (kept from Lotus 1-2-3): readers disagree about serials before 1900-03-01 and Excel shows none
# before 1900-01-01, so a cell holds a date or a time from 1900-03-01 to 9999-12-31.
_EXCEL_FIRST_DAY, _EXCEL_LAST_DAY = -25_508, 2_932_896  # 1900-03-01, 9999-12-31 (days from 1970)
_EXCEL_DAYS_TO_1970 = 25_569
_MS_PER_DAY = 86_400_000
_EXCEL_EXACT_INT = 2**53  # an Excel number is a double: every integer up to 2^53 is one
_EXCEL_CELL_UNITS = 32_767  # characters a cell holds, counted in UTF-16 code units
_ASTRAL = r"[\x{10000}-\x{10FFFF}]"  # characters that take two UTF-16 code units


def _excel_refusals(column: str, dtype: pl.DataType) -> list[seam.Refusal]:
    """The values of one column an Excel cell would change or cannot hold."""
    col = seam.column(column)
    if dtype in (pl.Float32, pl.Float64):
        return [seam.Refusal(column, ~col.is_finite(), "Excel cells cannot hold NaN or infinities")]
    if dtype in (pl.Int64, pl.UInt64, pl.Int128):
        too_big = (col > _EXCEL_EXACT_INT) | (col < -_EXCEL_EXACT_INT)
        why = "Excel numbers are doubles: integers beyond 2^53 (9,007,199,254,740,992) change"
        return [seam.Refusal(column, too_big, why)]
    if isinstance(dtype, pl.Decimal):
        double = col.cast(pl.Float64)
        # A double past the type's integer digits cannot be cast back at all.
        fits = double.abs() < float(10 ** (dtype.precision - dtype.scale))
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


def _excel_cell(column: str, dtype: pl.DataType) -> pl.Expr:
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


def _excel_writer(dtype: pl.DataType) -> str:
    """Which typed xlsxwriter call writes a column's cells."""
    if dtype == pl.String:
        return "write_string"  # `write` would turn "" into no cell and "=..." into a formula
    return "write_boolean" if dtype == pl.Boolean else "write_number"


class _ExactNumbers(Worksheet):
    """A worksheet that writes every number exactly.

    xlsxwriter writes `%.16G`, which drops the 17th digit some doubles need (0.30000000000000004
    reads back 0.3, the largest double as inf); repr is the shortest text that reads back equal.
    """

    def _xml_number_element(self, number: float, attributes: list | None = None) -> None:
        attrs = "".join(f' {k}="{self._escape_attributes(v)}"' for k, v in attributes or ())
        self.fh.write(f"<c{attrs}><v>{number!r}</v></c>")


# xlsxwriter rather than rustpy-xlsxwriter 0.8, which writes about 10x faster: it writes no
# cell for an empty string or a row of nulls (so both vanish on read), takes a sheet's rows as
# one frame or as dicts, keeps whole seconds of a datetime and leaves decimals of a polars
# frame empty.
@dataclass
class ExcelFormat(FileFormat):
    """Excel workbooks written row by row in constant memory, split across sheets when long."""

    name, ext = "excel", "xlsx"
    max_sheet_rows: int = EXCEL_MAX_ROWS

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if _nested(dtype) or dtype == pl.Time:
            return f"Excel cells cannot hold {dtype}; use json, feather or parquet"
        return super().unsupported(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        return [r for c, t in schema.items() for r in _excel_refusals(c, t)]

    def landing(self, dtype: pl.DataType) -> Landing:
        if not isinstance(dtype, pl.Datetime):
            return Landing(dtype)
        zone = dtype.time_zone

        def whole_milliseconds(expr: pl.Expr) -> pl.Expr:
            # what `_excel_cell` writes: the epoch in whole milliseconds (UTC for aware values)
            utc = pl.from_epoch(expr.dt.epoch("ms"), time_unit="ms")
            return utc.dt.replace_time_zone("UTC").dt.convert_time_zone(zone) if zone else utc

        return Landing(dtype, whole_milliseconds, "truncated to whole milliseconds")

    def write(self, frame: pl.LazyFrame, path: str, *, batch_rows: int, title: str) -> int | None:
        import xlsxwriter

        schema = frame.collect_schema()
        cells = frame.select(_excel_cell(c, t).alias(c) for c, t in schema.items())
        # Rows are flushed as written: memory stays flat.
        workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
        header = workbook.add_format({"bold": True})
        formats = {
            pl.Date: workbook.add_format({"num_format": "yyyy-mm-dd"}),
            pl.Datetime: workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss.000"}),
        }
        cell_formats = [formats.get(t.base_type()) for t in schema.values()]
        # A row of nulls has no cell; a formatted blank one keeps it inside the sheet's extent.
        blank = workbook.add_format()
        writers = [_excel_writer(t) for t in schema.values()]
        data_rows = self.max_sheet_rows - 1
        sheet, row, total, write = None, 0, 0, []
        try:
            for batch in iter_batches(cells, batch_rows):
                for values in batch.iter_rows():
                    if sheet is None or row > data_rows:
                        sheet = self._new_sheet(workbook, title, schema.names(), header)
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
                self._new_sheet(workbook, title, schema.names(), header)
        finally:
            workbook.close()
        return total

    @staticmethod
    def _new_sheet(workbook, title: str, columns: list[str], header):
        n = len(workbook.worksheets()) + 1
        suffix = "" if n == 1 else f" ({n})"
        name = utf16_prefix(title, SHEET_NAME_UNITS - len(suffix)) + suffix
        sheet = workbook.add_worksheet(name, worksheet_class=_ExactNumbers)
        for col, column in enumerate(columns):
            sheet.write_string(0, col, column, header)
        return sheet

    def scan(
        self,
        path: str,
        schema: pl.Schema | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        import fastexcel

        reader = fastexcel.read_excel(path)
        if schema is None:
            frames = [pl.DataFrame(reader.load_sheet(n).to_arrow()) for n in reader.sheet_names]
            return (pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()).lazy()
        wire = {
            i: _EXCEL_READ_TYPES.get(t.base_type(), "string") for i, t in enumerate(schema.values())
        }
        frames = []
        for index, rows in enumerate(_sheet_rows(path, len(reader.sheet_names))):
            frame = pl.DataFrame(reader.load_sheet(index, dtypes=wire).to_arrow())
            # By position: a header the reader renames (an empty one, say) still finds its column.
            frame.columns = schema.names()
            if frame.height < rows:  # the reader stops at the last cell; the rest were all null
                nulls = [
                    pl.repeat(None, rows - frame.height, dtype=t).alias(c)
                    for c, t in frame.schema.items()
                ]
                frame = pl.concat([frame, pl.select(nulls)])
            frames.append(frame)
        frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
        return frame.select(_restore(c, t) for c, t in schema.items()).lazy()


_DIMENSION = re.compile(rb'<dimension ref="[A-Z]+(\d+)(?::[A-Z]+(\d+))?"')


def _sheet_rows(path: str, sheets: int) -> list[int]:
    """Data rows of each sheet, from the extent the workbook records (header row excluded)."""
    rows = []
    with zipfile.ZipFile(path) as book:
        for n in range(1, sheets + 1):  # xlsxwriter names the parts in sheet order
            with book.open(f"xl/worksheets/sheet{n}.xml") as part:
                found = _DIMENSION.search(part.read(4096))
            if found is None:
                raise ValueError(f"{path}: sheet {n} records no extent")
            rows.append(int(found.group(2) or found.group(1)) - 1)
    return rows


_EXCEL_READ_TYPES: dict[type[pl.DataType], str] = {
    **dict.fromkeys(
        [
            pl.Int8,
            pl.Int16,
            pl.Int32,
            pl.Int64,
            pl.Int128,
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
    col = seam.column(column)
    if isinstance(dtype, pl.Datetime):
        col = col.cast(pl.Datetime(dtype.time_unit))
        if dtype.time_zone:
            col = col.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
        return col
    return col.cast(dtype)


FORMATS: dict[str, type[FileFormat]] = {
    f.name: f for f in (CsvFormat, JsonFormat, FeatherFormat, ParquetFormat, ExcelFormat)
}
