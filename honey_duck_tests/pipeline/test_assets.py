"""Tests for the source and transform assets and their blocking checks."""

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from dagster_polars import PolarsParquetIOManager

from honey_duck.pipeline import MONTHLY, InputFiles, asset_checks, assets
from honey_duck.pipeline.generate import generate
from honey_duck.pipeline.sources import SCHEMAS
from honey_duck.pipeline.transforms import sales_enriched, sales_monthly

SAMPLE = Path(__file__).parents[2] / "data" / "input"
UNPARTITIONED = [a.key for a in assets if a.partitions_def is None]

SALES_ENRICHED_SCHEMA = {
    "sale_id": pl.Int64,
    "sale_date": pl.Date,
    "sale_year": pl.Int32,
    "sale_price_usd": pl.Float64,
    "buyer_country": pl.String,
    "channel": pl.String,
    "artwork_id": pl.Int64,
    "title": pl.String,
    "medium": pl.String,
    "year_created": pl.Int32,
    "list_price_usd": pl.Float64,
    "artist_id": pl.Int64,
    "artist_name": pl.String,
    "nationality": pl.String,
    "price_tier": pl.String,
}
ARTWORKS_SUMMARY_SCHEMA = {
    "artwork_id": pl.Int64,
    "title": pl.String,
    "artist_name": pl.String,
    "medium": pl.String,
    "sales_count": pl.Int64,
    "total_revenue_usd": pl.Float64,
    "avg_price_usd": pl.Float64,
    "first_sale_date": pl.Date,
    "last_sale_date": pl.Date,
    "has_sold": pl.Boolean,
}


def _resources(storage: Path, input_dir: Path) -> dict[str, Any]:
    return {
        "io_manager": PolarsParquetIOManager(base_dir=str(storage)),
        "input_files": InputFiles(directory=str(input_dir)),
    }


def _materialize(storage: Path, input_dir: Path, **kwargs: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*assets, *asset_checks], resources=_resources(storage, input_dir), **kwargs
    )


def _expected_tier(price: float) -> str:
    if price < 1_000:
        return "budget"
    if price < 10_000:
        return "mid"
    if price < 100_000:
        return "premium"
    return "masterpiece"


@pytest.fixture(scope="module")
def sample_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dg.ExecuteInProcessResult, Path]:
    """Materialize every unpartitioned asset and all checks from the committed sample once."""
    path = tmp_path_factory.mktemp("storage")
    return _materialize(path, SAMPLE, selection=UNPARTITIONED, raise_on_error=False), path


@pytest.fixture(scope="module")
def storage(sample_run: tuple[dg.ExecuteInProcessResult, Path]) -> Path:
    result, path = sample_run
    assert result.success
    return path


@pytest.fixture(scope="module")
def raw() -> dict[str, pl.DataFrame]:
    """The committed sample CSVs, parsed independently of the pipeline's schemas."""
    return {
        name: pl.read_csv(SAMPLE / f"{name}.csv", try_parse_dates=True)
        for name in ("artists", "artworks", "sales")
    }


def test_definitions_load_with_expected_groups_and_blocking_checks() -> None:
    defs = dg.Definitions(
        assets=assets,
        asset_checks=asset_checks,
        resources=_resources(Path("unused"), SAMPLE),
    )
    dg.Definitions.validate_loadable(defs)
    groups = {a.key.to_user_string(): a.group_names_by_key[a.key] for a in assets}
    assert groups == {
        "artists": "source",
        "artworks": "source",
        "sales": "source",
        "sales_enriched": "transform",
        "artworks_summary": "transform",
        "sales_monthly": "transform",
    }
    specs = [spec for check in asset_checks for spec in check.check_specs]
    assert len(specs) == 10
    assert all(spec.blocking for spec in specs)
    assert sales_monthly.partitions_def == MONTHLY
    assert sales_monthly.metadata_by_key[sales_monthly.key]["partition_expr"] == "sale_date"


def test_sample_run_passes_every_check(
    sample_run: tuple[dg.ExecuteInProcessResult, Path],
) -> None:
    result, _ = sample_run
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"artists", "artworks", "sales", "sales_enriched", "artworks_summary"}
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 10
    assert [e.check_name for e in evaluations if not e.passed] == []
    assert all(e.metadata["offending_rows"].value == 0 for e in evaluations)


