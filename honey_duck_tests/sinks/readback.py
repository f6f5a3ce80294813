"""How the sink tests compare what landed with what the pipeline computed."""

from collections.abc import Callable
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from honey_duck_tests.conftest import LocalRun

KEYS = {"sales_enriched": "sale_id", "artworks_summary": "artwork_id", "sales_monthly": "sale_id"}


def assert_same_rows(landed: pl.DataFrame, expected: pl.DataFrame, key: str) -> None:
    """Equal values, column by column, whatever row order or integer width the reader gives."""
    landed = landed.select(expected.columns).sort(key)
    assert_frame_equal(landed, expected.sort(key), check_dtypes=False)


def assert_files_land(
    run: LocalRun, sink: str, ext: str, read: Callable[[Path], pl.DataFrame]
) -> None:
    """Each table and every monthly partition file, read by `read`, equals the pipeline's."""
    root = run.env.home / "output" / sink
    for table in ("sales_enriched", "artworks_summary"):
        assert_same_rows(read(root / f"{table}.{ext}"), run.storage(table), KEYS[table])
    months = sorted((root / "sales_monthly").glob(f"*.{ext}"))
    assert len(months) == 24  # 2024-01 .. 2025-12, one file per partition
    assert months[0].name == f"2024-01-01.{ext}"
    landed = pl.concat([read(m) for m in months], how="vertical_relaxed")
    assert_same_rows(landed, run.storage("sales_monthly"), "sale_id")


def assert_idempotent(run: LocalRun, sink: str) -> None:
    """The second materialization rewrote every file of `sink` with the same bytes."""
    now = {
        k: v.read_bytes()
        for k, v in (
            (str(p.relative_to(run.env.home / "output")), p)
            for p in (run.env.home / "output" / sink).rglob("*")
            if p.is_file()
        )
    }
    before = {k: v for k, v in run.first.items() if k.startswith(f"{sink}/")}
    assert now.keys() == before.keys()
    changed = sorted(k for k in now if now[k] != before[k])
    assert not changed, f"rewritten with different bytes: {changed}"
