"""Each file format on its own: what it writes reads back equal, or is refused before writing."""

import decimal
import json
import os
import tempfile
from datetime import date, datetime
from decimal import Decimal

import polars as pl
import polars.selectors as cs
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from polars.exceptions import PanicException
from polars.testing import assert_frame_equal

from honey_duck import seam
from honey_duck.targets.files.formats import (
    FORMATS,
    ExcelFormat,
    FileFormat,
    FileRecord,
    JsonFormat,
)
from honey_duck_tests.sinks import roundtrip

UNITS = ["ms", "us", "ns"]
# Zones whose offsets had seconds (local mean time), half and quarter hours, and UTC.
ZONES = [
    None,
    "UTC",
    "Europe/Amsterdam",
    "Asia/Kolkata",
    "Africa/Monrovia",
    "America/St_Johns",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
]


def write_and_read(fmt: FileFormat, frame: pl.DataFrame, folder: str, batch_rows: int = 2):
    """Validate `frame` with the format's refusals, write it, and read it back typed."""
    seam.validate(frame.lazy(), seam.WriteSettings(), None, fmt.refusals(frame.schema))
    path = os.path.join(folder, f"data.{fmt.ext}")
    written = fmt.write(frame.lazy(), path, batch_rows=batch_rows)
    return fmt.scan(path, FileRecord(frame.schema, written.encoding, "data")).collect()


def refusal_of(fmt: FileFormat, frame: pl.DataFrame) -> str:
    """The error the validation pass raises for `frame`, before anything is written."""
    with pytest.raises(ValueError) as caught:
        seam.validate(frame.lazy(), seam.WriteSettings(), None, fmt.refusals(frame.schema))
    return str(caught.value)


def instants(unit: str, micros: list[int | None]) -> pl.Series:
    """UTC instants given in microseconds since the epoch, as a Datetime of `unit`."""
    scale = {"ms": 0.001, "us": 1, "ns": 1_000}[unit]
    physical = [None if m is None else int(m * scale) for m in micros]
    return pl.Series(physical, dtype=pl.Int64).cast(pl.Datetime(unit, "UTC"))


def epoch_us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1)) // (datetime.min.resolution)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def test_json_small_integers_round_trip(tmp_path) -> None:
    frame = pl.DataFrame(
        {
            "i8": pl.Series([-128, 127, None], dtype=pl.Int8),
            "i16": pl.Series([-32768, 32767, None], dtype=pl.Int16),
            "u8": pl.Series([0, 255, None], dtype=pl.UInt8),
            "u16": pl.Series([0, 65535, None], dtype=pl.UInt16),
            "nested": pl.Series(
                [{"a": [1, -1], "b": 7}, None, {"a": None, "b": None}],
                dtype=pl.Struct({"a": pl.List(pl.Int8), "b": pl.UInt16}),
            ),
        }
    )
    assert_frame_equal(write_and_read(JsonFormat(), frame, str(tmp_path)), frame)


def test_json_keeps_nan_and_infinities_exactly(tmp_path) -> None:
    specials = [float("nan"), float("inf"), float("-inf"), 0.30000000000000004, None, -0.0]
    frame = pl.DataFrame(
        {
            "f64": specials,
            "f32": pl.Series(specials, dtype=pl.Float32),
            "plain": [1.5, 5e-324, 1.7976931348623157e308, None, -2.0, 0.1],
            "in_struct": pl.Series(
                [{"x": v} for v in specials], dtype=pl.Struct({"x": pl.Float64})
            ),
            "in_list": pl.Series([[v] for v in specials], dtype=pl.List(pl.Float32)),
        }
    )
    back = write_and_read(JsonFormat(), frame, str(tmp_path))
    assert_frame_equal(back, frame)
    assert back["f64"].cast(pl.String).to_list() == frame["f64"].cast(pl.String).to_list()
    first = json.loads((tmp_path / "data.json").read_text().splitlines()[0])
    # A column that needs the text form carries it; a finite one stays JSON numbers.
    assert first["f64"] == "NaN" and first["in_list"] == ["NaN"]
    assert first["plain"] == 1.5


