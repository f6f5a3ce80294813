"""Newline-delimited JSON: polars' streaming writer, and a reader that checks every line.

The reader decodes each line in its recorded types, encodes the values again as the writer
does, and refuses a line whose text differs (naming its row and the column or field that
differs): a fraction in an integer field, a time in a date, a digit past a decimal's scale, a
field the record does not know, all show up as a line that is not what was written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import polars as pl

from honey_duck import seam
from honey_duck.seam import dtypes
from honey_duck.targets.files.formats.base import (
    ROW,
    Destination,
    FileFormat,
    FileRecord,
    Written,
    cast_to,
    is_float,
    non_finite,
    not_as_written,
    refusals_where,
    refuse_rows,
    utc_instants,
)

TEXT_FLOATS = "text_floats"  # the sidecar's list of columns whose floats were written as text
_LINE, _DECODED = "__honey_duck_line", "__honey_duck_values"
_BAD, _OK = "__honey_duck_bad", "__honey_duck_ok"

# JSON datetimes are ISO 8601 text, which polars reads back only for years 1..9999 (naive).
_JSON_FIRST_SECOND, _JSON_END_SECOND = -62_135_596_800, 253_402_300_800  # 0001-01-01, 10000-01-01
_PER_SECOND = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _outside_iso_years(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    if not isinstance(dtype, pl.Datetime) or dtype.time_unit == "ns":  # ns spans 1677..2262
        return None
    per = _PER_SECOND[dtype.time_unit or "us"]
    physical = expr.cast(pl.Int64)  # the UTC instant for aware values: what the file holds
    return (physical < _JSON_FIRST_SECOND * per) | (physical >= _JSON_END_SECOND * per)


def _floats_as_text(dtype: pl.DataType) -> pl.DataType:
    return dtypes.map_leaves(dtype, lambda leaf: pl.String if is_float(leaf) else leaf)


def _decoded_as(dtype: pl.DataType) -> pl.DataType:
    """The type a column is decoded in before it is parsed into `dtype` (its wire type).

    A top-level scalar is decoded as text and parsed by polars' casts, which never fail on a
    value of another kind (the comparison with the line then refuses it); inside lists and
    structs, floats and decimals are text (exact), small integers 32-bit and arrays lists
    (polars' decoder has neither 8- or 16-bit integers nor arrays).
    """
    if not dtype.is_nested() and not isinstance(dtype, pl.Datetime):
        return pl.String
    return _decoded_inside(dtype)


def _decoded_inside(dtype: pl.DataType) -> pl.DataType:
    if isinstance(dtype, pl.List | pl.Array):
        return pl.List(_decoded_inside(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _decoded_inside(f.dtype) for f in dtype.fields})
    if dtype in (pl.Int8, pl.Int16):
        return pl.Int32
    if dtype in (pl.UInt8, pl.UInt16):
        return pl.UInt32
    return pl.String if is_float(dtype) or isinstance(dtype, pl.Decimal) else dtype


def _parse(decoded: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The value of a decoded column in `dtype`: null where it cannot be one (the line check
    refuses that row, since the value written again differs from the line)."""
    if dtype == pl.Boolean:
        return pl.when(decoded == "true").then(True).when(decoded == "false").then(False)
    if dtype == pl.Date:
        return decoded.str.to_date("%Y-%m-%d", strict=False)
    if dtype.is_nested():  # leaves first, then lists into arrays: polars casts text into an
        # array's decimals to null, into a list's decimals exactly
        return decoded.cast(_arrays_as_lists(dtype), strict=False).cast(dtype, strict=False)
    return decoded.cast(dtype, strict=False)


def _arrays_as_lists(dtype: pl.DataType) -> pl.DataType:
    if isinstance(dtype, pl.List | pl.Array):
        return pl.List(_arrays_as_lists(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _arrays_as_lists(f.dtype) for f in dtype.fields})
    return dtype


def _tagged(kind: str) -> Callable[[str], tuple[str, str]]:
    return lambda text: (kind, text)


def _loads(text: str) -> Any:
    """A JSON value whose numbers keep their text: `1`, `1.0` and `"1"` stay three values."""
    return json.loads(
        text, parse_int=_tagged("int"), parse_float=_tagged("float"), parse_constant=_tagged("c")
    )


def _difference(stored: str, encoded: str, schema: pl.Schema) -> str:
    """What differs between a stored line and its values written again, in words."""
    try:
        found = _loads(stored)
    except ValueError:
        return "the line is not valid JSON"
    if not isinstance(found, dict):
        return "the line is not a JSON object"
    ours = _loads(encoded)
    extra = [k for k in found if k not in ours]
    if extra:
        return f"fields {extra} are in the file but not in its schema record"
    missing = [k for k in ours if k not in found]
    if missing:
        return f"fields {missing} of its schema record are missing from the line"
    for column, value in ours.items():
        if found[column] != value:
            return (
                f"column `{column}` holds a value that is not a {schema[column]} value exactly"
                " (or is written otherwise than this writer writes it)"
            )
    return "its fields are in another order or spaced otherwise than this writer writes"


def _line(path: str, row: int) -> str:
    """Line `row` (from 0) of a file, as polars splits lines: on `\\n` only."""
    with open(path, encoding="utf-8", newline="\n") as handle:
        for number, line in enumerate(handle):
            if number == row:
                return line.rstrip("\n")
    return ""


class JsonFormat(FileFormat):
    """Newline-delimited JSON: one object per row, streamable by every consumer.

    JSON numbers cannot be NaN or infinite, so a column (nested fields included) that holds
    one is written with every float as text: "NaN", "inf", "-inf", "0.1"; the schema sidecar
    names those columns. Other float columns stay numbers; both read back exactly, the sign of
    a zero included (-0.0 is written `-0.0`).
    """

    name, ext = "json", "json"
    routes = True

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if pl.Time in dtypes.leaves(dtype):
            return "JSON has no time type; cast it to a string or a duration in the asset"
        return super().unsupported(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        why = "JSON datetimes are ISO 8601 text, years 1 to 9999 (UTC for tz-aware values)"
        return refusals_where(schema, _outside_iso_years, why)

    def write(self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int) -> Written:
        schema = frame.collect_schema()
        as_text = self._non_finite_columns(frame, schema)
        cast_to(frame, _wire(schema, as_text)).sink_ndjson(path)
        return Written(encoding={TEXT_FLOATS: sorted(as_text)})

    @staticmethod
    def _non_finite_columns(frame: pl.LazyFrame, schema: pl.Schema) -> set[str]:
        """Columns holding NaN or an infinity somewhere: one streaming pass, float columns only."""
        checks = {c: dtypes.any_leaf(seam.column(c), t, non_finite) for c, t in schema.items()}
        found = [e.fill_null(False).any().alias(c) for c, e in checks.items() if e is not None]
        if not found:
            return set()
        hits = frame.select(found).collect(engine="streaming")
        return {c for c, hit in hits.row(0, named=True).items() if hit}

    def scan(
        self,
        path: str,
        record: FileRecord | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        if record is None:
            return pl.scan_ndjson(path)
        schema, text = record.schema, record.encoding.get(TEXT_FLOATS)

        def problem(row: int) -> str:  # only when a line fails: that one line again, eagerly
            stored = _line(path, row)
            one = pl.LazyFrame(
                {_LINE: [stored], ROW: [row]}, schema={_LINE: pl.String, ROW: pl.UInt32}
            )
            again = _decode_and_compare(one, schema, text, record.name).collect()
            return _difference(stored, again["e0"][0] or "null", schema)

        lines = pl.scan_lines(path, name=_LINE, row_index_name=ROW)
        compared = _decode_and_compare(lines, schema, text, record.name).with_columns(
            refuse_rows([(pl.col(_BAD), problem)], record.name).alias(_OK)
        )
        typed = compared.select(
            pl.when(pl.col(_OK)).then(pl.col(f"v{i}")).alias(c) for i, c in enumerate(schema)
        )
        return cast_to(typed, schema)


def _decode_and_compare(
    lines: pl.LazyFrame, schema: pl.Schema, text: list[str] | None, name: str
) -> pl.LazyFrame:
    """`lines` with each one's values (`v0`, `v1`, ... in the recorded types, aware datetimes
    in UTC), the values written again (`e0`, and `e1` for the other float form when the record
    does not say which), and `_BAD`: whether the line is not what was written."""
    recorded = utc_instants(schema)
    decode = pl.Struct({c: _decoded_as(t) for c, t in recorded.items()})
    # each column by position: a name such as `*` or `^a$` would be read as a pattern
    fields = pl.col(_DECODED).struct.rename_fields([f"f{i}" for i in range(len(schema))])
    values = [
        _parse(fields.struct.field(f"f{i}"), t).alias(f"v{i}")
        for i, t in enumerate(recorded.values())
    ]
    if text is None:  # written before the sidecar named them: either form is as written
        wires = [_wire(schema, set()), _wire(schema, set(schema))]
    else:
        wires = [_wire(schema, set(text))]
    encoded = [
        pl.struct(pl.col(f"v{i}").cast(w[c]).alias(c) for i, c in enumerate(schema))
        .struct.json_encode()
        .alias(f"e{n}")
        for n, w in enumerate(wires)
    ]
    line = pl.col(_LINE)
    bad = pl.all_horizontal(pl.col(f"e{n}").ne_missing(line) for n in range(len(wires)))
    return (
        lines.with_columns(_decoded(decode, schema, name).alias(_DECODED))
        .with_columns(values)
        .with_columns(encoded)
        .with_columns(bad.alias(_BAD))
    )


def _decoded(decode: pl.Struct, schema: pl.Schema, name: str) -> pl.Expr:
    """Each line decoded into `decode`, or an error naming the first line of a batch whose
    nested value is of another type than its record says (polars' own error quotes the value).
    Columns decoded as text never fail; only when one is decoded as another type (nested
    values, datetimes) does each batch go through Python, which costs polars its parallelism.
    """
    if all(f.dtype == pl.String for f in decode.fields):
        return pl.col(_LINE).str.json_decode(decode)

    def batch(lines: pl.Series) -> pl.Series:
        frame = lines.struct.unnest()
        try:
            return frame[_LINE].str.json_decode(decode)
        except pl.exceptions.PolarsError:
            raise _undecodable(frame, decode, schema, name) from None

    return pl.struct(pl.col(ROW), pl.col(_LINE)).map_batches(
        batch, return_dtype=decode, is_elementwise=True
    )


def _undecodable(frame: pl.DataFrame, decode: pl.Struct, schema: pl.Schema, name: str) -> Exception:
    """The error for a batch of lines that does not decode: its first such line and column,
    found one line and one column at a time (only on this failing path)."""
    fields = {f.name: f.dtype for f in decode.fields}
    for row, stored in zip(frame[ROW], frame[_LINE], strict=True):
        for column, dtype in fields.items():
            try:
                pl.Series([stored]).str.json_decode(pl.Struct({column: dtype}))
            except pl.exceptions.PolarsError:
                recorded = schema[column]
                problem = f"column `{column}` holds a value that is not a {recorded}"
                return not_as_written(name, int(row), problem)
    return not_as_written(name, None, "a line is not JSON of the recorded types")


def _wire(schema: pl.Schema, as_text: set[str]) -> dict[str, pl.DataType]:
    """The types a frame is written in: aware datetimes in UTC, `as_text` columns' floats as
    text (columns with no float are the same either way)."""
    return {c: _floats_as_text(t) if c in as_text else t for c, t in utc_instants(schema).items()}