def test_sources_keep_rows_and_declared_types(storage: Path) -> None:
    artists = pl.read_parquet(storage / "artists.parquet")
    artworks = pl.read_parquet(storage / "artworks.parquet")
    sales = pl.read_parquet(storage / "sales.parquet")
    assert (artists.height, artworks.height, sales.height) == (200, 1000, 5000)
    assert artists.schema["birth_year"] == pl.Int32
    assert artworks.schema["year_created"] == pl.Int32
    assert sales.schema["sale_date"] == pl.Date
    assert artists["birth_year"].null_count() > 0
    assert artists["name"].str.contains('"').any()


def test_missing_input_file_explains_how_to_generate(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as excinfo:
        InputFiles(directory=str(tmp_path)).scan("sales")
    message = str(excinfo.value)
    assert str(tmp_path / "sales.csv") in message
    assert f"python -m honey_duck.pipeline.generate --out {tmp_path}" in message


def test_object_store_urls_are_left_to_polars(monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[tuple[str, pl.Schema]] = []
    monkeypatch.setattr(
        pl, "scan_csv", lambda source, schema: scanned.append((source, schema)) or pl.LazyFrame()
    )
    InputFiles(directory="s3://example-bucket/input/").scan("artworks")
    assert scanned == [("s3://example-bucket/input/artworks.csv", SCHEMAS["artworks"])]


def test_sales_enriched_joins_every_sale(storage: Path, raw: dict[str, pl.DataFrame]) -> None:
    enriched = pl.read_parquet(storage / "sales_enriched.parquet")
    assert dict(enriched.schema) == SALES_ENRICHED_SCHEMA
    assert enriched.select(raw["sales"].columns).equals(raw["sales"].sort("sale_id"))

    artworks = {row["artwork_id"]: row for row in raw["artworks"].iter_rows(named=True)}
    artists = {row["artist_id"]: row for row in raw["artists"].iter_rows(named=True)}
    for row in enriched.iter_rows(named=True):
        artwork = artworks[row["artwork_id"]]
        artist = artists[artwork["artist_id"]]
        assert row["title"] == artwork["title"]
        assert row["medium"] == artwork["medium"]
        assert row["year_created"] == artwork["year_created"]
        assert row["list_price_usd"] == artwork["list_price_usd"]
        assert row["artist_id"] == artist["artist_id"]
        assert row["artist_name"] == artist["name"]
        assert row["nationality"] == artist["nationality"]
        assert row["sale_year"] == row["sale_date"].year
        assert row["price_tier"] == _expected_tier(row["sale_price_usd"])
    assert set(enriched["price_tier"]) == {"budget", "mid", "premium", "masterpiece"}


def test_price_tier_boundaries() -> None:
    prices = [0.0, 999.99, 1_000.0, 9_999.99, 10_000.0, 99_999.99, 100_000.0, 2_500_000.0]
    sales = pl.LazyFrame(
        {
            "sale_id": range(1, len(prices) + 1),
            "artwork_id": [1] * len(prices),
            "sale_date": [date(2024, 5, 1)] * len(prices),
            "sale_price_usd": prices,
            "buyer_country": ["DK"] * len(prices),
            "channel": ["online"] * len(prices),
        }
    )
    artworks = pl.LazyFrame(
        {
            "artwork_id": [1],
            "artist_id": [1],
            "title": ["Quiet Harbour"],
            "medium": ["oil"],
            "year_created": pl.Series([1990], dtype=pl.Int32),
            "list_price_usd": [5_000.0],
        }
    )
    artists = pl.LazyFrame(
        {
            "artist_id": [1],
            "name": ["Zoë Øster"],
            "nationality": ["Danish"],
            "birth_year": pl.Series([1950], dtype=pl.Int32),
        }
    )
    result = sales_enriched(sales=sales, artworks=artworks, artists=artists)
    assert isinstance(result, pl.LazyFrame)
    assert result.collect()["price_tier"].to_list() == [
        "budget",
        "budget",
        "mid",
        "mid",
        "premium",
        "premium",
        "masterpiece",
        "masterpiece",
    ]


def test_artworks_summary_lists_every_artwork(storage: Path, raw: dict[str, pl.DataFrame]) -> None:
    summary = pl.read_parquet(storage / "artworks_summary.parquet")
    assert dict(summary.schema) == ARTWORKS_SUMMARY_SCHEMA
    assert summary["artwork_id"].to_list() == list(range(1, 1001))

    prices: dict[int, list[float]] = defaultdict(list)
    dates: dict[int, list[date]] = defaultdict(list)
    for sale in raw["sales"].iter_rows(named=True):
        prices[sale["artwork_id"]].append(sale["sale_price_usd"])
        dates[sale["artwork_id"]].append(sale["sale_date"])

    unsold = summary.filter(~pl.col("has_sold"))
    assert unsold.height == 1000 - len(prices) > 0
    for row in summary.iter_rows(named=True):
        sold = prices.get(row["artwork_id"], [])
        assert row["sales_count"] == len(sold)
        assert row["total_revenue_usd"] == pytest.approx(sum(sold), abs=0.006)
        assert row["has_sold"] is bool(sold)
        if sold:
            assert row["avg_price_usd"] == pytest.approx(sum(sold) / len(sold), abs=0.006)
            assert row["first_sale_date"] == min(dates[row["artwork_id"]])
            assert row["last_sale_date"] == max(dates[row["artwork_id"]])
        else:
            assert row["total_revenue_usd"] == 0.0
            assert row["avg_price_usd"] is None
            assert row["first_sale_date"] is None
            assert row["last_sale_date"] is None
    assert unsold["artist_name"].null_count() == 0


def _count_sales_between(raw: dict[str, pl.DataFrame], start: date, end: date) -> int:
    return sum(start <= day < end for day in raw["sales"]["sale_date"])


def test_sales_monthly_materializes_one_month(storage: Path, raw: dict[str, pl.DataFrame]) -> None:
    result = _materialize(
        storage, SAMPLE, selection=[sales_monthly.key], partition_key="2024-02-01"
    )
    assert result.success
    month = pl.read_parquet(storage / "sales_monthly" / "2024-02-01.parquet")
    assert dict(month.schema) == SALES_ENRICHED_SCHEMA
    assert month.height == _count_sales_between(raw, date(2024, 2, 1), date(2024, 3, 1)) > 0
    assert month["sale_date"].min() >= date(2024, 2, 1)
    assert month["sale_date"].max() == date(2024, 2, 29)
    assert month["sale_id"].is_sorted()


def test_sales_monthly_last_partition_by_direct_invocation(storage: Path) -> None:
    enriched = pl.scan_parquet(storage / "sales_enriched.parquet")
    context = dg.build_asset_context(partition_key="2025-12-01")
    month = sales_monthly(context, sales_enriched=enriched).collect()
    assert (
        month.height == enriched.filter(pl.col("sale_date") >= date(2025, 12, 1)).collect().height
    )
    assert month["sale_date"].min() == date(2025, 12, 1)


class _CaptureOutputs(dg.IOManager):
    """Loads inputs from parquet and keeps outputs in memory, whatever their partitions."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.outputs: dict[str, tuple[dg.PartitionKeyRange, pl.DataFrame]] = {}

    def handle_output(self, context: dg.OutputContext, obj: pl.LazyFrame) -> None:
        name = context.asset_key.to_user_string()
        self.outputs[name] = (context.asset_partition_key_range, obj.collect())

    def load_input(self, context: dg.InputContext) -> pl.LazyFrame:
        return pl.scan_parquet(self.storage / f"{context.asset_key.to_user_string()}.parquet")


def test_sales_monthly_single_run_backfill_covers_the_whole_range(
    storage: Path, raw: dict[str, pl.DataFrame]
) -> None:
    capture = _CaptureOutputs(storage)
    result = dg.materialize(
        [*assets, *asset_checks],
        selection=[sales_monthly.key],
        resources={"io_manager": capture, "input_files": InputFiles(directory=str(SAMPLE))},
        tags={
            "dagster/asset_partition_range_start": "2024-11-01",
            "dagster/asset_partition_range_end": "2025-02-01",
        },
    )
    assert result.success
    key_range, frame = capture.outputs["sales_monthly"]
    assert key_range == dg.PartitionKeyRange("2024-11-01", "2025-02-01")
    # Four months, November 2024 to February 2025 inclusive, across the year boundary.
    assert frame.height == _count_sales_between(raw, date(2024, 11, 1), date(2025, 3, 1))
    assert frame["sale_date"].min() == date(2024, 11, 1)
    assert frame["sale_date"].max() == date(2025, 2, 28)
    assert frame.columns == list(SALES_ENRICHED_SCHEMA)


def _duplicate_sale_id_and_negative_price(files: dict[str, Path]) -> None:
    sales = pl.read_csv(files["sales"], try_parse_dates=True)
    # Written in reverse so a correctly ordered sample cannot come from file order by luck.
    sales.reverse().with_columns(
        sale_id=pl.when(pl.col("sale_id") == 7).then(3).otherwise("sale_id"),
        sale_price_usd=pl.when(pl.col("sale_id").is_in([12, 40, 9, 25, 18, 33, 31]))
        .then(-1.0)
        .otherwise("sale_price_usd"),
    ).write_csv(files["sales"])


def _orphan_artist_and_null_artwork_key(files: dict[str, Path]) -> None:
    artworks = pl.read_csv(files["artworks"])
    artworks.with_columns(
        artist_id=pl.when(pl.col("artwork_id") == 5).then(999).otherwise("artist_id"),
        artwork_id=pl.when(pl.col("artwork_id") == 9).then(None).otherwise("artwork_id"),
    ).write_csv(files["artworks"])


ALL_CHECKS = {
    (spec.asset_key.to_user_string(), spec.name)
    for check in asset_checks
    for spec in check.check_specs
}


@pytest.mark.parametrize(
    ("corrupt", "expected_failures", "skipped"),
    [
        pytest.param(
            _duplicate_sale_id_and_negative_price,
            {
                ("sales", "sale_id_is_unique"): (2, "sample_sale_id", [3]),
                # Seven offenders, but only the five lowest ids are reported.
                ("sales", "sale_price_usd_is_non_negative"): (
                    7,
                    "sample_sale_id",
                    [9, 12, 18, 25, 31],
                ),
            },
            set(),
            id="bad-sales",
        ),
        pytest.param(
            _orphan_artist_and_null_artwork_key,
            {
                ("artworks", "artist_id_exists_in_artists"): (1, "sample_artist_id", [999]),
                ("artworks", "keys_are_not_null"): (1, "sample_row_index", [8]),
            },
            # A check that reads a blocked asset through additional_ins does not run at all.
            {("sales", "artwork_id_exists_in_artworks")},
            id="bad-artworks",
        ),
    ],
)
def test_failed_check_blocks_downstream_assets(
    tmp_path: Path,
    corrupt: Callable[[dict[str, Path]], None],
    expected_failures: dict[tuple[str, str], tuple[int, str, list[int]]],
    skipped: set[tuple[str, str]],
) -> None:
    files = generate(tmp_path / "input", artists=20, artworks=40, sales=400)
    corrupt(files)

    result = _materialize(
        tmp_path / "storage", tmp_path / "input", selection=UNPARTITIONED, raise_on_error=False
    )

    assert not result.success
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }
    assert set(evaluations) == ALL_CHECKS - skipped
    failed = {key for key, e in evaluations.items() if not e.passed}
    assert failed == set(expected_failures)
    for key, (count, sample_key, sample) in expected_failures.items():
        assert evaluations[key].metadata["offending_rows"].value == count
        assert evaluations[key].metadata[sample_key].value == sample
        assert evaluations[key].metadata["rows"].value == {"sales": 400, "artworks": 40}[key[0]]
        assert evaluations[key].description.startswith(f"Failed on {count} of ")

    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"artists", "artworks", "sales"}
    assert not (tmp_path / "storage" / "sales_enriched.parquet").exists()
    assert not (tmp_path / "storage" / "artworks_summary.parquet").exists()