@pytest.mark.parametrize("unit", ["ms", "us"])
@pytest.mark.parametrize("zone", [None, "Asia/Kolkata"])
def test_json_refuses_datetimes_outside_years_1_to_9999(unit: str, zone: str | None) -> None:
    last = 253_402_300_799_999  # 9999-12-31 23:59:59.999 in ms
    physical = [last, last + 1, -62_135_596_800_000, -62_135_596_800_001]
    scale = 1 if unit == "ms" else 1_000
    column = pl.Series([v * scale for v in physical]).cast(pl.Datetime(unit, zone))
    frame = pl.DataFrame({"ok": [1, 2, 3, 4], "far": column})
    (refusal,) = JsonFormat().refusals(frame.schema)
    assert refusal.column == "far" and "years 1 to 9999" in refusal.why
    assert frame.select(refusal.bad).to_series().to_list() == [False, True, False, True]


# ---------------------------------------------------------------------------------------------
# Datetimes with sub-minute UTC offsets (local mean time) in the text formats
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_tz_aware_datetimes_keep_their_instant(tmp_path, fmt: str, unit: str) -> None:
    moments = [datetime(1890, 1, 1), datetime(1880, 6, 1, 12, 0, 0, 123456), None]
    if unit == "ns":  # the ns range is 1677..2262
        moments += [datetime(1677, 9, 22), datetime(2262, 4, 11)]
    else:
        moments += [datetime(1, 1, 2), datetime(9999, 12, 31, 23, 59, 59, 999000)]
    utc = instants(unit, [None if m is None else epoch_us(m) for m in moments])
    frame = pl.DataFrame(
        {
            "amsterdam": utc.dt.convert_time_zone("Europe/Amsterdam"),
            "kolkata": utc.dt.convert_time_zone("Asia/Kolkata"),
            "naive": utc.dt.replace_time_zone(None),
        }
    )
    back = write_and_read(FORMATS[fmt](), frame, str(tmp_path))
    assert_frame_equal(back, frame)


# ---------------------------------------------------------------------------------------------
# Excel
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [pl.Float64, pl.Float32])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_excel_refuses_nan_and_infinities_naming_the_column(dtype, value: float) -> None:
    frame = pl.DataFrame({"ok": [1.0, 2.0], "ratio": pl.Series([1.0, value], dtype=dtype)})
    message = refusal_of(ExcelFormat(), frame)
    assert "column `ratio`" in message and "NaN" in message and "row 1" in message
    assert "`ok`" not in message


def test_excel_floats_round_trip_exactly(tmp_path) -> None:
    values = [0.30000000000000004, 1.7976931348623157e308, 5e-324, 1 / 3, -0.0, 1e-7, None]
    frame = pl.DataFrame(
        {"f64": values, "f32": pl.Series([3.4028234663852886e38, 1e-45, 0.1, -0.0, 1, 2, None])}
    ).with_columns(pl.col("f32").cast(pl.Float32))
    back = write_and_read(ExcelFormat(), frame, str(tmp_path))
    assert_frame_equal(back, frame)
    assert back["f64"].cast(pl.String).to_list() == frame["f64"].cast(pl.String).to_list()


def _utc(moment: datetime, unit: str = "ms") -> pl.Series:
    return instants(unit, [epoch_us(moment)])


@pytest.mark.parametrize(
    "column",
    [
        pl.Series([date(1900, 2, 28)]),
        pl.Series([date(1899, 12, 31)]),
        pl.Series([date(1, 1, 1)]),
        pl.Series([2_932_897], dtype=pl.Int32).cast(pl.Date),  # 10000-01-01
        pl.Series([datetime(1900, 1, 1, 12)]),
        pl.Series([datetime(1900, 2, 28, 23, 59, 59, 999999)]),
        pl.Series([253_402_300_800_000], dtype=pl.Int64).cast(pl.Datetime("ms")),
        # 1900-03-01 in Amsterdam is still 1900-02-28 in UTC, which is what the cell holds
        _utc(datetime(1900, 2, 28, 23, 50)).dt.convert_time_zone("Europe/Amsterdam"),
    ],
    ids=lambda s: str(s.cast(pl.String)[0]),
)
def test_excel_refuses_dates_its_1900_date_system_cannot_hold(column: pl.Series) -> None:
    frame = pl.DataFrame({"id": [1], "when": column})
    assert refused(ExcelFormat(), frame) == ["when"]
    if python_can_show(frame):  # core quotes the value through Python (not year 10000)
        message = refusal_of(ExcelFormat(), frame)
        assert "column `when`" in message and "1900-03-01" in message


