"""The honey_duck pipeline: CSV sources, polars transforms and blocking data-quality checks."""

from honey_duck.pipeline.checks import asset_checks
from honey_duck.pipeline.sources import InputFiles, artists, artworks, sales
from honey_duck.pipeline.transforms import (
    MONTHLY,
    artworks_summary,
    sales_enriched,
    sales_monthly,
)

assets = [artists, artworks, sales, sales_enriched, artworks_summary, sales_monthly]

__all__ = ["MONTHLY", "InputFiles", "asset_checks", "assets", "sales_monthly"]
