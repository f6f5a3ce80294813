"""What the contract suite needs to know of one sink: a `Probe`, and how a sink opts out.

A probe builds the sink's IO manager, says where a table lives (its location metadata), reads
a table back with the target's own client, and names the sink's differences as data (its
declared capabilities, the words of its refusals, which types its native client returns as
written). The contract classes (`modes`, `partitions`, `schema`, `faults`, `roundtrip`,
`landed`) use nothing else, so a sink's test file is its probe and its own tests.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl

from honey_duck.seam import WriteMode
from honey_duck.seam.target import Capabilities


@dataclass(frozen=True)
class OptOut:
    """A contract test a sink does not run, and why (shown by `test_opt_outs`)."""

    reason: str


def opt_out(reason: str) -> OptOut:
    """`test_x = opt_out("why")` in a contract subclass: pytest does not collect `test_x` there,
    and the reason stays on the class for anyone (and `test_opt_outs`) to read."""
    if not reason.strip():
        raise ValueError("an opt-out from a contract test needs a reason")
    return OptOut(reason)


def opt_outs(cls: type) -> dict[str, str]:
    """The contract tests `cls` opts out of, with their reasons."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, OptOut):
                found[name] = value.reason
            elif name in found:
                del found[name]  # a subclass that defines the test again runs it
    return found


@dataclass
class Server:
    """A private server of the sink's own, for the fault tests that stop and start it."""

    manager: Callable[..., dg.ConfigurableIOManager]  # default retries: what users get
    stop: Callable[[], None]
    start: Callable[[], None]  # again, on the same port and data
    count: Callable[[str], int]  # rows natively in a table of the default location
    table: str = "t.table"  # where an asset `t/table` lands without location metadata
    extra: dict[str, Any] = field(default_factory=dict)