def test_excel_keeps_the_first_and_last_moments_it_can_hold(tmp_path) -> None:
    frame = pl.DataFrame(
        {
            "day": [date(1900, 3, 1), date(9999, 12, 31), None],
            "at": [datetime(1900, 3, 1), datetime(9999, 12, 31, 23, 59, 59, 999000), None],
            "at_ns": pl.Series([datetime(1900, 3, 1, 0, 0, 0, 1000), None, None]).cast(
                pl.Datetime("ns")
            ),
        }
    )
    assert_frame_equal(write_and_read(ExcelFormat(), frame, str(tmp_path)), frame)


def test_excel_truncates_datetimes_to_whole_milliseconds(tmp_path) -> None:
    """A documented conversion: Excel's clock has millisecond resolution."""
    frame = pl.DataFrame(
        {"at": [datetime(2024, 1, 1, 0, 0, 0, 999999), datetime(2024, 1, 1, 0, 0, 0, 1)]}
    )
    back = write_and_read(ExcelFormat(), frame, str(tmp_path))
    assert back["at"].to_list() == [datetime(2024, 1, 1, 0, 0, 0, 999000), datetime(2024, 1, 1)]


@pytest.mark.parametrize(
    ("column", "why"),
    [
        (pl.Series(["x" * 32_768]), "32,767"),
        (pl.Series(["😀" * 16_384]), "32,767"),  # 32,768 UTF-16 code units
        (pl.Series(["a\ufffeb"]), "U+FFFE"),
        (pl.Series(["\uffff"]), "U+FFFE"),
        (pl.Series([2**53 + 1]), "2^53"),
        (pl.Series([-(2**53) - 1]), "2^53"),
        (pl.Series([2**64 - 1], dtype=pl.UInt64), "2^53"),
        (pl.Series([Decimal("1234567890123456.78")], dtype=pl.Decimal(20, 2)), "float"),
        (pl.Series([Decimal("0.12345678901234567")], dtype=pl.Decimal(20, 17)), "float"),
    ],
    ids=["long", "long-utf16", "fffe", "ffff", "int", "negative-int", "uint64", "dec", "dec-s"],
)
def test_excel_refuses_values_a_cell_would_change(column: pl.Series, why: str) -> None:
    frame = pl.DataFrame({"id": [1], "value": column})
    message = refusal_of(ExcelFormat(), frame)
    assert "column `value`" in message and why in message


def test_excel_keeps_values_at_its_limits(tmp_path) -> None:
    frame = pl.DataFrame(
        {
            "text": ["x" * 32_767, "😀" * 16_383 + "x", "_x0041_ a\r\nb\x00\x01", None],
            "int": [2**53, -(2**53), 0, None],
            "amount": pl.Series(
                [Decimal("123456789012.345"), Decimal("-0.001"), None, Decimal("12.340")],
                dtype=pl.Decimal(18, 3),
            ),
        }
    )
    assert_frame_equal(write_and_read(ExcelFormat(), frame, str(tmp_path)), frame)


def test_excel_keeps_empty_strings_apart_from_nulls(tmp_path) -> None:
    frame = pl.DataFrame({"name": ["", None, "x", ""], "n": [1, None, None, None]})
    assert_frame_equal(write_and_read(ExcelFormat(), frame, str(tmp_path)), frame)


@pytest.mark.parametrize("rows", [[0, 4], [4], [0, 1, 2, 3, 4]], ids=str)
def test_excel_keeps_rows_whose_values_are_all_null(tmp_path, rows: list[int]) -> None:
    """Trailing rows of nulls have no cell at all: the sheet's extent keeps them."""
    frame = pl.DataFrame(
        {"id": [None if i in rows else i for i in range(5)], "name": [None] * 5},
        schema={"id": pl.Int64, "name": pl.String},
    )
    fmt = ExcelFormat(max_sheet_rows=3)  # two data rows a sheet: a null row ends each sheet
    assert_frame_equal(write_and_read(fmt, frame, str(tmp_path)), frame)


def test_excel_splits_sheets_and_keeps_the_header_and_date_formats(tmp_path) -> None:
    import openpyxl

    frame = pl.DataFrame(
        {
            "id": list(range(25)),
            "day": [date(2024, 1, 1 + i) for i in range(25)],
            "at": [datetime(2024, 1, 1, 12, 0, i, 5000) for i in range(25)],
        }
    )
    path = str(tmp_path / "sales.xlsx")  # a sheet is named after its file
    ExcelFormat(max_sheet_rows=10).write(frame.lazy(), path, batch_rows=7)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["sales", "sales (2)", "sales (3)"]
    assert [s.max_row for s in book.worksheets] == [10, 10, 8]
    sheet = book.worksheets[1]
    assert [c.value for c in sheet[1]] == ["id", "day", "at"]
    assert sheet["A1"].font.b
    assert sheet["B2"].number_format == "yyyy-mm-dd"
    assert sheet["C2"].number_format == "yyyy-mm-dd hh:mm:ss.000"
    assert sheet["B2"].value == datetime(2024, 1, 10)
    assert sheet["C2"].value == datetime(2024, 1, 1, 12, 0, 9, 5000)
    back = ExcelFormat().scan(path, FileRecord(frame.schema)).collect()
    assert_frame_equal(back, frame)


