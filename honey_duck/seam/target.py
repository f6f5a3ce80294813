"""What a destination declares and receives: capabilities, landings, the write, its verbs.

A `Target` declares (before any I/O) what it keeps and refuses; the flow hands its `Session`
one `Write` per output, carrying everything decided before the first byte moves, the run it
belongs to included (`Write.run`: a broker's headers, an HTTP endpoint's idempotency keys).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

import dagster as dg
import polars as pl

from honey_duck.seam.faults import ConnectFailed
from honey_duck.seam.partitions import PartitionSlice
from honey_duck.seam.settings import SchemaPolicy, WriteMode, WriteSettings
from honey_duck.seam.validate import Checked, Refusal


@dataclass(frozen=True)
class Capabilities:
    """The write modes and schema policies a target keeps, unpartitioned and per partition."""

    modes: frozenset[WriteMode] = frozenset(WriteMode)
    slice_modes: frozenset[WriteMode] = frozenset(WriteMode)  # on a partitioned asset
    policies: frozenset[SchemaPolicy] = frozenset(SchemaPolicy)
    why: str = ""  # one clause saying why a mode is missing, for the refusal
    keyed: bool = False  # every write needs `upsert_keys` (they key a broker's messages)

    def refusal(self, settings: WriteSettings, partitioned: bool) -> str | None:
        """Why these settings cannot be kept, or None when they can."""
        modes = self.slice_modes if partitioned else self.modes
        problems = []
        if self.keyed and not settings.keys:
            problems.append(
                f"write_mode '{settings.mode.value}' without `upsert_keys` metadata"
                " (every message it writes needs a key)"
            )
        if settings.mode not in modes:
            kind = "a partitioned asset" if partitioned else "an asset"
            supported = ", ".join(sorted(m.value for m in modes)) or "none"
            problems.append(
                f"write_mode '{settings.mode.value}' on {kind} (it supports: {supported})"
            )
        if settings.schema_policy not in self.policies:
            supported = ", ".join(sorted(p.value for p in self.policies))
            problems.append(
                f"schema_policy '{settings.schema_policy.value}' (it supports: {supported})"
            )
        if not problems:
            return None
        return " and ".join(problems) + (f"; {self.why}" if self.why else "")


@dataclass(frozen=True)
class Landing:
    """What a column of one polars type becomes in a target: one row of its type table.

    `dtype` is the type the target's reader returns (None: inferred from the stored values,
    as JSON structs in SQL are); `change` is a declared change of value the target makes on
    the way (Excel keeps whole milliseconds), applied before the cast; `note` says so in words.
    The reconciliation checks compare what landed with the asset's rows after exactly these
    conversions, so a declared one is no false alarm and an undeclared one is caught.
    """

    dtype: pl.DataType | None
    change: Callable[[pl.Expr], pl.Expr] | None = None
    note: str = ""

    def convert(self, expr: pl.Expr) -> pl.Expr:
        """`expr` (a column as the asset produced it) as the target's reader returns it."""
        changed = self.change(expr) if self.change is not None else expr
        return changed if self.dtype is None else changed.cast(self.dtype)


@dataclass(frozen=True)
class Run:
    """The run an output belongs to: what a target puts on what it sends so that a receiver
    can tell writes apart and drop a repeated one (headers, idempotency keys)."""

    run_id: str = ""
    asset: str = ""  # the asset key, as a user string
    partitions: tuple[str, ...] = ()  # the partition keys written, if any

    def idempotency_key(self, *parts: object) -> str:
        """A key that is the same for the same run, asset, partitions and `parts` (a batch
        number, say), and differs otherwise: a retried request carries the key it had."""
        import hashlib

        text = "\x1f".join([self.run_id, self.asset, *self.partitions, *map(str, parts)])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Write:
    """Everything a session needs for one write, decided by the flow before any byte moves."""

    location: Any  # what the target's `locate` returned
    frame: pl.LazyFrame  # the validated rows, as the asset produced them
    incoming: pl.Schema  # their polars types
    schema: dict[str, Any]  # the target's columns after the schema policy, in target types
    stored: Mapping[str, Any] | None  # the columns before the write (None: nothing stored)
    settings: WriteSettings
    partitions: PartitionSlice | None
    checked: Checked
    batch_rows: int
    run: Run = Run()

    @property
    def keys(self) -> tuple[str, ...]:
        """The upsert keys (empty unless the mode is upsert)."""
        return self.settings.keys if self.settings.mode is WriteMode.UPSERT else ()


