"""CSV: polars' streaming writer, and a strict reader that parses every field as text first."""

from __future__ import annotations

import csv

import polars as pl

from honey_duck import seam
from honey_duck.targets.files.formats.base import (
    ROW,
    Destination,
    FileFormat,
    FileRecord,
    Written,
    cast_to,
    not_as_written,
    refuse_rows,
    unknown_columns,
    utc_instants,
)

_OK = "__honey_duck_ok"
_FRACTION = {"ms": "%.3f", "us": "%.6f", "ns": "%.9f"}  # the digits polars writes per unit


def _datetime_format(dtype: pl.Datetime) -> str:
    # polars writes aware values as their UTC instant with a `+0000` offset
    zone = "%z" if dtype.time_zone else ""
    return f"%Y-%m-%dT%H:%M:%S{_FRACTION[dtype.time_unit or 'us']}{zone}"


def as_written(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The text polars' CSV writer writes for the values of `expr` (aware datetimes in UTC)."""
    if isinstance(dtype, pl.Datetime):
        return expr.dt.to_string(_datetime_format(dtype))
    if dtype == pl.Time:
        return expr.dt.to_string("%H:%M:%S%.9f")
    if dtype == pl.Date:
        return expr.dt.to_string("%Y-%m-%d")
    return expr.cast(pl.String)


def parse(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The value `text` stands for in `dtype` (aware datetimes as UTC), null where it stands for
    none; lenient on purpose: `as_written` of the result tells an exact parse from a lossy one."""
    if isinstance(dtype, pl.Datetime):
        zone = "UTC" if dtype.time_zone else None
        return text.str.to_datetime(
            _datetime_format(dtype), time_unit=dtype.time_unit, time_zone=zone, strict=False
        )
    if dtype == pl.Time:
        return text.str.to_time("%H:%M:%S%.9f", strict=False)
    if dtype == pl.Date:
        return text.str.to_date("%Y-%m-%d", strict=False)
    if dtype == pl.Boolean:
        return pl.when(text == "true").then(True).when(text == "false").then(False)
    if dtype == pl.String:
        return text
    return text.cast(dtype, strict=False)


def _header(path: str) -> list[str]:
    """The column names in a CSV file's first record (Python's reader: polars' leaves a quote
    doubled inside a quoted name as two)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


class CsvFormat(FileFormat):
    """Comma-separated text with a header row; types come from the schema sidecar.

    The reader takes every field as text and parses it in its recorded type; a field whose
    value, written again, is not the text the file holds (a fraction in an integer column, a
    time in a date column, a digit past a decimal's scale) is refused, naming its row and
    column, as is a header that is not the record's.
    """

    name, ext = "csv", "csv"
    routes = True

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if dtype.is_nested():
            return "CSV cannot hold nested values; use json, feather or parquet"
        return super().unsupported(dtype)

    def write(self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int) -> Written:
        cast_to(frame, utc_instants(frame.collect_schema())).sink_csv(path)
        return Written()

    def scan(
        self,
        path: str,
        record: FileRecord | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        if record is None:
            return pl.scan_csv(path)
        schema, name = record.schema, record.name
        header = _header(path)
        if problem := unknown_columns(header, schema):
            raise not_as_written(name, None, problem)
        wire = utc_instants(schema)
        texts = pl.scan_csv(
            path, schema={c: pl.String for c in schema}, row_index_name=ROW, infer_schema_length=0
        )
        parsed = [
            parse(seam.column(c), t).alias(f"__v{i}") for i, (c, t) in enumerate(wire.items())
        ]
        tests = []
        for i, (column, dtype) in enumerate(wire.items()):
            again = as_written(pl.col(f"__v{i}"), dtype)  # the text the writer writes for it
            why = f"column `{column}` holds text that is not a {schema[column]} value exactly"
            tests.append((seam.column(column).ne_missing(again), lambda _row, why=why: why))
        texts = texts.with_columns(parsed).with_columns(refuse_rows(tests, name).alias(_OK))
        columns = [
            pl.when(pl.col(_OK)).then(pl.col(f"__v{i}")).alias(c) for i, c in enumerate(wire)
        ]
        return cast_to(texts.select(columns), schema)
