"""The standard metadata of every output, and the stopwatch that times a write."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
import polars as pl

from honey_duck.seam.partitions import PartitionSlice
from honey_duck.seam.settings import WriteMode, WriteSettings
from honey_duck.seam.validate import Checked


class Stopwatch:
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch, start = Stopwatch(), time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start


def column_schema(
    schema: Mapping[str, pl.DataType], descriptions: Mapping[str, str | None] | None = None
) -> dg.TableSchema:
    """The stored columns and their types, with the meanings the asset declares."""
    meaning = descriptions or {}
    return dg.TableSchema(
        columns=[dg.TableColumn(n, str(t), description=meaning.get(n)) for n, t in schema.items()]
    )


def declared_descriptions(metadata: Mapping[str, Any]) -> dict[str, str | None]:
    """Column meanings from an asset's `dagster/column_schema` definition metadata."""
    declared = metadata.get("dagster/column_schema")
    if not isinstance(declared, dg.TableSchema):
        declared = getattr(declared, "value", None)  # a TableSchemaMetadataValue
    columns = getattr(declared, "columns", None) or []
    return {c.name: c.description for c in columns if c.description}


def output_metadata(
    *,
    table: str,
    uri: str,
    storage_kind: str,
    schema: Mapping[str, pl.DataType],
    rows: int,
    settings: WriteSettings,
    seconds: float,
    partitions: PartitionSlice | None = None,
    rows_written: int | None = None,
    descriptions: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The standard metadata of every honey_duck output (never a credential)."""
    meta: dict[str, Any] = {
        "dagster/column_schema": column_schema(schema, descriptions),
        "dagster/table_name": table,
        "dagster/uri": dg.MetadataValue.text(uri),
        "dagster/storage_kind": storage_kind,
        "honey_duck/write_mode": settings.mode.value,
        "honey_duck/write_seconds": dg.MetadataValue.float(round(seconds, 4)),
    }
    if settings.mode is WriteMode.UPSERT:
        meta["honey_duck/upsert_keys"] = ", ".join(settings.keys)
    if rows_written is not None:
        meta["honey_duck/rows_written"] = dg.MetadataValue.int(rows_written)
    if partitions is not None and len(partitions.parts) > 1:
        # Dagster copies a range run's metadata onto every partition's materialization, so a
        # range figure must not wear a per-partition name; each partition's own count and
        # location come as an observation of it (`partition_observations`).
        meta["honey_duck/range_row_count"] = dg.MetadataValue.int(rows)
        meta["honey_duck/range"] = partitions.label()
    else:
        meta["dagster/partition_row_count" if partitions else "dagster/row_count"] = (
            dg.MetadataValue.int(rows)
        )
    return meta


def partition_observations(
    key: dg.AssetKey,
    partitions: PartitionSlice,
    checked: Checked,
    settings: WriteSettings,
    uri: Callable[[PartitionSlice], str],
) -> list[dg.AssetObservation]:
    """One observation per partition of a range write: its own rows and its own location.

    After a replace the rows written are the rows the partition holds; after an append or an
    upsert they are not, so only `rows_written` is reported then.
    """
    observations = []
    for part in partitions.parts:
        written = checked.rows_by_part.get(part.key, 0)
        meta: dict[str, Any] = {
            "honey_duck/rows_written": dg.MetadataValue.int(written),
            "dagster/uri": dg.MetadataValue.text(uri(PartitionSlice((part,)))),
        }
        if settings.mode is WriteMode.REPLACE:
            meta["dagster/partition_row_count"] = dg.MetadataValue.int(written)
        observations.append(dg.AssetObservation(key, partition=part.key, metadata=meta))
    return observations
