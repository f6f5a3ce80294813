"""Source assets: the raw artists, artworks and sales CSVs, scanned lazily with fixed schemas."""

from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

SCHEMAS: dict[str, pl.Schema] = {
    "artists": pl.Schema(
        {
            "artist_id": pl.Int64,
            "name": pl.String,
            "nationality": pl.String,
            "birth_year": pl.Int32,
        }
    ),
    "artworks": pl.Schema(
        {
            "artwork_id": pl.Int64,
            "artist_id": pl.Int64,
            "title": pl.String,
            "medium": pl.String,
            "year_created": pl.Int32,
            "list_price_usd": pl.Float64,
        }
    ),
    "sales": pl.Schema(
        {
            "sale_id": pl.Int64,
            "artwork_id": pl.Int64,
            "sale_date": pl.Date,
            "sale_price_usd": pl.Float64,
            "buyer_country": pl.String,
            "channel": pl.String,
        }
    ),
}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "artists": {
        "artist_id": "Primary key.",
        "name": "Full name; may contain non-ASCII characters, commas and quotes.",
        "nationality": "Nationality as an English adjective, e.g. 'Danish'.",
        "birth_year": "Year of birth; null when unknown.",
    },
    "artworks": {
        "artwork_id": "Primary key.",
        "artist_id": "Artist who made the work; references artists.artist_id.",
        "title": "Title of the work.",
        "medium": "Medium, e.g. oil, watercolour, bronze, photograph.",
        "year_created": "Year the work was made; null when unknown.",
        "list_price_usd": "Gallery list price in US dollars.",
    },
    "sales": {
        "sale_id": "Primary key.",
        "artwork_id": "Artwork sold; references artworks.artwork_id.",
        "sale_date": "Date of the sale.",
        "sale_price_usd": "Price paid in US dollars.",
        "buyer_country": "Buyer's country as an ISO 3166-1 alpha-2 code.",
        "channel": "Where the sale happened: gallery, online or auction.",
    },
}


def table_schema(schema: pl.Schema, descriptions: dict[str, str]) -> dg.TableSchema:
    """Describe a polars schema as a Dagster table schema, for the UI's column view."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=descriptions.get(name))
            for name, dtype in schema.items()
        ]
    )


class InputFiles(dg.ConfigurableResource):
    """Reads the pipeline's input CSV files with fixed schemas."""

    directory: str = Field(description="Folder holding artists.csv, artworks.csv and sales.csv.")

    def scan(self, name: str) -> pl.LazyFrame:
        """Lazily scan `<directory>/<name>.csv` with the schema in SCHEMAS[name]."""
        if name not in SCHEMAS:
            raise KeyError(f"Unknown input table {name!r}; expected one of {sorted(SCHEMAS)}")
        if "://" in self.directory:
            # Object-store URLs (s3://, gs://, az://, https://) are read by polars itself, which
            # reports a missing object when the scan runs; only local paths are checked up front.
            return pl.scan_csv(f"{self.directory.rstrip('/')}/{name}.csv", schema=SCHEMAS[name])
        path = Path(self.directory) / f"{name}.csv"
        if not path.is_file():
            raise FileNotFoundError(
                f"Input file {path} does not exist. Generate sample data with: "
                f"python -m honey_duck.pipeline.generate --out {self.directory}"
            )
        return pl.scan_csv(path, schema=SCHEMAS[name])


def _column_metadata(name: str) -> dict[str, dg.TableSchema]:
    return {"dagster/column_schema": table_schema(SCHEMAS[name], COLUMN_DESCRIPTIONS[name])}


@dg.asset(group_name="source", kinds={"csv", "polars"}, metadata=_column_metadata("artists"))
def artists(input_files: InputFiles) -> pl.LazyFrame:
    """Artists, one row per artist_id, read from artists.csv."""
    return input_files.scan("artists")


@dg.asset(group_name="source", kinds={"csv", "polars"}, metadata=_column_metadata("artworks"))
def artworks(input_files: InputFiles) -> pl.LazyFrame:
    """Artworks with their artist and list price, read from artworks.csv."""
    return input_files.scan("artworks")


@dg.asset(group_name="source", kinds={"csv", "polars"}, metadata=_column_metadata("sales"))
def sales(input_files: InputFiles) -> pl.LazyFrame:
    """Individual artwork sales, one row per sale_id, read from sales.csv."""
    return input_files.scan("sales")