class Session(abc.ABC):
    """The contract's verbs on one connection (and one transaction, where the target has them).

    Every write verb returns the rows the target holds afterwards: the whole object's, or the
    slice's for a partitioned write.
    """

    @abc.abstractmethod
    def stored_schema(
        self, location: Any, partitions: PartitionSlice | None
    ) -> Mapping[str, Any] | None:
        """The stored columns in target types (comparable with `Target.column_type`), or None."""

    def schema_origins(self) -> Mapping[str, str]:
        """Where stored columns live, when the stored schema spans objects (error messages)."""
        return {}

    @abc.abstractmethod
    def replace(self, write: Write) -> int:
        """Swap in the new content whole: readers see the old or the new, never a mix."""

    @abc.abstractmethod
    def replace_slice(self, write: Write) -> int:
        """Replace exactly the partitions of `write.partitions`, and nothing else."""

    @abc.abstractmethod
    def append(self, write: Write) -> int:
        """Add the rows."""

    @abc.abstractmethod
    def upsert(self, write: Write) -> int:
        """Insert new keys and update existing ones, writing only the data's columns."""

    @abc.abstractmethod
    def read(
        self,
        location: Any,
        columns: Sequence[str] | None,
        partitions: PartitionSlice | None,
    ) -> pl.DataFrame | pl.LazyFrame:
        """The stored rows (only `columns`, only `partitions`), typed as they were written."""


class Target(abc.ABC):
    """What a destination adds to the flow: its word, what it keeps, where, and how to connect."""

    word: str  # "postgres": storage kind, error prefix, group, resource key
    capabilities: ClassVar[Capabilities] = Capabilities()

    @property
    def storage_kind(self) -> str:
        """`dagster/storage_kind`: where the rows really are (a stand-in says `duckdb`)."""
        return self.word

    def schema_problems(self, schema: pl.Schema) -> list[str]:
        """Why these columns together cannot be stored (names it cannot keep apart, say), each
        a sentence naming the columns; checked with the types, before any I/O."""
        return []

    def unsupported(self, dtype: pl.DataType) -> str | None:
        """Why this target cannot store `dtype` at all, or None when it can."""
        return None

    def refusals(self, schema: pl.Schema) -> list[Refusal]:
        """Values of these columns the target would not keep exactly (counted before writing)."""
        return []

    def column_type(self, dtype: pl.DataType) -> Any:
        """The target's own type for `dtype`, as `Session.stored_schema` reports stored ones."""
        return dtype

    def landing(self, dtype: pl.DataType) -> Landing:
        """What a column of `dtype` reads back as (for a type `unsupported` accepts)."""
        return Landing(dtype)

    @abc.abstractmethod
    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> Any:
        """Where an asset lives: a table, a path, a collection, a topic, a key prefix."""

    @abc.abstractmethod
    def table_name(self, location: Any) -> str:
        """The fully qualified name shown as `dagster/table_name`."""

    @abc.abstractmethod
    def uri(self, location: Any, partitions: PartitionSlice | None = None) -> str:
        """Where to find it (the slice's home for a partitioned write), with no credential."""

    def transient(self, exc: BaseException) -> bool:
        """Whether a retry may succeed where `exc` failed (a reset, a 503, a lock timeout)."""
        return isinstance(exc, ConnectFailed) and exc.transient

    def secrets(self) -> Sequence[str | None]:
        """Values that must never appear in an error, a log line or metadata."""
        return ()

    @abc.abstractmethod
    def session(self) -> AbstractContextManager[Session]:
        """One connection (committed on success, rolled back on error); retried as a block."""
