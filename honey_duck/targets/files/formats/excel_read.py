"""Reading an Excel workbook back strictly: each cell must be a value of its column's type."""

from __future__ import annotations

import re
import zipfile

import polars as pl

from honey_duck import seam
from honey_duck.targets.files.formats.base import FileRecord, not_as_written, unknown_columns


def read_workbook(path: str, record: FileRecord | None) -> pl.DataFrame:
    """Every sheet of the workbook at `path`, in order, typed and checked by its `record`."""
    import fastexcel

    reader = fastexcel.read_excel(path)
    if record is None:
        frames = [pl.DataFrame(reader.load_sheet(n).to_arrow()) for n in reader.sheet_names]
        return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
    schema = record.schema
    wire = {i: _READ_AS.get(t.base_type(), "string") for i, t in enumerate(schema.values())}
    frames = []
    for index, rows in enumerate(_sheet_rows(path, len(reader.sheet_names))):
        sheet_name = reader.sheet_names[index]
        header = [c.name for c in reader.load_sheet(index, n_rows=0).available_columns()]
        where = f"{record.name or 'the workbook'}, sheet {sheet_name!r}"
        # names are compared by count: the reader renames some headers (an empty one, say)
        if len(header) != len(schema):
            problem = unknown_columns(header, schema) or "it has another number of columns"
            raise not_as_written(where, None, problem)
        frame = pl.DataFrame(reader.load_sheet(index, dtypes=wire).to_arrow())
        # By position: a header the reader renames (an empty one, say) still finds its column.
        frame.columns = schema.names()
        if frame.height < rows:  # the reader stops at the last cell; the rest were all null
            nulls = [
                pl.repeat(None, rows - frame.height, dtype=t).alias(c)
                for c, t in frame.schema.items()
            ]
            frame = pl.concat([frame, pl.select(nulls)])
        _refuse_cells(frame, schema, where)
        frames.append(frame)
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return frame.select(_restore(c, t) for c, t in schema.items())


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


# How fastexcel reads each kind of column: numbers as the doubles the cells hold (a whole
# number is then checked, not truncated), booleans as text (so that a number is no `true`),
# dates as datetimes (so that a time of day is seen, not dropped).
_INTEGERS = [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.Int128]
_INTEGERS += [pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64]
_READ_AS: dict[type[pl.DataType], str] = {
    **dict.fromkeys(_INTEGERS, "float"),
    pl.Float32: "float",
    pl.Float64: "float",
    pl.Decimal: "float",
    pl.Boolean: "string",
    pl.Date: "datetime",
    pl.Datetime: "datetime",
}


def _exact(column: str, dtype: pl.DataType) -> pl.Expr | None:
    """True where a cell read as `_READ_AS` says is not a value of `dtype` exactly."""
    cell = seam.column(column)
    if dtype in _INTEGERS or isinstance(dtype, pl.Decimal) or dtype == pl.Float32:
        return cell.cast(dtype, strict=False).cast(pl.Float64).ne_missing(cell)
    if dtype == pl.Boolean:
        return cell.is_not_null() & ~cell.is_in(["true", "false"])
    if dtype == pl.Date:  # a date cell holds a whole day
        moment = cell.cast(pl.Datetime("ms"))
        return moment.cast(pl.Date).cast(pl.Datetime("ms")).ne_missing(moment)
    return None


def _refuse_cells(frame: pl.DataFrame, schema: pl.Schema, where: str) -> None:
    """Refuse a sheet holding a cell that is not a value of its column's type exactly."""
    tests = {c: e for c, t in schema.items() if (e := _exact(c, t)) is not None}
    if not tests:
        return
    found = frame.select(
        pl.arg_where(e.fill_null(False)).first().alias(c) for c, e in tests.items()
    ).row(0, named=True)
    failing = [(row, c) for c, row in found.items() if row is not None]
    if failing:
        row, column = min(failing)
        why = f"column `{column}` holds a cell that is not a {schema[column]} value exactly"
        raise not_as_written(where, row, why)


def _restore(column: str, dtype: pl.DataType) -> pl.Expr:
    """Cast a column read from Excel back to the type it was written with."""
    col = seam.column(column)
    if isinstance(dtype, pl.Datetime):
        col = col.cast(pl.Datetime(dtype.time_unit))
        if dtype.time_zone:
            col = col.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
        return col
    if dtype == pl.Boolean:
        return pl.when(col == "true").then(True).when(col == "false").then(False).alias(column)
    return col.cast(dtype)
