"""A file edited behind the manager's back, its schema sidecar refreshed so that it "matches":
the reader refuses what does not fit the recorded types exactly, naming the row and the column,
and so the reconciliation check sees what the file really holds."""

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from honey_duck.targets.files import FileIOManager
from honey_duck.targets.files.store import identity
from honey_duck_tests.contract.reconciling import reconciled

FRAME = pl.DataFrame(
    {
        "id": [1, 2, 3],
        "qty": [10, 20, 30],
        "day": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)],
        "amount": pl.Series([Decimal("1.25"), Decimal("2.50"), Decimal("3.75")]).cast(
            pl.Decimal(10, 2)
        ),
        "tags": [{"k": 1}, {"k": 2}, {"k": 3}],
    }
)
FLAT = FRAME.drop("tags")  # CSV and Excel hold no structs


def refresh_sidecar(path: Path) -> None:
    """Record the edited file's size and digest in its sidecar, as a careful editor would."""
    sidecar = path.with_name(path.name + ".schema")
    doc = json.loads(sidecar.read_text())
    doc.update(identity(str(path)).as_json())
    sidecar.write_text(json.dumps(doc))


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    change(row)
    lines[1] = json.dumps(row, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")


def edit_csv(path: Path, column: str | None, text: str) -> None:
    lines = path.read_text().splitlines()
    if column is None:  # a column the record does not know
        lines = [lines[0] + ",extra"] + [line + ",1" for line in lines[1:]]
    else:
        fields = lines[2].split(",")
        fields[lines[0].split(",").index(column)] = text
        lines[2] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


def edit_excel(path: Path, column: str | None, value: object) -> None:
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    if column is None:
        sheet.cell(1, len(header) + 1, "extra")
        sheet.cell(3, len(header) + 1, 1)
    else:
        sheet.cell(3, header.index(column) + 1, value)
    book.save(path)


JSON_EDITS = {
    "a fraction in an Int64 column": ("qty", lambda row: row.update(qty=20.5)),
    "a time of day in a Date column": ("day", lambda row: row.update(day="2024-01-02 12:00:00")),
    "a digit past a decimal's scale": ("amount", lambda row: row.update(amount="2.505")),
    "a field the record does not know": ("extra", lambda row: row.update(extra=1)),
    "a field inside a struct": ("tags", lambda row: row["tags"].update(more=1)),
    "a number written as text": ("qty", lambda row: row.update(qty="20")),
    # polars' own decoder fails on it, quoting the value: the reader names the row instead
    "text in a struct's integer field": ("tags", lambda row: row["tags"].update(k="hunter2")),
    "a list in a struct's integer field": ("tags", lambda row: row["tags"].update(k=[1])),
}
CSV_EDITS = {
    "a fraction in an Int64 column": ("qty", "20.5"),
    "a time of day in a Date column": ("day", "2024-01-02T12:00:00"),
    "a digit past a decimal's scale": ("amount", "2.505"),
    "a column the record does not know": (None, ""),
}
EXCEL_EDITS = {
    "a fraction in an Int64 column": ("qty", 20.5),
    "a time of day in a Date column": ("day", datetime(2024, 1, 2, 12)),
    "a digit past a decimal's scale": ("amount", 2.505),
    "a column the record does not know": (None, None),
    "a number in a Boolean column": ("flag", 1),
}


def written(tmp_path: Path, fmt: str, frame: pl.DataFrame):
    sink = FileIOManager(format=fmt, base_path=str(tmp_path / "out"))
    run = reconciled(tmp_path, sink, frame, metadata={"reconcile_keys": ["id"]})
    assert run.write().passed
    ext = {"excel": "xlsx"}.get(fmt, fmt)
    return run, tmp_path / "out" / "t" / f"table.{ext}"


def assert_refused(run, column: str) -> None:
    verdict = run.check()
    assert not verdict.passed, verdict.description
    assert "could not be read back" in verdict.description
    assert "data row 2" in verdict.description or "not in its schema record" in verdict.description
    assert f"`{column}`" in verdict.description or f"'{column}'" in verdict.description
    for value in ("2.505", "20.5", "hunter2"):  # never a value
        assert value not in verdict.description, verdict.description


@pytest.mark.parametrize("edit", JSON_EDITS, ids=list(JSON_EDITS))
def test_json_reader_refuses_a_value_that_does_not_fit_exactly(tmp_path: Path, edit: str) -> None:
    column, change = JSON_EDITS[edit]
    run, path = written(tmp_path, "json", FRAME)
    edit_json(path, change)
    refresh_sidecar(path)
    assert_refused(run, column)


@pytest.mark.parametrize("edit", CSV_EDITS, ids=list(CSV_EDITS))
def test_csv_reader_refuses_a_value_that_does_not_fit_exactly(tmp_path: Path, edit: str) -> None:
    column, text = CSV_EDITS[edit]
    run, path = written(tmp_path, "csv", FLAT)
    edit_csv(path, column, text)
    refresh_sidecar(path)
    assert_refused(run, column or "extra")


@pytest.mark.parametrize("edit", EXCEL_EDITS, ids=list(EXCEL_EDITS))
def test_excel_reader_refuses_a_cell_that_does_not_fit_exactly(tmp_path: Path, edit: str) -> None:
    column, value = EXCEL_EDITS[edit]
    run, path = written(tmp_path, "excel", FLAT.with_columns(flag=pl.lit(True)))
    edit_excel(path, column, value)
    refresh_sidecar(path)
    assert_refused(run, column or "extra")


@pytest.mark.parametrize("fmt", ["json", "csv", "excel"])
def test_an_unedited_file_with_a_refreshed_sidecar_still_passes(tmp_path: Path, fmt: str) -> None:
    run, path = written(tmp_path, fmt, FRAME if fmt == "json" else FLAT)
    refresh_sidecar(path)
    verdict = run.check()
    assert verdict.passed, verdict.description


def test_a_json_sidecar_written_before_encodings_were_recorded_still_reads(tmp_path: Path) -> None:
    frame = pl.DataFrame({"id": [1, 2], "ratio": [float("nan"), -0.0]})
    run, path = written(tmp_path, "json", frame)
    sidecar = path.with_name(path.name + ".schema")
    doc = json.loads(sidecar.read_text())
    assert doc.pop("encoding") == {"text_floats": ["ratio"]}
    sidecar.write_text(json.dumps(doc))  # as the sink wrote it before: the types alone
    verdict = run.check()
    assert verdict.passed, verdict.description


@pytest.mark.parametrize("stored", [424242, [1], {"at": 1}])
def test_json_reader_refuses_a_datetime_of_another_json_type(tmp_path: Path, stored) -> None:
    """A datetime column is decoded as a datetime, and polars' decoder fails quoting the value:
    the reader names the row and the column instead."""
    frame = pl.DataFrame({"id": [1, 2], "at": [datetime(2024, 1, 1), datetime(2024, 1, 2)]})
    run, path = written(tmp_path, "json", frame)
    edit_json(path, lambda row: row.update(at=stored))
    refresh_sidecar(path)
    verdict = run.check()
    assert not verdict.passed, verdict.description
    assert "data row 2" in verdict.description and "`at`" in verdict.description
    assert "424242" not in verdict.description and "Static" not in verdict.description
