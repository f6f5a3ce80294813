"""Blocking data-quality checks on the source assets: keys, foreign keys and prices."""

from collections.abc import Callable

import dagster as dg
import polars as pl

from honey_duck.pipeline.sources import artists, artworks, sales

SAMPLE_SIZE = 5


def _row_check(
    asset: dg.AssetsDefinition,
    name: str,
    description: str,
    find_offenders: Callable[..., pl.LazyFrame],
    sample_column: str,
    reference_asset: dg.AssetsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    """Build a blocking check that passes when find_offenders(frame[, reference]) is empty."""

    def evaluate(frame: pl.LazyFrame, offenders: pl.LazyFrame) -> dg.AssetCheckResult:
        totals, found = pl.collect_all(
            [
                frame.select(rows=pl.len()),
                offenders.select(
                    offending=pl.len(),
                    sample=pl.col(sample_column).unique().sort().head(SAMPLE_SIZE).implode(),
                ),
            ]
        )
        rows, offending, sample = totals.item(), found["offending"].item(), found["sample"].item()
        return dg.AssetCheckResult(
            passed=offending == 0,
            description=(
                description
                if offending == 0
                else f"Failed on {offending:,} of {rows:,} rows: {description}"
            ),
            metadata={
                "rows": rows,
                "offending_rows": offending,
                f"sample_{sample_column}": sample.to_list(),
            },
        )

    if reference_asset is None:

        @dg.asset_check(asset=asset, name=name, description=description, blocking=True)
        def _check(frame: pl.LazyFrame) -> dg.AssetCheckResult:
            return evaluate(frame, find_offenders(frame))

    else:

        @dg.asset_check(
            asset=asset,
            name=name,
            description=description,
            blocking=True,
            additional_ins={"reference": dg.AssetIn(key=reference_asset.key)},
        )
        def _check(frame: pl.LazyFrame, reference: pl.LazyFrame) -> dg.AssetCheckResult:
            return evaluate(frame, find_offenders(frame, reference))

    return _check


def unique(asset: dg.AssetsDefinition, column: str) -> dg.AssetChecksDefinition:
    """Check that no two rows share a value of column."""
    return _row_check(
        asset,
        f"{column}_is_unique",
        f"Every {column} is unique.",
        lambda frame: frame.filter(pl.col(column).is_duplicated()),
        sample_column=column,
    )


def not_null(asset: dg.AssetsDefinition, columns: list[str]) -> dg.AssetChecksDefinition:
    """Check that the key columns are never null; reports 0-based row indexes."""
    return _row_check(
        asset,
        "keys_are_not_null",
        f"No row has a null {' or '.join(columns)}.",
        lambda frame: frame.with_row_index("row_index").filter(
            pl.any_horizontal(pl.col(columns).is_null())
        ),
        sample_column="row_index",
    )


def references(
    asset: dg.AssetsDefinition, column: str, target: dg.AssetsDefinition
) -> dg.AssetChecksDefinition:
    """Check that every non-null value of column is a key of target (same column name)."""
    table = target.key.to_user_string()
    return _row_check(
        asset,
        f"{column}_exists_in_{table}",
        f"Every {column} exists in {table}.",
        lambda frame, reference: frame.filter(pl.col(column).is_not_null()).join(
            reference.select(column), on=column, how="anti"
        ),
        sample_column=column,
        reference_asset=target,
    )


def non_negative(
    asset: dg.AssetsDefinition, column: str, id_column: str
) -> dg.AssetChecksDefinition:
    """Check that column is present and >= 0 on every row."""
    return _row_check(
        asset,
        f"{column}_is_non_negative",
        f"Every {column} is present and at least zero.",
        lambda frame: frame.filter(pl.col(column).is_null() | (pl.col(column) < 0)),
        sample_column=id_column,
    )


asset_checks = [
    unique(artists, "artist_id"),
    not_null(artists, ["artist_id"]),
    unique(artworks, "artwork_id"),
    not_null(artworks, ["artwork_id", "artist_id"]),
    references(artworks, "artist_id", artists),
    non_negative(artworks, "list_price_usd", "artwork_id"),
    unique(sales, "sale_id"),
    not_null(sales, ["sale_id", "artwork_id"]),
    references(sales, "artwork_id", artworks),
    non_negative(sales, "sale_price_usd", "sale_id"),
]
