"""The asset group every destination gets: the same tables, landed through its IO manager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import polars as pl

from honey_duck.pipeline import MONTHLY
from honey_duck.pipeline.transforms import column_metadata

# Definition metadata our own IO managers act on (the official ones ignore it).
MODES: Mapping[str, Mapping[str, Any]] = {
    "sales_enriched": {"write_mode": "replace"},
    "artworks_summary": {"write_mode": "upsert", "upsert_keys": ["artwork_id"]},
    "sales_monthly": {"write_mode": "replace"},
}
# The columns that name a row, shown as examples when a reconciliation check finds a difference.
ROW_KEYS = {
    "sales_enriched": ["sale_id"],
    "artworks_summary": ["artwork_id"],
    "sales_monthly": ["sale_id"],
}
DESCRIPTIONS = {
    "sales_enriched": "Every sale with its artwork, artist and price tier",
    "artworks_summary": "One row per artwork: sales count, revenue, first and last sale",
    "sales_monthly": "Enriched sales, one partition per month of sale_date",
}


def sink_assets(
    sink: str,
    *,
    kinds: set[str],
    eager: bool = False,
    modes: bool = True,
    backfill: dg.BackfillPolicy | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    pool: str | None = None,
) -> list[dg.AssetsDefinition]:
    """Build `sink`'s group: `<sink>/sales_enriched`, `.../artworks_summary`, `.../sales_monthly`.

    `eager` collects the frame for IO managers that take only DataFrames; `modes` adds the
    write-mode metadata our own managers honour; `backfill` overrides the single-run policy
    for managers that store one partition per run; `overrides` replaces a table's write-mode
    metadata for a sink that keeps other modes (a broker's topics need message keys); `pool`
    puts every write of a server-backed sink in one Dagster concurrency pool, so the instance
    can cap how many steps load into that server at once.
    """

    def build(table: str, **partitioning: Any) -> dg.AssetsDefinition:
        metadata = dict((overrides or {}).get(table, MODES[table])) if modes else {}
        metadata["reconcile_keys"] = ROW_KEYS[table]
        metadata.update(column_metadata(table))  # the columns and what they mean, in the UI
        if partitioning:
            metadata["partition_expr"] = "sale_date"

        if eager:

            def land(frame: pl.LazyFrame) -> pl.DataFrame:
                return frame.collect()
        else:
            # dagster-polars picks its writer from the annotation, so say LazyFrame exactly.
            def land(frame: pl.LazyFrame) -> pl.LazyFrame:
                return frame

        return dg.asset(
            name=table,
            key_prefix=[sink],
            group_name=sink,
            io_manager_key=f"{sink}_io_manager",
            ins={"frame": dg.AssetIn(table)},
            kinds=kinds,
            description=f"{DESCRIPTIONS[table]}, in {sink}.",
            metadata=metadata,
            pool=pool,
            **partitioning,
        )(land)

    return [
        build("sales_enriched"),
        build("artworks_summary"),
        build(
            "sales_monthly",
            partitions_def=MONTHLY,
            backfill_policy=backfill or dg.BackfillPolicy.single_run(),
        ),
    ]
