"""Deterministic synthetic art-market data: writes artists.csv, artworks.csv and sales.csv.

Usage: python -m honey_duck.pipeline.generate --out data/input [--sales N] [--seed S]
"""

import argparse
import random
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from honey_duck.pipeline.sources import SCHEMAS

SALES_START = date(2024, 1, 1)
SALES_END = date(2025, 12, 31)
CHUNK_SIZE = 500_000

FIRST_NAMES = (
    "Zoë", "Søren", "Amélie", "José", "Ngozi", "Hiroshi", "Małgorzata", "Anaïs", "Björn",
    "Chiara", "Dmitri", "Esperanza", "Farah", "Goran", "Hélène", "Inês", "Jun", "Kwame",
    "Lucía", "Mateus", "Nadia", "Oskar", "Priya", "Rafael", "Saoirse", "Tomás", "Wen", "Yusuf",
)  # fmt: skip
LAST_NAMES = (
    "Øster", "Dvořák", "García", "Okafor", "Tanaka", "Nowak", "Müller", "Rossi", "Lindqvist",
    "Petrov", "Haddad", "Moreau", "Silva", "O'Neill", "Nakamura", "Mensah", "Fischer", "Costa",
    "Jensen", "Sato", "Kaur", "Ferreira", "Brennan", "Çelik", "Nguyen", "Abara",
)  # fmt: skip
NICKNAMES = ("Kiki", "the Bear", "Blue", "Mimi")
NAME_SUFFIXES = ("Jr.", "the Elder", "II")
NATIONALITIES = (
    "American", "Brazilian", "Chinese", "Czech", "Danish", "French", "German", "Ghanaian",
    "Indian", "Irish", "Italian", "Japanese", "Lebanese", "Mexican", "Nigerian", "Polish",
    "Portuguese", "Spanish", "Swedish", "Turkish",
)  # fmt: skip
TITLE_ADJECTIVES = (
    "Blue", "Quiet", "Golden", "Broken", "Distant", "Red", "Silent", "Northern", "Faded",
    "Burning", "Small", "Endless",
)  # fmt: skip
TITLE_NOUNS = (
    "Harbour", "Garden", "Figure", "Horizon", "Study", "Window", "River", "Portrait", "Field",
    "Machine", "Dancer", "Orchard", "Storm", "Room",
)  # fmt: skip
MEDIA = (
    "oil", "acrylic", "watercolour", "gouache", "charcoal", "ink", "bronze", "marble",
    "photograph", "screenprint", "etching", "mixed media",
)  # fmt: skip
COUNTRIES = (
    "US", "GB", "FR", "DE", "CH", "IT", "ES", "NL", "BE", "SE", "DK", "NO", "JP", "CN", "HK",
    "KR", "SG", "AE", "BR", "MX", "CA", "AU", "IN", "ZA", "NG",
)  # fmt: skip
# Price paid as a multiple of list price, by channel: floor + spread * a uniform draw.
PRICE_FLOOR = {"gallery": 0.85, "online": 0.70, "auction": 0.50}
PRICE_SPREAD = {"gallery": 0.30, "online": 0.40, "auction": 1.50}


def _artist_name(rng: random.Random) -> str:
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    roll = rng.random()
    # A few names carry quotes or commas so that CSV quoting is exercised end to end.
    if roll < 0.04:
        first, last = name.split(" ")
        return f'{first} "{rng.choice(NICKNAMES)}" {last}'
    if roll < 0.08:
        return f"{name}, {rng.choice(NAME_SUFFIXES)}"
    return name


def _artists(n: int, seed: int) -> pl.DataFrame:
    rng = random.Random(f"{seed}:artists")
    rows = [
        (
            artist_id,
            _artist_name(rng),
            rng.choice(NATIONALITIES),
            None if rng.random() < 0.05 else rng.randint(1900, 1995),
        )
        for artist_id in range(1, n + 1)
    ]
    return pl.DataFrame(rows, schema=SCHEMAS["artists"], orient="row")


def _artwork_title(rng: random.Random) -> str:
    title = f"{rng.choice(TITLE_ADJECTIVES)} {rng.choice(TITLE_NOUNS)}"
    if rng.random() < 0.15:
        return f"Untitled ({title})"
    if rng.random() < 0.2:
        return f"{title}, No. {rng.randint(1, 12)}"
    return title


