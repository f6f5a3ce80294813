"""Feather (Arrow IPC, zstd): our file sink against pyarrow from dicts and polars' `sink_ipc`."""

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
from honey_duck_dev.benchmarks.inputs import TABLE


def naive(source: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather

    feather.write_feather(pa.Table.from_pylist(dicts(source)), out / f"{TABLE}.feather")


def floor(source: Path, out: Path) -> None:
    # zstd, as our sink writes it: the same bytes, so the ratio is the framework's cost alone.
    pl.scan_parquet(source).sink_ipc(out / f"{TABLE}.feather", compression="zstd")


def collect(source: Path, out: Path) -> None:
    pl.scan_parquet(source).collect().write_ipc(out / f"{TABLE}.feather", compression="zstd")


def count(out: Path) -> int:
    import pyarrow.ipc

    with pyarrow.ipc.open_file(only(out, "feather")) as reader:
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


OURS = _files.ours("feather")

SINKS = {
    "feather": Sink(
        count,
        {
            "ours": OURS,
            "naive": per_row(
                f"{TO_DICTS} → pa.Table.from_pylist → feather.write_feather",
                naive,
                "pandas",
                "pyarrow",
                "pyarrow.feather",
            ),
            "floor": plain("scan_parquet → sink_ipc(compression='zstd')", floor),
        },
        collect=plain("collect() → write_ipc(compression='zstd')", collect),
    ),
}

CHECKS: dict[str, Checked] = {"feather": _files.checked("feather", OURS)}
