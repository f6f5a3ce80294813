"""Tests for the deterministic sample-data generator."""

import csv
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from honey_duck.pipeline import generate as generate_module
from honey_duck.pipeline.generate import generate, main

COMMITTED_SAMPLE = Path(__file__).parents[2] / "data" / "input"
FILES = ("artists.csv", "artworks.csv", "sales.csv")


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, try_parse_dates=True)


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", artists=50, artworks=120, sales=900, seed=7)
    second = generate(tmp_path / "b", artists=50, artworks=120, sales=900, seed=7)
    for name in ("artists", "artworks", "sales"):
        assert first[name].read_bytes() == second[name].read_bytes(), name


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", artists=50, artworks=120, sales=900, seed=7)
    second = generate(tmp_path / "b", artists=50, artworks=120, sales=900, seed=8)
    for name in ("artists", "artworks", "sales"):
        assert first[name].read_bytes() != second[name].read_bytes(), name


def test_committed_sample_is_the_default_output(tmp_path: Path) -> None:
    paths = generate(tmp_path)
    assert sorted(p.name for p in paths.values()) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (COMMITTED_SAMPLE / name).read_bytes(), name


def test_columns_and_row_counts(tmp_path: Path) -> None:
    paths = generate(tmp_path, artists=30, artworks=80, sales=1234)
    artists, artworks, sales = (_read(paths[n]) for n in ("artists", "artworks", "sales"))

    assert artists.columns == ["artist_id", "name", "nationality", "birth_year"]
    assert artworks.columns == [
        "artwork_id",
        "artist_id",
        "title",
        "medium",
        "year_created",
        "list_price_usd",
    ]
    assert sales.columns == [
        "sale_id",
        "artwork_id",
        "sale_date",
        "sale_price_usd",
        "buyer_country",
        "channel",
    ]
    assert artists["artist_id"].to_list() == list(range(1, 31))
    assert artworks["artwork_id"].to_list() == list(range(1, 81))
    assert sales["sale_id"].to_list() == list(range(1, 1235))
    assert sales.schema["sale_date"] == pl.Date


def test_foreign_keys_and_value_ranges(tmp_path: Path) -> None:
    paths = generate(tmp_path, artists=400, artworks=2000, sales=20_000, seed=3)
    artists, artworks, sales = (_read(paths[n]) for n in ("artists", "artworks", "sales"))

    assert set(artworks["artist_id"]) <= set(artists["artist_id"])
    assert set(sales["artwork_id"]) <= set(artworks["artwork_id"])
    # Demand is skewed, so some artworks never sell; the summary must still list them.
    assert 0 < artworks.height - sales["artwork_id"].n_unique() < artworks.height // 4

    assert 0.02 < artists["birth_year"].null_count() / artists.height < 0.08
    assert artists["birth_year"].drop_nulls().is_between(1900, 1995).all()
    assert 0.01 < artworks["year_created"].null_count() / artworks.height < 0.05
    assert artworks["year_created"].drop_nulls().is_between(1900, 2024).all()
    assert {"oil", "watercolour", "bronze", "photograph"} <= set(artworks["medium"])

    assert sales["sale_date"].min() == date(2024, 1, 1)
    assert sales["sale_date"].max() == date(2025, 12, 31)
    assert sales["sale_date"].dt.year().value_counts()["count"].min() > 9000
    assert set(sales["channel"]) == {"gallery", "online", "auction"}
    assert sales["buyer_country"].str.contains(r"^[A-Z]{2}$").all()

    assert artworks["list_price_usd"].min() > 0
    assert sales["sale_price_usd"].min() >= 0
    for prices in (artworks["list_price_usd"], sales["sale_price_usd"]):
        assert prices.null_count() == 0
        assert ((prices * 100).round(6) == (prices * 100).round(0)).all(), "two decimals"

    with_list = sales.join(artworks, on="artwork_id")
    log_corr = with_list.select(
        pl.corr(pl.col("sale_price_usd").log(), pl.col("list_price_usd").log())
    ).item()
    assert log_corr > 0.9


def test_names_exercise_csv_quoting_and_unicode(tmp_path: Path) -> None:
    paths = generate(tmp_path)
    with paths["artists"].open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert all(len(row) == 4 for row in rows)
    names = [row[1] for row in rows[1:]]
    assert any("," in name for name in names)
    assert any('"' in name for name in names)
    assert any(any(ord(ch) > 127 for ch in name) for name in names)
    assert _read(paths["artists"])["name"].to_list() == names


def test_chunk_size_does_not_change_output(tmp_path: Path) -> None:
    whole = generate(tmp_path / "whole", artworks=300, sales=20_000)
    chunked = generate(tmp_path / "chunked", artworks=300, sales=20_000, chunk_size=997)
    assert whole["sales"].read_bytes() == chunked["sales"].read_bytes()


def test_large_output_is_written_in_bounded_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunk_sizes: list[int] = []
    build_chunk = generate_module._sales_chunk

    def recording_chunk(first_id, n, *args):
        chunk_sizes.append(n)
        return build_chunk(first_id, n, *args)

    monkeypatch.setattr(generate_module, "_sales_chunk", recording_chunk)
    paths = generate(tmp_path, sales=1_200_000, chunk_size=500_000)

    assert chunk_sizes == [500_000, 500_000, 200_000]
    stats = (
        pl.scan_csv(paths["sales"])
        .select(
            rows=pl.len(),
            distinct=pl.col("sale_id").n_unique(),
            sorted=(pl.col("sale_id").diff().drop_nulls() > 0).all(),
            first=pl.col("sale_id").first(),
            last=pl.col("sale_id").last(),
        )
        .collect()
        .row(0, named=True)
    )
    assert stats == {
        "rows": 1_200_000,
        "distinct": 1_200_000,
        "sorted": True,
        "first": 1,
        "last": 1_200_000,
    }


def test_zero_sales_writes_header_only(tmp_path: Path) -> None:
    paths = generate(tmp_path, artists=2, artworks=3, sales=0)
    assert paths["sales"].read_text() == (
        "sale_id,artwork_id,sale_date,sale_price_usd,buyer_country,channel\n"
    )


@pytest.mark.parametrize(
    "kwargs", [{"artists": 0}, {"artworks": 0}, {"sales": -1}, {"chunk_size": 0}]
)
def test_rejects_impossible_sizes(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="need artists >= 1"):
        generate(tmp_path, **kwargs)


def test_cli_writes_files_and_reports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cli"
    main(
        ["--out", str(out_dir), "--artists", "5", "--artworks", "9", "--sales", "42", "--seed", "5"]
    )
    printed = capsys.readouterr().out.splitlines()

    expected = generate(tmp_path / "api", artists=5, artworks=9, sales=42, seed=5)
    for line, (name, rows) in zip(
        printed, (("artists", 5), ("artworks", 9), ("sales", 42)), strict=True
    ):
        assert f"{rows} rows to {out_dir / f'{name}.csv'}" in line
        assert (out_dir / f"{name}.csv").read_bytes() == expected[name].read_bytes()
