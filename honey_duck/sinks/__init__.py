"""Every destination: one module per sink, each an asset group and its resources per environment."""

from types import ModuleType

from honey_duck.sinks import (
    csv,
    duckdb,
    excel,
    feather,
    json,
    kafka,
    mongo,
    parquet,
    postgres,
    redshift,
)

SINKS: dict[str, ModuleType] = {
    module.__name__.rsplit(".", 1)[-1]: module
    for module in (json, csv, excel, feather, parquet, duckdb, postgres, redshift, mongo, kafka)
}