def _artworks(n: int, birth_years: Sequence[int | None], seed: int) -> pl.DataFrame:
    rng = random.Random(f"{seed}:artworks")
    rows = []
    for artwork_id in range(1, n + 1):
        artist_id = rng.randint(1, len(birth_years))
        born = birth_years[artist_id - 1]
        if rng.random() < 0.03:
            year_created = None
        elif born is None:
            year_created = rng.randint(1920, 2024)
        else:
            year_created = rng.randint(born + 18, min(born + 75, 2024))
        # Log-uniform from $100 to ~$2M so every price tier is well populated.
        list_price = round(10 ** rng.uniform(2, 6.3), 2)
        rows.append(
            (
                artwork_id,
                artist_id,
                _artwork_title(rng),
                rng.choice(MEDIA),
                year_created,
                list_price,
            )
        )
    return pl.DataFrame(rows, schema=SCHEMAS["artworks"], orient="row")


def _pick(values: pl.Series, u: pl.Expr) -> pl.Expr:
    """Pick values[floor(u * len(values))] for each uniform draw u in [0, 1)."""
    return pl.lit(values).gather((u * len(values)).floor().cast(pl.Int64))


def _sales_chunk(
    first_id: int, n: int, rngs: dict[str, random.Random], list_prices: pl.Series
) -> pl.DataFrame:
    """Build sales first_id .. first_id + n - 1, drawing n numbers from each column's stream."""
    u = pl.DataFrame({column: [rng.random() for _ in range(n)] for column, rng in rngs.items()})
    channel = (
        pl.when(pl.col("channel") < 0.45)
        .then(pl.lit("gallery"))
        .when(pl.col("channel") < 0.80)
        .then(pl.lit("online"))
        .otherwise(pl.lit("auction"))
    )
    spread = channel.replace_strict(PRICE_SPREAD)
    factor = channel.replace_strict(PRICE_FLOOR) + spread * pl.col("price")
    # Squaring skews demand towards low artwork ids, leaving some high ids unsold.
    artwork_index = (pl.col("artwork") ** 2 * len(list_prices)).floor().cast(pl.Int64)
    return u.select(
        sale_id=pl.int_range(first_id, first_id + n),
        artwork_id=artwork_index + 1,
        sale_date=_pick(pl.date_range(SALES_START, SALES_END, eager=True), pl.col("day")),
        sale_price_usd=(pl.lit(list_prices).gather(artwork_index) * factor).round(2),
        buyer_country=_pick(pl.Series(COUNTRIES), pl.col("country")),
        channel=channel,
    ).cast(SCHEMAS["sales"])


def _write_sales(path: Path, n: int, list_prices: pl.Series, seed: int, chunk_size: int) -> None:
    # One stream per column, consumed in row order: output is identical for any chunk size.
    rngs = {
        c: random.Random(f"{seed}:sales:{c}")
        for c in ("artwork", "day", "price", "country", "channel")
    }
    with path.open("wb") as f:
        pl.DataFrame(schema=SCHEMAS["sales"]).write_csv(f)
        for start in range(0, n, chunk_size):
            chunk = _sales_chunk(start + 1, min(chunk_size, n - start), rngs, list_prices)
            chunk.write_csv(f, include_header=False, float_precision=2)


def generate(
    out_dir: Path,
    *,
    artists: int = 200,
    artworks: int = 1000,
    sales: int = 5000,
    seed: int = 42,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, Path]:
    """Write artists.csv, artworks.csv and sales.csv into out_dir; same arguments, same bytes."""
    if artists < 1 or artworks < 1 or sales < 0 or chunk_size < 1:
        raise ValueError("need artists >= 1, artworks >= 1, sales >= 0 and chunk_size >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.csv" for name in ("artists", "artworks", "sales")}

    artists_df = _artists(artists, seed)
    artists_df.write_csv(paths["artists"])
    artworks_df = _artworks(artworks, artists_df["birth_year"].to_list(), seed)
    artworks_df.write_csv(paths["artworks"], float_precision=2)
    _write_sales(paths["sales"], sales, artworks_df["list_price_usd"], seed, chunk_size)
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--artists", type=int, default=200, help="artist rows (default 200)")
    parser.add_argument("--artworks", type=int, default=1000, help="artwork rows (default 1000)")
    parser.add_argument("--sales", type=int, default=5000, help="sale rows (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    args = parser.parse_args(argv)
    counts = {"artists": args.artists, "artworks": args.artworks, "sales": args.sales}
    paths = generate(args.out, seed=args.seed, **counts)
    for name, path in paths.items():
        print(f"wrote {counts[name]:>12,} rows to {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
