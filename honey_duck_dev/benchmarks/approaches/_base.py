"""What every sink's benchmark module shares: an approach, a sink, a check, and small helpers.

Nothing here imports Dagster or honey_duck's targets: a measuring child imports this package
whatever it measures, and a child measuring plain code (a floor, a naive loop, a bare client)
must not carry Dagster's weight. Heavy imports stay inside the functions that need them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from honey_duck_dev.benchmarks.inputs import TABLE

Kind = Literal["ours", "naive", "official", "floor"]
KINDS: tuple[Kind, ...] = ("ours", "naive", "official", "floor")
# A sink may add other raw paths (no framework) beside its floor, each under its own name: the
# report shows them as extra rows with their ratios, so the floor stays one, the fastest.

Figures = Mapping[str, float]  # what an approach measured of itself (a Dagster run's parts)
Run = Callable[[Path, Path], Figures | None]
Count = Callable[[Path], int]

# Every child imports these before its clock starts, plain or not: the data stack itself.
BASE_IMPORTS = ("polars",)
# A child that runs Dagster imports these too, and runs one empty Dagster run before timing.
DAGSTER_IMPORTS = ("dagster", "honey_duck.seam")


@dataclass(frozen=True)
class Approach:
    """One way of landing the table: the exact code, in short, and the function that runs it.

    `run(source, out)` reads the enriched sales from the Parquet file `source` and lands them
    as `sales_enriched` under the fresh folder `out`; it may return figures of its own parts.
    """

    label: str  # what the code does, exactly enough to write it again: the table's `code`
    run: Run
    # The modules its code needs beyond BASE_IMPORTS, imported before the clock starts, so
    # import time is not timed as writing; a plain approach imports nothing else.
    imports: tuple[str, ...] = ()
    # Runs through `dg.materialize`: the child imports Dagster and warms it up first, and
    # after the timed run measures Dagster's fixed cost with `empty_run`.
    dagster: bool = False
    # Dagster's fixed cost for this approach: the same asset through an in-memory IO manager.
    empty_run: Callable[[Path], float] | None = None
    # The most rows it is measured on (None: the runner's naive cap if `per_row`, else every
    # row); rows/s is measured at that size, never extrapolated.
    cap: int | None = None
    per_row: bool = False  # one call per row: the runner's `--naive-cap` applies

    @property
    def child_imports(self) -> tuple[str, ...]:
        """Everything its measuring child imports before the clock starts."""
        framework = DAGSTER_IMPORTS if self.dagster else ()
        return tuple(dict.fromkeys([*BASE_IMPORTS, *framework, *self.imports]))


def plain(label: str, run: Run, *imports: str, cap: int | None = None) -> Approach:
    """An approach of plain code: no Dagster in its process."""
    return Approach(label, run, imports=imports, cap=cap)


def per_row(label: str, run: Run, *imports: str, cap: int | None = None) -> Approach:
    """Plain code that makes one call per row: measured on at most the naive cap of rows."""
    return Approach(label, run, imports=imports, cap=cap, per_row=True)


@dataclass(frozen=True)
class Sink:
    """One destination: how to count what landed, and the approaches to measure."""

    count: Count
    # Keyed by kind (KINDS) or by the name of another raw path; reported in this order.
    approaches: dict[str, Approach]
    # The whole-table-in-memory baseline of `--memory` mode.
    collect: Approach | None = None
    # Why this sink cannot run here (e.g. no server installed), or None when it can.
    unavailable: Callable[[], str | None] = field(default=lambda: None)
    # Removes what an approach left outside `out` (a server-side table), after it is counted.
    cleanup: Callable[[Path], None] | None = None
    # The `honey_duck_dev.services` servers this sink writes to: the runner starts each for the
    # whole run, unless the service's URL variable already points at a running server, and
    # hands its address to the children (`server_address`).
    servers: tuple[str, ...] = ()
    # The server's version, for the report (asked while the runner's server is up).
    server_version: Callable[[], str] | None = None
    # Variables the parent computes for the children (it may import anything; a plain child
    # may not): e.g. the producer settings ours uses, for a bare producer to use the same.
    environment: Callable[[], Mapping[str, str]] | None = None


@dataclass(frozen=True)
class Checked:
    """A write through one of our managers (or an official one) and its reconciliation check.

    The write is timed as the throughput run times its approaches (mostly the same ones); the
    check compares what `readback(out)` reads back (the target's own reader and type table, as
    the asset check opens them) with the write's source.
    """

    sink: str  # the SINKS entry: its server, its row count and its cleanup
    kind: str  # whose manager writes: ours, official, or ours on a stand-in
    write: Approach
    readback: Callable[[Path], object]  # out -> honey_duck.seam.reconcile.Readback
    reader: str  # how the check reads back, for the report
    metadata: dict[str, object] = field(default_factory=dict)  # the asset's, as the check sees it


OURS_READER = "{}.readback(): the manager's own reader"


# ---------------------------------------------------------------------------------------------
# Servers: the runner hands each child the address of the server it started or was pointed at
# ---------------------------------------------------------------------------------------------


def address_var(service: str) -> str:
    """The variable the runner sets to the address of harness server `service` for children."""
    return f"HONEY_DUCK_BENCH_{service.upper()}"


def server_address(service: str) -> str:
    """The address (URL or bootstrap list) of the server `service` the runner provides."""
    address = os.environ.get(address_var(service))
    if not address:
        raise RuntimeError(f"{address_var(service)} is not set (the runner sets it for its server)")
    return address


def server_missing(service: str, find: Callable[[], object]) -> str | None:
    """Why the server `service` cannot be had here (no address given, `find` fails), or None.

    Runs in the parent only: the services modules import honey_duck's sinks, hence Dagster.
    """
    from honey_duck_dev.services.lifecycle import ServiceError
    from honey_duck_dev.services.registry import service as service_class

    cls = service_class(service)
    if os.environ.get(cls.url_var):
        return None
    try:
        find()
    except ServiceError as exc:
        return f"no {cls.title}: set {cls.url_var} or install one ({exc})"
    return None


# ---------------------------------------------------------------------------------------------
# What the naive code and the counters share
# ---------------------------------------------------------------------------------------------


def dicts(source: Path) -> list[dict]:
    """The whole table as Python dicts, as the naive code starts: `read_parquet().to_dicts()`."""
    return pl.read_parquet(source).to_dicts()


TO_DICTS = "read_parquet → to_dicts()"


def hand_written_columns(source: Path, types: Mapping[type[pl.DataType], str]) -> list[str]:
    """The column definitions of a CREATE TABLE for `source`, as a person writes them."""
    schema = pl.read_parquet_schema(source)
    return [f'"{c}" {types[t.base_type()]}' for c, t in schema.items()]


def only(out: Path, ext: str) -> Path:
    """`out/sales_enriched.<ext>`, which the approach must have written."""
    path = out / f"{TABLE}.{ext}"
    if not path.is_file():
        raise FileNotFoundError(f"{path} was not written")
    return path


def duckdb_count(query: str, *params: object, database: str = ":memory:") -> int:
    """`SELECT count(*) ...` through DuckDB: an independent reader of what landed."""
    import duckdb

    with duckdb.connect(database, read_only=database != ":memory:") as con:
        return int(con.execute(query, list(params)).fetchone()[0])  # type: ignore[index]
