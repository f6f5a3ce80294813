"""The one validation pass before anything is written: counts, slices, keys, refusals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from honey_duck.seam.partitions import PartitionSlice
from honey_duck.seam.settings import WriteMode, WriteSettings


@dataclass(frozen=True)
class Refusal:
    """Values of one column that a target cannot hold exactly, refused before anything is written.

    `bad` is True on a row whose value the target would change or lose (NaN in JSON, a date
    Excel cannot represent); the validation pass counts such rows for every refusal at once.
    """

    column: str
    bad: pl.Expr
    why: str


@dataclass(frozen=True)
class Checked:
    """What one validation pass learned about the incoming rows."""

    rows: int
    rows_by_part: dict[str, int]


def validate(
    frame: pl.LazyFrame,
    settings: WriteSettings,
    partitions: PartitionSlice | None,
    refusals: Sequence[Refusal] = (),
    unique_keys: bool = False,
) -> Checked:
    """Check, before anything is written, everything that would make the write wrong.

    One streaming pass computes the row count, rows per partition, rows outside the slice,
    null keys, duplicate keys and the values the target would not keep (`refusals`). Keys are
    checked for an upsert, and for every mode when `unique_keys` (a target whose rows are keyed
    by them, such as a compacted topic, would silently keep one of two rows with one key).
    """
    schema = frame.collect_schema()
    aggregates: list[pl.Expr] = [pl.len().alias("__rows")]
    for i, refusal in enumerate(refusals):
        aggregates.append(refusal.bad.fill_null(False).sum().alias(f"__refused_{i}"))
    if partitions is not None:
        for i, part in enumerate(partitions.parts):
            aggregates.append(part.predicate(schema).sum().alias(f"__part_{i}"))
        inside = partitions.predicate(schema)
        aggregates.append((~inside.fill_null(False)).sum().alias("__outside"))
    keyed = settings.mode is WriteMode.UPSERT or unique_keys
    keys = list(settings.keys) if keyed else []
    missing = [k for k in keys if k not in schema]
    if missing:
        raise ValueError(f"upsert key columns {missing} are not in the data")
    if keys:
        aggregates.append(pl.any_horizontal(pl.col(keys).is_null()).sum().alias("__null_keys"))
    # one key column: its distinct count, in the same pass (a hash set of the keys, about two
    # thirds of the memory of a group_by's table); the group_by then runs only to describe
    # duplicates found. Several key columns: the group_by itself.
    single = len(keys) == 1
    if single:
        aggregates.append(pl.col(keys[0]).n_unique().alias("__distinct"))

    def duplicates() -> pl.LazyFrame:
        """How many keys appear more than once."""
        return frame.group_by(keys).len().filter(pl.col("len") > 1).select(pl.len())

    queries = [frame.select(aggregates)]
    if keys and not single:
        queries.append(duplicates())
    results = pl.collect_all(queries, engine="streaming")
    stats = results[0].row(0, named=True)
    if partitions is not None and stats["__outside"]:
        first = _first_row(frame, ~partitions.predicate(schema))
        raise ValueError(
            f"{stats['__outside']} rows fall outside partitions {partitions.label()} by"
            f" {partitions.columns}, the first is row {first}; a sink replaces exactly"
            " its partitions, so filter the asset's output to them"
        )
    refused = [(r, stats[f"__refused_{i}"]) for i, r in enumerate(refusals)]
    if any(count for _, count in refused):
        raise ValueError("; ".join(_refused(frame, r, n) for r, n in refused if n))
    if keys and stats["__null_keys"]:
        raise ValueError(f"{stats['__null_keys']} rows have a null in upsert keys {keys}")
    if single and stats["__distinct"] < stats["__rows"]:
        results.append(duplicates().collect(engine="streaming"))
    if keys and len(results) > 1 and results[1].item(0, 0):
        first, again = _first_repeat(frame, keys)
        raise ValueError(
            f"{results[1].item(0, 0)} upsert keys {keys} appear more than once in the data"
            f" (the first is rows {first} and {again}); deduplicate before writing"
        )
    by_part = (
        {p.key: int(stats[f"__part_{i}"] or 0) for i, p in enumerate(partitions.parts)}
        if partitions is not None
        else {}
    )
    return Checked(int(stats["__rows"]), by_part)


def _refused(frame: pl.LazyFrame, refusal: Refusal, count: int) -> str:
    """One refusal as a sentence: the column, why, how many rows, and the first one's number.

    Never the value itself: errors and logs carry no row's values (a secret or a person's data
    may be one); the row number and the column are what a person needs to find it.
    """
    first = _first_row(frame, refusal.bad)
    where = f", the first is row {first}" if first is not None else ""
    return f"column `{refusal.column}`: {refusal.why} ({count} row{'s' * (count != 1)}{where})"


def _first_row(frame: pl.LazyFrame, bad: pl.Expr) -> int | None:
    """The number (from 0, as every seam message counts) of the first row where `bad` holds."""
    rows = frame.with_row_index("__row").filter(bad.fill_null(False)).select("__row").head(1)
    found = rows.collect()
    return int(found.item()) if found.height else None


def _first_repeat(frame: pl.LazyFrame, keys: list[str]) -> tuple[int, int]:
    """The first two rows (from 0) of the key that repeats first: only when one does."""
    rows = pl.col("__row")
    repeats = (
        frame.with_row_index("__row")
        .group_by(keys)
        .agg(rows.min().alias("__first"), rows.filter(rows > rows.min()).min().alias("__again"))
        .drop_nulls("__again")
        .sort("__first")
        .head(1)
        .collect(engine="streaming")
    )
    return int(repeats["__first"][0]), int(repeats["__again"][0])
