"""What the sinks built on official Dagster IO managers share: how their targets are declared.

An official manager is not on our sink seam, so its sink module declares for it what a
`Target` declares for ours: the write modes and schema policies it keeps (for the README's
destination table), the types it keeps and changes (for the type table and the reconciliation
check), and how the check reads its rows back. `OfficialReadback` holds what every official
manager has in common; a sink module subclasses it and adds where its rows are and how to read
them (`name`, `read`), and `landing`, `unsupported` or `refusals` where its target differs.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import dagster as dg
import polars as pl

from honey_duck.io import core
from honey_duck.io.core import WriteMode
from honey_duck.io.sink import Capabilities, Landing


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

    def refusals(self, schema: pl.Schema) -> list[core.Refusal]:
        return []

    def name(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> str:
        """Where the asset lives, for messages."""
        raise NotImplementedError

    def read(
        self, key: dg.AssetKey, metadata: Mapping[str, Any], partitions: core.PartitionSlice | None
    ) -> pl.LazyFrame:
        """The stored rows of the asset (only `partitions`), through the target's own reader."""
        raise NotImplementedError