def test_excel_writes_a_header_for_an_empty_frame(tmp_path) -> None:
    frame = pl.DataFrame(schema={"id": pl.Int64, "when": pl.Datetime("us", "Asia/Kolkata")})
    assert_frame_equal(write_and_read(ExcelFormat(), frame, str(tmp_path)), frame)


# ---------------------------------------------------------------------------------------------
# Properties: every type a format claims reads back equal, or is refused before writing
# ---------------------------------------------------------------------------------------------

INTS = [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64]
BITS = {pl.Int8: 8, pl.Int16: 16, pl.Int32: 32, pl.Int64: 64}
BITS |= {pl.UInt8: 8, pl.UInt16: 16, pl.UInt32: 32, pl.UInt64: 64}
NESTED = {"json", "feather", "parquet"}  # formats whose table claims lists and structs
DAYS_1_TO_9999 = (-719_162, 2_932_896)  # 0001-01-01 and 9999-12-31 as days since 1970
DAYS_EXCEL = (-25_508, 2_932_896)  # 1900-03-01 .. 9999-12-31
DAYS_CHRONO = 90_000_000  # about 246,000 years either side: the calendar polars can print
PER_DAY = {"ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
NAMES = st.text(max_size=6) | st.sampled_from(["", " ", 'a "b", c', "é 😀", "a\nb", "*", "^a$"])


def _leaves(fmt: str) -> st.SearchStrategy[pl.DataType]:
    """The scalar types the README's table claims for `fmt`."""
    plain = [*INTS, pl.String, pl.Boolean, pl.Date]
    leaves = [
        st.sampled_from(plain),
        st.sampled_from([pl.Float32, pl.Float64]),
        st.builds(pl.Datetime, st.sampled_from(UNITS), st.sampled_from(ZONES)),
        st.integers(1, 38).flatmap(lambda p: st.integers(0, p).map(lambda s: pl.Decimal(p, s))),
    ]
    if fmt in ("csv", "feather", "parquet"):
        leaves.append(st.just(pl.Time))
    if fmt in ("feather", "parquet"):
        leaves += [st.builds(pl.Duration, st.sampled_from(UNITS)), st.just(pl.Binary)]
    return st.one_of(leaves)


def dtypes(fmt: str) -> st.SearchStrategy[pl.DataType]:
    leaves = _leaves(fmt)
    if fmt not in NESTED:
        return leaves
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            inner.map(pl.List),
            # polars fails to cast a null inside an array of arrays: one level of arrays
            st.builds(
                pl.Array, inner.filter(lambda t: not isinstance(t, pl.Array)), st.integers(1, 3)
            ),
            st.lists(st.tuples(NAMES, inner), min_size=1, max_size=3, unique_by=lambda f: f[0])
            .map(dict)
            .map(pl.Struct),
        ),
        max_leaves=3,
    )


def _physical(dtype: pl.DataType) -> pl.DataType:
    """The type values are generated in: temporal types as their integers, so any is reachable."""
    if dtype == pl.Date:
        return pl.Int32
    if isinstance(dtype, pl.Datetime | pl.Duration) or dtype == pl.Time:
        return pl.Int64
    if isinstance(dtype, pl.List):
        return pl.List(_physical(dtype.inner))
    if isinstance(dtype, pl.Array):
        return pl.Array(_physical(dtype.inner), dtype.size)
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _physical(f.dtype) for f in dtype.fields})
    return dtype


def _int_range(dtype: pl.DataType, narrow: bool) -> tuple[int, int]:
    bits = BITS[dtype]
    if dtype in (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64):
        low, high = 0, 2**bits - 1
    else:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return (max(low, -(2**53)), min(high, 2**53)) if narrow else (low, high)


