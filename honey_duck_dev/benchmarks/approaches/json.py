"""JSON (newline-delimited): our file sink against json.dumps per row and polars' `sink_ndjson`,
whole and monthly."""

from __future__ import annotations

import json
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
    """Every row as a dict, one `json.dumps` and write per row."""
    with open(out / f"{TABLE}.json", "w") as f:
        for row in dicts(source):
            f.write(json.dumps(row, default=str) + "\n")


def floor(source: Path, out: Path) -> None:
    pl.scan_parquet(source).sink_ndjson(out / f"{TABLE}.json")


def collect(source: Path, out: Path) -> None:
    pl.scan_parquet(source).collect().write_ndjson(out / f"{TABLE}.json")


def count(out: Path) -> int:
    query = "SELECT count(*) FROM read_json(?, format='newline_delimited')"
    return duckdb_count(query, str(only(out, "json")))


OURS = _files.ours("json")

SINKS = {
    "json": Sink(
        count,
        {
            "ours": OURS,
            "naive": per_row(f"{TO_DICTS} → json.dumps(default=str) + write per row", naive),
            "floor": plain("scan_parquet → sink_ndjson", floor),
        },
        collect=plain("collect() → write_ndjson", collect),
    ),
    "json_monthly": Sink(
        _files.count_monthly("json"),
        {"ours": _files.ours_monthly("json"), "floor": _files.floor_monthly("json", "json")},
    ),
}

CHECKS: dict[str, Checked] = {"json": _files.checked("json", OURS)}
