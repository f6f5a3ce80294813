"""DuckDB through dagster-duckdb-polars' official `DuckDBPolarsIOManager`: how its tables are
read back (with the duckdb client, Arrow batches streamed) and what DuckDB makes of each type."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb_polars import DuckDBPolarsIOManager

from honey_duck import seam
from honey_duck.seam import Landing, OfficialReadback, dtypes


class DuckDBReadback(OfficialReadback):
    """The official manager's tables, as the reconciliation check reads them: with the duckdb
    client, `<schema>.<table>` from the asset key, Arrow batches streamed."""

    word = "duckdb"
    # the columns must match the table's (no schema policy of ours)
    why = "the official manager only replaces a table (or its partitions' rows)"

    def __init__(self, manager: DuckDBPolarsIOManager) -> None:
        self.database = str(manager.database)
        self.default_schema = manager.schema_ or "public"

    def landing(self, dtype: pl.DataType) -> Landing:
        # what DuckDB makes of the Arrow columns the official manager hands it
        if isinstance(dtype, pl.Categorical | pl.Enum):
            return Landing(pl.String(), note="DuckDB stores categories as VARCHAR")
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            return Landing(pl.Datetime("us", "UTC"), note="TIMESTAMPTZ: microseconds in UTC")
        if dtype == pl.Null:
            return Landing(pl.Int32(), note="an all-null column becomes INTEGER")
        return Landing(dtype)

    def unsupported(self, dtype: pl.DataType) -> str | None:
        if any(isinstance(t, pl.Duration) for t in dtypes.walk(dtype)):
            # the manager writes it (INTERVAL), but polars cannot read an Arrow interval back
            return "DuckDB stores durations as INTERVAL, which polars cannot read back"
        return None

    def name(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> str:
        schema, table = self._table(key, metadata)
        return f"{self.database} :: {schema}.{table}"

    def _table(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> tuple[str, str]:
        schema = metadata.get("schema") or (key.path[-2] if len(key.path) > 1 else None)
        return str(schema or self.default_schema), key.path[-1]

    def read(
        self, key: dg.AssetKey, metadata: Mapping[str, Any], partitions: seam.PartitionSlice | None
    ) -> pl.LazyFrame:
        schema, table = self._table(key, metadata)
        quoted = ".".join('"' + p.replace('"', '""') + '"' for p in (schema, table))
        sql, params = f"SELECT * FROM {quoted}", []
        if partitions is not None:
            column = metadata.get(seam.PARTITION_EXPR)
            windows = [next(iter(p.bounds.values())) for p in partitions.parts if p.bounds]
            if not isinstance(column, str) or len(windows) != len(partitions.parts):
                raise ValueError(f"`{key.to_user_string()}`: a time-partitioned column is needed")
            name = '"' + column.replace('"', '""') + '"'
            sql += f" WHERE {name} >= ? AND {name} < ?"
            params = [min(w.start for w in windows), max(w.end for w in windows)]

        def open_reader() -> tuple[duckdb.DuckDBPyConnection, Any]:
            connection = duckdb.connect(self.database, read_only=True)
            connection.execute("SET TimeZone = 'UTC'")
            return connection, connection.execute(sql, params).to_arrow_reader(100_000)

        connection, reader = open_reader()
        with connection:
            schema_ = pl.Schema(pl.from_arrow(reader.schema.empty_table()).schema)

        def frames(batch_size: int | None) -> Iterator[pl.DataFrame]:
            connection, reader = open_reader()
            with connection:
                for batch in reader:
                    yield pl.DataFrame(pl.from_arrow(batch))

        return seam.scan_frames(frames, schema_)


def readback(manager: DuckDBPolarsIOManager) -> DuckDBReadback:
    return DuckDBReadback(manager)