def values(dtype: pl.DataType, fmt: str) -> st.SearchStrategy:
    """Python values for `dtype` in its physical form, nulls included.

    For a format that refuses some values, three draws in four are values it holds, so that
    most examples reach the file; the rest come from the type's whole range and must then be
    refused, naming the column.
    """
    excel, refusing = fmt == "excel", fmt in ("excel", "json")

    def pick(inside: st.SearchStrategy, anywhere: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(inside, inside, inside, anywhere) if refusing else anywhere

    if dtype in INTS:
        exact = st.integers(*_int_range(dtype, excel))
        return st.none() | pick(exact, st.integers(*_int_range(dtype, False)))
    if dtype in (pl.Float32, pl.Float64):
        width = 32 if dtype == pl.Float32 else 64
        specials = st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0])
        anything = st.floats(width=width) | specials  # NaN and infinities often, not by luck
        if not excel:
            return st.none() | anything
        return st.none() | pick(
            st.floats(width=width, allow_nan=False, allow_infinity=False), anything
        )
    if dtype == pl.String:
        odd = st.sampled_from(["", "\x00", " ", "a\r\nb", '"', "_x0041_", "=1+1", "NaN", "null"])
        long = st.builds(
            lambda c, n: c * n, st.sampled_from(["x", "😀"]), st.sampled_from([16_383, 32_768])
        )
        held = st.text(max_size=12) | odd
        return st.none() | (pick(held, held | long | st.just("a\ufffe")) if excel else held | long)
    if dtype == pl.Boolean:
        return st.none() | st.booleans()
    if dtype == pl.Binary:
        return st.none() | st.binary(max_size=8)
    if dtype == pl.Date:
        inside = st.integers(*(DAYS_EXCEL if excel else DAYS_1_TO_9999))
        return st.none() | pick(inside, st.integers(-DAYS_CHRONO, DAYS_CHRONO))
    if isinstance(dtype, pl.Datetime):
        per_day = PER_DAY[dtype.time_unit]
        first, last = DAYS_EXCEL if excel else DAYS_1_TO_9999
        if dtype.time_unit == "ns":  # 1677..2262: inside years 1..9999 whatever the value
            wide = st.integers(-(2**63) + 1, 2**63 - 1)
            inside = st.integers(first * per_day, 2**63 - 1) if excel else wide
        else:
            inside = st.integers(first * per_day, (last + 1) * per_day - 1)
            wide = st.integers(-DAYS_CHRONO * per_day, DAYS_CHRONO * per_day)
        return st.none() | pick(inside, wide)
    if isinstance(dtype, pl.Duration):
        return st.none() | st.integers(-(2**63), 2**63 - 1)
    if dtype == pl.Time:
        return st.none() | st.integers(0, 86_400 * 10**9 - 1)
    if isinstance(dtype, pl.Decimal):
        precision, scale = dtype.precision, dtype.scale
        digits = st.integers(-(10**precision) + 1, 10**precision - 1)
        if excel:  # mostly what a float keeps exactly: 15 significant digits
            digits = pick(st.integers(-(10**15) + 1, 10**15 - 1), digits)
        bound = 10**precision - 1
        exact = decimal.Context(prec=80)  # the default context keeps 28 digits
        return st.none() | digits.map(
            lambda d: Decimal(max(-bound, min(bound, d))).scaleb(-scale, exact)
        )
    if isinstance(dtype, pl.List):
        return st.none() | st.lists(values(dtype.inner, fmt), max_size=3)
    if isinstance(dtype, pl.Array):
        return st.none() | st.lists(
            values(dtype.inner, fmt), min_size=dtype.size, max_size=dtype.size
        )
    if isinstance(dtype, pl.Struct):
        return st.none() | st.fixed_dictionaries(
            {f.name: values(f.dtype, fmt) for f in dtype.fields}
        )
    raise AssertionError(f"no values for {dtype}")


@st.composite
def frames(draw: st.DrawFn, fmt: str) -> pl.DataFrame:
    """A frame of 0-6 rows whose columns have types `fmt` claims, with odd names and values."""
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    height = draw(st.integers(0, 6))
    columns = []
    for name in names:
        dtype = draw(dtypes(fmt))
        rows = draw(st.lists(values(dtype, fmt), min_size=height, max_size=height))
        columns.append(pl.Series(name, rows, dtype=_physical(dtype)).cast(dtype))
    return pl.DataFrame(columns)


