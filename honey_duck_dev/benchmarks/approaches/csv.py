"""CSV: our file sink against csv.DictWriter per row and polars' `sink_csv`, whole and monthly."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from honey_duck_dev.benchmarks.approaches import _files
from honey_duck_dev.benchmarks.approaches._base import (
    TO_DICTS,
    Checked,
    Sink,
    dicts,
    duckdb_count,
    only,
    per_row,
    plain,
)
from honey_duck_dev.benchmarks.inputs import TABLE


def naive(source: Path, out: Path) -> None:
    """Every row as a dict, one `csv.DictWriter.writerow` per row."""
    rows = dicts(source)
    with open(out / f"{TABLE}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def floor(source: Path, out: Path) -> None:
    pl.scan_parquet(source).sink_csv(out / f"{TABLE}.csv")


def collect(source: Path, out: Path) -> None:
    pl.scan_parquet(source).collect().write_csv(out / f"{TABLE}.csv")


def count(out: Path) -> int:
    return duckdb_count("SELECT count(*) FROM read_csv(?)", str(only(out, "csv")))


OURS = _files.ours("csv")

SINKS = {
    "csv": Sink(
        count,
        {
            "ours": OURS,
            "naive": per_row(f"{TO_DICTS} → csv.DictWriter.writerow per row", naive, "csv"),
            "floor": plain("scan_parquet → sink_csv", floor),
        },
        collect=plain("collect() → write_csv", collect),
    ),
    "csv_monthly": Sink(
        _files.count_monthly("csv"),
        {"ours": _files.ours_monthly("csv"), "floor": _files.floor_monthly("csv", "csv")},
    ),
}

CHECKS: dict[str, Checked] = {"csv": _files.checked("csv", OURS)}
