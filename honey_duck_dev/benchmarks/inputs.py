"""The benchmark input: generated sales enriched once, stored as Parquet, cached by row count."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

TABLE = "sales_enriched"  # every approach lands the same table under this name


@dataclass(frozen=True)
class Input:
    """One prepared input file and what it holds."""

    path: Path
    rows: int
    arrow_bytes: int  # in-memory Arrow size of the whole table: the basis of MB/s
    file_bytes: int

    @property
    def arrow_mb(self) -> float:
        return self.arrow_bytes / 1e6


def _describe(path: Path) -> Input:
    frame = pl.read_parquet(path)
    return Input(path, frame.height, int(frame.estimated_size()), path.stat().st_size)


def prepare(cache: Path, rows: int, *, log: Callable[[str], None] = print) -> Input:
    """Generate `rows` sales and enrich them into `cache/<table>-<rows>.parquet`, once."""
    import warnings

    target = cache / f"{TABLE}-{rows}.parquet"
    if target.exists():  # before importing Dagster and the pipeline: seconds a cache hit saves
        return _describe(target)
    import dagster as dg

    with warnings.catch_warnings():  # the pipeline's asset definitions use beta parameters
        warnings.simplefilter("ignore", dg.BetaWarning)
        from honey_duck.pipeline.generate import generate
        from honey_duck.pipeline.sources import SCHEMAS
        from honey_duck.pipeline.transforms import sales_enriched

    cache.mkdir(parents=True, exist_ok=True)
    raw = cache / f"raw-{rows}"
    start = time.perf_counter()
    paths = generate(raw, sales=rows)
    scans = {name: pl.scan_csv(p, schema=SCHEMAS[name]) for name, p in paths.items()}
    # The pipeline's own transform, invoked as a plain function: the same columns, types and order.
    enriched = sales_enriched(
        sales=scans["sales"], artworks=scans["artworks"], artists=scans["artists"]
    )
    partial = target.with_name(f".{target.name}.tmp")
    enriched.sink_parquet(partial)
    partial.replace(target)  # a run killed half-way never leaves a truncated cache entry
    for p in paths.values():
        p.unlink()
    raw.rmdir()
    log(f"prepared {rows:,} enriched sales in {time.perf_counter() - start:.1f}s: {target}")
    return _describe(target)


def head(source: Input, rows: int) -> Input:
    """The first `rows` rows of `source` as their own file (the naive per-row approaches' input)."""
    if rows >= source.rows:
        return source
    target = source.path.with_name(f"{source.path.stem}-head{rows}.parquet")
    if not target.exists():
        partial = target.with_name(f".{target.name}.tmp")
        pl.scan_parquet(source.path).head(rows).sink_parquet(partial)
        partial.replace(target)
    return _describe(target)
