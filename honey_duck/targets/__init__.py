"""What each destination adds to the seam: one module (or package, past ~300 lines) per word.

Families share theirs (`files/` for every file format, `sql/` for every SQL target); `standin`
is the embedded DuckDB that `local` lands a server-backed sink in; `parquet` and `duckdb` read
back the official Dagster managers' tables.
"""
