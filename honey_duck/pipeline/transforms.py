"""Transform assets: sales joined to their artworks and artists, and summaries built on them."""

import dagster as dg
import polars as pl

from honey_duck.pipeline.sources import COLUMN_DESCRIPTIONS as SOURCE_COLUMNS
from honey_duck.pipeline.sources import SCHEMAS as SOURCE_SCHEMAS
from honey_duck.pipeline.sources import table_schema

MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2026-01-01")

PRICE_TIER_BREAKS = [1_000, 10_000, 100_000]
PRICE_TIERS = ["budget", "mid", "premium", "masterpiece"]

SALES_ENRICHED_COLUMNS = [
    "sale_id",
    "sale_date",
    "sale_year",
    "sale_price_usd",
    "buyer_country",
    "channel",
    "artwork_id",
    "title",
    "medium",
    "year_created",
    "list_price_usd",
    "artist_id",
    "artist_name",
    "nationality",
    "price_tier",
]


def price_tier(price: pl.Expr) -> pl.Expr:
    """Bucket a USD price: budget < 1,000 <= mid < 10,000 <= premium < 100,000 <= masterpiece."""
    return price.cut(PRICE_TIER_BREAKS, labels=PRICE_TIERS, left_closed=True).cast(pl.String)


def enrich(sales: pl.LazyFrame, artworks: pl.LazyFrame, artists: pl.LazyFrame) -> pl.LazyFrame:
    """Each sale with its artwork, artist and price tier, ordered by sale_id."""
    # Left joins keep every sale; the blocking foreign-key checks guarantee the matches exist.
    return (
        sales.join(artworks, on="artwork_id", how="left")
        .join(artists.rename({"name": "artist_name"}), on="artist_id", how="left")
        .with_columns(
            sale_year=pl.col("sale_date").dt.year(),
            price_tier=price_tier(pl.col("sale_price_usd")),
        )
        .select(SALES_ENRICHED_COLUMNS)
        .sort("sale_id")
    )


def summarise(artworks: pl.LazyFrame, artists: pl.LazyFrame, sales: pl.LazyFrame) -> pl.LazyFrame:
    """Sales totals per artwork, including artworks that never sold, ordered by artwork_id."""
    # Summed as integer cents: a float sum depends on group_by's summation order, and rounding
    # it afterwards still flips at half-cent boundaries, so repeated runs would differ.
    cents = (pl.col("sale_price_usd") * 100).round().cast(pl.Int64)
    per_artwork = sales.group_by("artwork_id").agg(
        sales_count=pl.len().cast(pl.Int64),
        total_revenue_usd=cents.sum() / 100,
        avg_price_usd=(cents.sum() / pl.len() / 100).round(2),
        first_sale_date=pl.col("sale_date").min(),
        last_sale_date=pl.col("sale_date").max(),
    )
    return (
        artworks.join(artists.rename({"name": "artist_name"}), on="artist_id", how="left")
        .join(per_artwork, on="artwork_id", how="left")
        .select(
            "artwork_id",
            "title",
            "artist_name",
            "medium",
            pl.col("sales_count").fill_null(0),
            pl.col("total_revenue_usd").fill_null(0.0),
            "avg_price_usd",
            "first_sale_date",
            "last_sale_date",
            has_sold=pl.col("sales_count").is_not_null(),
        )
        .sort("artwork_id")
    )


# What each output column means, declared once: the transforms' assets and every sink's copy of
# them show it in the UI's column table.
COLUMN_DESCRIPTIONS: dict[str, str] = {
    **{c: d for table in ("artworks", "sales") for c, d in SOURCE_COLUMNS[table].items()},
    "sale_id": "Primary key: one row per sale.",
    "artwork_id": "Artwork sold (in artworks_summary: the primary key).",
    "artist_id": "Artist who made the work.",
    "sale_year": "Calendar year of sale_date.",
    "artist_name": "The artist's full name.",
    "nationality": SOURCE_COLUMNS["artists"]["nationality"],
    "price_tier": "budget (< 1,000 USD), mid (< 10,000), premium (< 100,000) or masterpiece.",
    "sales_count": "Number of sales of the artwork; 0 when it never sold.",
    "total_revenue_usd": "Sum of its sale prices in US dollars, summed as whole cents.",
    "avg_price_usd": "Mean sale price in US dollars, to the cent; null when it never sold.",
    "first_sale_date": "Date of its first sale; null when it never sold.",
    "last_sale_date": "Date of its latest sale; null when it never sold.",
    "has_sold": "Whether the artwork sold at least once.",
}


def _empty(name: str) -> pl.LazyFrame:
    return pl.LazyFrame(schema=SOURCE_SCHEMAS[name])


OUTPUT_SCHEMAS: dict[str, pl.Schema] = {
    "sales_enriched": enrich(
        _empty("sales"), _empty("artworks"), _empty("artists")
    ).collect_schema(),
    "artworks_summary": summarise(
        _empty("artworks"), _empty("artists"), _empty("sales")
    ).collect_schema(),
}
OUTPUT_SCHEMAS["sales_monthly"] = OUTPUT_SCHEMAS["sales_enriched"]


def column_metadata(table: str) -> dict[str, dg.TableSchema]:
    """`dagster/column_schema` of a transform output: its columns, types and meanings."""
    return {"dagster/column_schema": table_schema(OUTPUT_SCHEMAS[table], COLUMN_DESCRIPTIONS)}


@dg.asset(group_name="transform", kinds={"polars"}, metadata=column_metadata("sales_enriched"))
def sales_enriched(
    sales: pl.LazyFrame, artworks: pl.LazyFrame, artists: pl.LazyFrame
) -> pl.LazyFrame:
    """Each sale with its artwork, artist and price tier, ordered by sale_id."""
    return enrich(sales, artworks, artists)


@dg.asset(group_name="transform", kinds={"polars"}, metadata=column_metadata("artworks_summary"))
def artworks_summary(
    artworks: pl.LazyFrame, artists: pl.LazyFrame, sales: pl.LazyFrame
) -> pl.LazyFrame:
    """Sales totals per artwork, including artworks that never sold, ordered by artwork_id."""
    return summarise(artworks, artists, sales)


@dg.asset(
    group_name="transform",
    kinds={"polars"},
    partitions_def=MONTHLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"partition_expr": "sale_date", **column_metadata("sales_monthly")},
)
def sales_monthly(context: dg.AssetExecutionContext, sales_enriched: pl.LazyFrame) -> pl.LazyFrame:
    """Enriched sales for the month (or range of months) being materialized."""
    # For a single-run backfill the window spans the whole partition key range, not one month.
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    context.log.info(f"Selecting sales with {start} <= sale_date < {end}")
    return sales_enriched.filter(pl.col("sale_date").is_between(start, end, closed="left"))