def expected_after(fmt: FileFormat, frame: pl.DataFrame) -> pl.DataFrame:
    """What reads back: the frame itself, but for the table's documented conversions."""
    if not isinstance(fmt, ExcelFormat):
        return frame
    # Datetimes are truncated to whole milliseconds, counted on the physical value: polars'
    # dt.truncate is off near the end of the ns range for aware values.
    per_ms = {"ms": 1, "us": 1_000, "ns": 1_000_000}
    return frame.with_columns(
        (cs.by_name(c).as_expr().cast(pl.Int64) // per_ms[t.time_unit] * per_ms[t.time_unit]).cast(
            t
        )
        for c, t in frame.schema.items()
        if isinstance(t, pl.Datetime)
    )


def refused(fmt: FileFormat, frame: pl.DataFrame) -> list[str]:
    """The columns whose refusals hit a row of `frame`, evaluated directly."""
    refusals = fmt.refusals(frame.schema)
    if not refusals:
        return []
    hits = frame.select(
        [r.bad.fill_null(False).any().alias(str(i)) for i, r in enumerate(refusals)]
    )
    return [r.column for r, hit in zip(refusals, hits.row(0), strict=True) if hit]


def python_can_show(frame: pl.DataFrame) -> bool:
    """Whether seam.validate can quote the first refused value in its message.

    It quotes it through Python, which has no form for dates past 9999, and selects the column
    by a name polars may read as a pattern (`*`, `^...$`): limits of core's message (reported),
    not of the formats' refusals tested here.
    """
    if any(c == "*" or (c.startswith("^") and c.endswith("$")) for c in frame.columns):
        return False
    try:
        frame.rows()
    except (ValueError, OverflowError, PanicException):
        return False
    return True


def check_property(fmt_name: str, frame: pl.DataFrame) -> None:
    """`frame` reads back as written (but for documented conversions), or is refused first."""
    fmt = FORMATS[fmt_name]()
    note(repr(frame.schema))
    columns = refused(fmt, frame)
    if columns:  # refused before anything is written, naming a column
        if python_can_show(frame):
            message = refusal_of(fmt, frame)
            assert any(f"column `{c}`" in message for c in columns), message
        return
    seam.validate(frame.lazy(), seam.WriteSettings(), None, fmt.refusals(frame.schema))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"data.{fmt.ext}")
        written = fmt.write(frame.lazy(), path, batch_rows=4)
        back = fmt.scan(path, FileRecord(frame.schema, written.encoding)).collect()
    expected = expected_after(fmt, frame)
    assert_frame_equal(back, expected, check_exact=True)
    roundtrip.assert_reconciles(fmt.landing, frame, back)  # the declared table says the same
    for column, dtype in expected.schema.items():  # the sign of a zero too
        if dtype in (pl.Float32, pl.Float64):
            assert back[column].cast(pl.String).equals(expected[column].cast(pl.String))


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(frames("json"))
def test_json_round_trips_every_claimed_type(frame: pl.DataFrame) -> None:
    check_property("json", frame)


@PROPERTY
@given(frames("csv"))
def test_csv_round_trips_every_claimed_type(frame: pl.DataFrame) -> None:
    check_property("csv", frame)


@PROPERTY
@given(frames("excel"))
def test_excel_round_trips_every_claimed_type(frame: pl.DataFrame) -> None:
    check_property("excel", frame)


@PROPERTY
@given(frames("feather"))
def test_feather_round_trips_every_claimed_type(frame: pl.DataFrame) -> None:
    check_property("feather", frame)


@PROPERTY
@given(frames("parquet"))
def test_parquet_round_trips_every_claimed_type(frame: pl.DataFrame) -> None:
    check_property("parquet", frame)


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_keeps_the_sign_of_zero(tmp_path, name: str) -> None:
    fmt = FORMATS[name]()
    frame = pl.DataFrame(
        {
            "f64": [-0.0, 0.0, None],
            "f32": pl.Series([-0.0, 0.0, None], dtype=pl.Float32),
        }
    )
    if name in NESTED:
        frame = frame.with_columns(
            listed=pl.Series([[-0.0], [0.0, -0.0], None]),
            inside=pl.Series([{"x": -0.0}, {"x": 0.0}, None]),
        )
    back = write_and_read(fmt, frame, str(tmp_path))
    roundtrip.assert_reconciles(fmt.landing, frame, back)  # which hashes -0.0 apart from 0.0
    signs = back.select(pl.col("f64", "f32").cast(pl.String)).rows()
    assert signs == [("-0.0", "-0.0"), ("0.0", "0.0"), (None, None)]
