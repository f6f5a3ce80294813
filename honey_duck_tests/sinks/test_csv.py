"""The csv group, landed by the README's main command and read back with DuckDB's CSV reader."""

from pathlib import Path

import duckdb
import polars as pl

from honey_duck_tests.contract.files import FileContract


def read(path: Path) -> pl.DataFrame:
    return duckdb.sql(f"select * from read_csv('{path}')").pl()


class TestCsv(FileContract):
    """The contract on csv files, and what `local` landed."""

    word = "csv"
    lands = "csv"
    read = staticmethod(read)