class Probe(abc.ABC):
    """One sink under the contract: its manager, its location metadata, its native reads."""

    word: str  # the sink's word: `postgres`, `mongo`, `kafka`, ...
    title: str  # what its errors call the target: "PostgreSQL", "MongoDB", "Kafka"
    # the upsert keys hold as a constraint in append mode (a primary key, a unique index)
    holds_keys: bool = True
    # how a refusal words a stored Decimal(12, 2) in a strict drift
    decimal_words: str = "Float64 in the data but Decimal(precision=12, scale=2)"
    # the column names and the location metadata of the odd-identifiers scenario
    odd_columns: tuple[str, ...] = ("Sale ID", 'Say "hi"', "select", "Zoë ✓")
    # a lazy read streams (not a DataFrame made lazy), from a Python batch source (a server's
    # cursor) or else a polars file scan
    streams: bool = True
    python_scan: bool = True

    @abc.abstractmethod
    def manager(self, **config: Any) -> dg.ConfigurableIOManager:
        """The sink's IO manager on this probe's namespace, with `config` overrides."""

    @abc.abstractmethod
    def location(self, table: str) -> dict[str, Any]:
        """Definition metadata putting an asset at `table` in this probe's namespace."""

    def meta(
        self, table: str = "table", keys: tuple[str, ...] = ("id",), **more: Any
    ) -> dict[str, Any]:
        """`location(table)` and `more`; on a target whose every write needs keys (a
        compacted topic), `keys` as the upsert keys unless `more` names them."""
        found = {**self.location(table), **more}
        if self.capabilities().keyed and "upsert_keys" not in found:
            found["upsert_keys"] = list(keys)
        return found

    @abc.abstractmethod
    def native(self, table: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        """Every row of `table`, read with the target's own client, as `schema`'s columns
        (the sink decodes what its client returns the documented way), in no given order."""

    @abc.abstractmethod
    def exists(self, table: str) -> bool:
        """Whether `table` exists in the target (natively)."""

    @abc.abstractmethod
    def update(self, table: str, id: int, column: str, value: Any) -> None:
        """Change one stored value behind the manager's back, with the native client."""

    @abc.abstractmethod
    def delete(self, table: str, id: int) -> None:
        """Delete one stored row behind the manager's back, with the native client."""

    def table_name(self, table: str) -> str:
        """The `dagster/table_name` of an asset at `table`."""
        return table

    def odd_location(self) -> dict[str, Any]:
        """Location metadata with the target's odd (quoted, spaced, capitalised) names."""
        return self.meta('Sales "Q1" Table')

    def read_odd(self, meta: Mapping[str, Any], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        """What the odd-identifiers scenario wrote, read natively."""
        return self.native(str(meta.get("table") or 'Sales "Q1" Table'), schema)

    def leftovers(self) -> list[str]:
        """Staging objects a write left behind in this probe's namespace (none is right)."""
        return []

    def records(self, table: str) -> int | None:
        """How many records the target logged for `table`, superseded ones included (a
        topic's messages), where that differs from its rows; None where it does not."""
        return None

    def exact(self, dtype: pl.DataType) -> bool:
        """Whether the native client returns a column of `dtype` as written (a broker's
        JSON returns numbers, text, booleans and their lists and structs as written)."""
        return True

    def check_metadata(self, metadata: Mapping[str, Any], table: str) -> None:
        """Assertions of the sink's own on a materialization's metadata (its URI, say)."""
        return None

    def check_native(self, table: str, frame: pl.DataFrame) -> None:
        """Assertions of the sink's own on a round trip's native records (their fields)."""
        return None

    def backfilled(self, table: str) -> None:
        """Assertions of the sink's own after the range backfill (a broker's headers)."""
        return None

    def fresh(self) -> None:
        """Forget what earlier writes left (a sink that places every asset at one path)."""
        return None

    def capabilities(self) -> Capabilities:
        return self.manager().target_capabilities()  # type: ignore[attr-defined]

    def has(self, mode: WriteMode, partitioned: bool = False) -> bool:
        caps = self.capabilities()
        return mode in (caps.slice_modes if partitioned else caps.modes)

    def unreachable(self) -> tuple[dg.ConfigurableIOManager, str, str]:
        """A manager pointed at nothing listening, where its error says it is, and the
        password it was given (which must appear nowhere)."""
        raise NotImplementedError(f"the {self.word} probe has no unreachable server")

    def private_server(self) -> AbstractContextManager[Server]:
        """A private server that the fault tests may stop and start."""
        raise NotImplementedError(f"the {self.word} probe has no private server")

    def killed_write(self, table: str) -> None:
        """Start a large replace of `table` and kill its writer mid-load (the sink's way)."""
        raise NotImplementedError(f"the {self.word} probe cannot kill a writer")


def rows(frame: pl.DataFrame, *columns: str) -> list[tuple]:
    """`frame`'s rows over `columns`, sorted: an order-free view of what a table holds."""
    return sorted(frame.select(columns).rows(), key=repr)


def seen_reader() -> tuple[dict[str, Any], Callable[[Any], None]]:
    """A consumer that keeps what our reader handed it, and the dict it keeps it in."""
    seen: dict[str, Any] = {}
    return seen, lambda table: seen.update(t=table)


def iter_contract_classes(module: Any) -> Iterator[type]:
    """The test classes of a sink's module that take part in the contract."""
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and value.__name__.startswith("Test")
            and hasattr(value, "probe")
        ):
            yield value


def frame_of(values: Mapping[str, list], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Native values as a frame of `schema`'s types; a column polars cannot take exactly as
    given stays Python objects (never cast loosely: that could hide a difference)."""
    columns = {}
    for name, dtype in schema.items():
        data = list(values[name]) if name in values else []
        try:
            series = pl.Series(name, data, dtype=dtype, strict=True)
            kept = all(  # polars takes an int as a Duration: that would hide a difference
                a is None or isinstance(a, type(b))
                for a, b in zip(data, series.to_list(), strict=True)
            )
        except Exception:
            kept = False
        columns[name] = series if kept else pl.Series(name, data, dtype=pl.Object)
    return pl.DataFrame(columns)  # a dict: from a list of Series polars renames an empty name


@contextmanager
def private(
    launch: Callable[..., Any],
    manager: Callable[[Any], dg.ConfigurableIOManager],
    count: Callable[[Any, str], int],
    prefix: str,
) -> Iterator[Server]:
    """A private server on a free port and a fresh data directory (one its own user can
    reach: pytest's tmp_path is private to us), restarted on both: `launch(port=, data_dir=)`
    starts one, `manager(server)` and `count(server, table)` use the latest."""
    import shutil
    import tempfile
    from pathlib import Path

    from honey_duck_dev.services.lifecycle import free_port

    port, data = free_port(), Path(tempfile.mkdtemp(prefix=prefix))
    servers = [launch(port=port, data_dir=data)]
    try:
        yield Server(
            manager=lambda: manager(servers[-1]),
            stop=lambda: servers[-1].stop(),
            start=lambda: servers.append(launch(port=port, data_dir=data)),
            count=lambda table: count(servers[-1], table),
        )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)
