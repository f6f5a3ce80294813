"""Transform assets: sales joined to their artworks and artists, and summaries built on them."""

import dagster as dg
import polars as pl

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


@dg.asset(group_name="transform", kinds={"polars"})
def sales_enriched(
    sales: pl.LazyFrame, artworks: pl.LazyFrame, artists: pl.LazyFrame
) -> pl.LazyFrame:
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


@dg.asset(group_name="transform", kinds={"polars"})
def artworks_summary(
    artworks: pl.LazyFrame, artists: pl.LazyFrame, sales: pl.LazyFrame
) -> pl.LazyFrame:
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


@dg.asset(
    group_name="transform",
    kinds={"polars"},
    partitions_def=MONTHLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"partition_expr": "sale_date"},
)
def sales_monthly(context: dg.AssetExecutionContext, sales_enriched: pl.LazyFrame) -> pl.LazyFrame:
    """Enriched sales for the month (or range of months) being materialized."""
    # For a single-run backfill the window spans the whole partition key range, not one month.
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    context.log.info(f"Selecting sales with {start} <= sale_date < {end}")
    return sales_enriched.filter(pl.col("sale_date").is_between(start, end, closed="left"))
