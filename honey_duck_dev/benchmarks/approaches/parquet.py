"""Parquet: our file sink against pyarrow from dicts, dagster-polars' official manager and
polars' `sink_parquet`, whole and monthly."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from honey_duck_dev.benchmarks.approaches import _files
from honey_duck_dev.benchmarks.approaches._base import (
    TO_DICTS,
    Checked,
    Sink,
    dicts,
    only,
    per_row,
    plain,
)
from honey_duck_dev.benchmarks.approaches._dagster import through_dagster
from honey_duck_dev.benchmarks.inputs import TABLE


def naive(source: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(dicts(source)), out / f"{TABLE}.parquet")


def official_manager(out: Path) -> object:
    """dagster-polars' `PolarsParquetIOManager` (streams a LazyFrame with `sink_parquet`)."""
    from dagster_polars import PolarsParquetIOManager

    return PolarsParquetIOManager(base_dir=str(out))


def floor(source: Path, out: Path) -> None:
    pl.scan_parquet(source).sink_parquet(out / f"{TABLE}.parquet")


def collect(source: Path, out: Path) -> None:
    pl.scan_parquet(source).collect().write_parquet(out / f"{TABLE}.parquet")


def count(out: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(only(out, "parquet")).metadata.num_rows


def official_readback(out: Path) -> object:
    from honey_duck.targets.parquet import readback

    return readback(official_manager(out))


OURS = _files.ours("parquet")
OFFICIAL = through_dagster(
    "dagster-polars PolarsParquetIOManager via dg.materialize", official_manager, "dagster_polars"
)

SINKS = {
    "parquet": Sink(
        count,
        {
            "ours": OURS,
            "naive": per_row(
                f"{TO_DICTS} → pa.Table.from_pylist → pq.write_table",
                naive,
                "pandas",
                "pyarrow",
                "pyarrow.parquet",
            ),
            "official": OFFICIAL,
            "floor": plain("scan_parquet → sink_parquet", floor),
        },
        collect=plain("collect() → write_parquet", collect),
    ),
    "parquet_monthly": Sink(
        _files.count_monthly("parquet"),
        {
            "ours": _files.ours_monthly("parquet"),
            "floor": _files.floor_monthly("parquet", "parquet"),
        },
    ),
}

CHECKS: dict[str, Checked] = {
    "parquet": _files.checked("parquet", OURS),
    "parquet_official": Checked(
        "parquet",
        "official",
        OFFICIAL,
        official_readback,
        "honey_duck.targets.parquet.readback: scan_parquet",
    ),
}
