"""The json group, landed by the README's main command and read back with DuckDB's JSON reader."""

from pathlib import Path

import duckdb
import polars as pl

from honey_duck_tests.contract.files import FileContract


def read(path: Path) -> pl.DataFrame:
    return duckdb.sql(f"select * from read_json('{path}')").pl()


class TestJson(FileContract):
    """The contract on json files, and what `local` landed."""

    word = "json"
    lands = "json"
    read = staticmethod(read)
