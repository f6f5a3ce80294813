"""How a reconciliation check reads a destination back: its reader and its type table.

`Readback` is what a check needs of any destination. Our own managers give theirs through the
seam (`TargetReadback`); an official Dagster manager is not on the seam, so its target module
declares the same things with a subclass of `OfficialReadback`: the write modes and schema
policies it keeps (for the README's destination table), the types it keeps and changes (for the
type table and the check), and how the check reads its rows back with the target's own client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import dagster as dg
import polars as pl

from honey_duck.seam.partitions import PartitionSlice
from honey_duck.seam.settings import WriteMode
from honey_duck.seam.target import Capabilities, Landing
from honey_duck.seam.validate import Refusal

if TYPE_CHECKING:
    from honey_duck.seam.manager import SinkIOManager


class Readback(Protocol):
    """What a reconciliation check needs of a destination: its reader and its type table."""

    word: str

    def landing(self, dtype: pl.DataType) -> Landing:
        """What a column of `dtype` reads back as."""
        ...

    def name(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> str:
        """Where the asset lives, for messages (`postgres.sales_enriched`, a file's path)."""
        ...

    def read(
        self,
        key: dg.AssetKey,
        metadata: Mapping[str, Any],
        partitions: PartitionSlice | None,
    ) -> pl.DataFrame | pl.LazyFrame:
        """The stored rows of the asset (only `partitions`), through the target's own reader."""
        ...


class TargetReadback:
    """A sink-seam manager's reader and type table, as `honey_duck.seam.reconcile` uses them."""

    def __init__(self, manager: SinkIOManager) -> None:
        self.manager = manager
        self.target = manager.target()
        self.word = self.target.word

    def landing(self, dtype: pl.DataType) -> Landing:
        return self.target.landing(dtype)

    def name(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> str:
        return self.target.table_name(self.target.locate(key, metadata))

    def secrets(self) -> Sequence[str | None]:
        return self.target.secrets()

    def read(
        self,
        key: dg.AssetKey,
        metadata: Mapping[str, Any],
        partitions: PartitionSlice | None,
    ) -> pl.DataFrame | pl.LazyFrame:
        return self.manager.read(key, metadata, partitions)


class OfficialReadback:
    """An official manager's target as the checks and the docs see it.

    What an official manager usually keeps: a whole table or file, or one partition's,
    replaced; no schema policy of ours; no value refused before writing. Subclasses set `word`
    and `why` (what the manager does instead of the other modes, for the destination table),
    or `capabilities` of their own where the manager keeps more.
    """

    word: ClassVar[str]
    why: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that says `why` and declares no `capabilities` of its own gets the
        official managers' usual ones: replace only, no schema policy of ours."""
        super().__init_subclass__(**kwargs)
        if "capabilities" not in cls.__dict__ and "why" in cls.__dict__:
            cls.capabilities = Capabilities(
                modes=frozenset({WriteMode.REPLACE}),
                slice_modes=frozenset({WriteMode.REPLACE}),
                policies=frozenset(),
                why=cls.why,
            )

    def landing(self, dtype: pl.DataType) -> Landing:
        return Landing(dtype)  # a target that changes a type says so in its subclass

    def unsupported(self, dtype: pl.DataType) -> str | None:
        return None

    def refusals(self, schema: pl.Schema) -> list[Refusal]:
        return []

    def name(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> str:
        """Where the asset lives, for messages."""
        raise NotImplementedError

    def read(
        self, key: dg.AssetKey, metadata: Mapping[str, Any], partitions: PartitionSlice | None
    ) -> pl.LazyFrame:
        """The stored rows of the asset (only `partitions`), through the target's own reader."""
        raise NotImplementedError
