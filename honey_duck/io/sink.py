"""The sink seam: one IO manager flow, written once, and the target behind it.

`SinkIOManager` owns the flow of every honey_duck IO manager: the settings from metadata, the
partition slice, the type check, the validation pass, the schema policy, timing, retries,
error labelling, redaction and the standard metadata. A destination adds a `Target` (what it
can keep, where an asset lives, how to connect) and a `Session` (the contract's verbs on one
connection or transaction):

    SinkIOManager.handle_output
      -> Target.locate, Target.unsupported, Target.refusals  (before any I/O)
      -> core.validate                                      (one streaming pass)
      -> Retry.run( Target.session() as s:
             s.stored_schema -> core.check_schema -> s.replace | s.replace_slice
                                                    | s.append | s.upsert )
      -> core.output_metadata

An asset that asks a target for a write mode or schema policy it cannot keep is refused when
the definitions load (`check_assets`), never half-way through a run.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck.io import core
from honey_duck.io.core import SchemaPolicy, WriteMode
from honey_duck.io.faults import ConnectFailed, OutcomeUnknown, Retry, mentions_secret, redact

# ---------------------------------------------------------------------------------------------
# What a target declares and receives
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """The write modes and schema policies a target keeps, unpartitioned and per partition."""

    modes: frozenset[WriteMode] = frozenset(WriteMode)
    slice_modes: frozenset[WriteMode] = frozenset(WriteMode)  # on a partitioned asset
    policies: frozenset[SchemaPolicy] = frozenset(SchemaPolicy)
    why: str = ""  # one clause saying why a mode is missing, for the refusal
    keyed: bool = False  # every write needs `upsert_keys` (they key a broker's messages)

    def refusal(self, settings: core.WriteSettings, partitioned: bool) -> str | None:
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
class Write:
    """Everything a session needs for one write, decided by the flow before any byte moves."""

    location: Any  # what the target's `locate` returned
    frame: pl.LazyFrame  # the validated rows, as the asset produced them
    incoming: pl.Schema  # their polars types
    schema: dict[str, Any]  # the target's columns after the schema policy, in target types
    stored: Mapping[str, Any] | None  # the columns before the write (None: nothing stored)
    settings: core.WriteSettings
    partitions: core.PartitionSlice | None
    checked: core.Checked
    batch_rows: int

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
        self, location: Any, partitions: core.PartitionSlice | None
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
        partitions: core.PartitionSlice | None,
    ) -> pl.DataFrame | pl.LazyFrame:
        """The stored rows (only `columns`, only `partitions`), typed as they were written."""


class Target(abc.ABC):
    """What a destination adds to the flow: its word, what it keeps, where, and how to connect."""

    word: str  # "postgres": storage kind, error prefix, group, resource key
    capabilities: ClassVar[Capabilities] = Capabilities()

    def unsupported(self, dtype: pl.DataType) -> str | None:
        """Why this target cannot store `dtype` at all, or None when it can."""
        return None

    def refusals(self, schema: pl.Schema) -> list[core.Refusal]:
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
    def uri(self, location: Any, partitions: core.PartitionSlice | None = None) -> str:
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


# ---------------------------------------------------------------------------------------------
# The flow, written once
# ---------------------------------------------------------------------------------------------


class SinkIOManager(dg.ConfigurableIOManager):
    """The flow every honey_duck IO manager shares; a subclass names its target."""

    schema_policy: Literal["strict", "evolve"] = Field(
        default="strict", description="What to do when the schema differs from the stored one."
    )
    batch_rows: int = Field(default=core.DEFAULT_BATCH_ROWS, description="Rows per write batch.")
    retries: int = Field(
        default=Retry.attempts - 1,
        description="Retries of a transient failure (backoff 0.5 s doubling to 8 s, jittered).",
    )

    @abc.abstractmethod
    def target(self) -> Target:
        """The destination this configuration points at."""

    def target_capabilities(self) -> Capabilities:
        """What the target keeps; read when the definitions load, before any EnvVar resolves.

        A target whose capabilities follow its configuration (a topic's cleanup policy)
        overrides this, reading plain fields only.
        """
        return self.target_class().capabilities

    @classmethod
    def target_class(cls) -> type[Target]:
        """The class `target()` returns (its declarations are checked at load time)."""
        raise NotImplementedError(f"{cls.__name__} does not name its target class")

    def word(self) -> str:
        """The sink's one word (a file manager's is its format)."""
        return self.target_class().word

    def stand_in(self) -> tuple[str, str] | None:
        """When this manager stands in for another destination (`local`'s embedded ones): its
        kind for the UI's badge and a sentence saying where the data really is."""
        return None

    # -- writing ----------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        if obj is None:
            return
        asset = context.asset_key.to_user_string()
        target = self.target()
        partitions: core.PartitionSlice | None = None
        with _labelled(target, asset, lambda: partitions, "") as secrets:
            settings = core.WriteSettings.from_context(context, self.schema_policy)
            why = self.target_capabilities().refusal(settings, context.has_asset_partitions)
            if why:
                raise ValueError(f"the {target.word} sink cannot keep {why}")
            partitions = core.slice_from_context(context, settings.partition_expr)
            frame = core.as_lazy(obj)
            incoming = frame.collect_schema()
            core.check_types(incoming, target.unsupported)
            location = target.locate(context.asset_key, _metadata(context))
            with core.stopwatch() as watch:
                # one pass: a target that keys every row by `upsert_keys` (a compacted topic)
                # needs them unique and non-null whatever the mode
                checked = core.validate(
                    frame, settings, partitions, target.refusals(incoming),
                    unique_keys=self.target_capabilities().keyed,
                )  # fmt: skip

                def attempt() -> tuple[int, dict[str, Any]]:
                    with target.session() as session:
                        return write_through(
                            session, target.column_type, target.table_name(location),
                            Write(location, frame, incoming, {}, None, settings, partitions,
                                  checked, self.batch_rows),
                        )  # fmt: skip

                def retryable(exc: BaseException) -> bool:
                    if isinstance(exc, OutcomeUnknown):  # an append repeated could land twice
                        cause = exc.__cause__
                        return (
                            settings.mode is not WriteMode.APPEND
                            and cause is not None
                            and target.transient(cause)
                        )
                    return target.transient(exc)

                def log_retry(n: int, exc: BaseException) -> None:
                    context.log.warning(
                        f"{target.word} sink, `{asset}`: retry {n} of {self.retries} after:"
                        f" {redact(str(exc), secrets)}"
                    )

                rows, schema = Retry(attempts=self.retries + 1).run(attempt, retryable, log_retry)
        context.add_output_metadata(
            core.output_metadata(
                table=target.table_name(location),
                uri=redact(target.uri(location, partitions), secrets),
                storage_kind=target.word,
                schema=schema,
                rows=rows,
                settings=settings,
                seconds=watch.seconds,
                partitions=partitions,
                rows_written=checked.rows,
                descriptions=core.declared_descriptions(_metadata(context)),
            )
        )
        if partitions is not None and len(partitions.parts) > 1:
            for observation in core.partition_observations(
                context.asset_key, partitions, checked, settings,
                lambda part: redact(target.uri(location, part), secrets),
            ):  # fmt: skip
                context.log_event(observation)

    # -- reading ----------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        metadata = _metadata(context)
        lazy = core.is_lazy_annotation(context)
        frame = self.read(
            context.asset_key,
            metadata,
            lambda: core.read_slice_from_context(context, metadata.get(core.PARTITION_EXPR)),
            core.input_columns(context),
            lazy=lazy,
            warn=context.log.warning,
        )
        return frame.lazy() if lazy else frame

    def read(
        self,
        key: dg.AssetKey,
        metadata: Mapping[str, Any],
        partitions: Callable[[], core.PartitionSlice | None] | core.PartitionSlice | None,
        columns: Sequence[str] | None = None,
        *,
        lazy: bool = True,
        warn: Callable[[str], Any] | None = None,
    ) -> pl.DataFrame | pl.LazyFrame:
        """The stored rows of `key` (only `columns`, only `partitions`), retried and labelled.

        A DataFrame reader (`lazy=False`) has its rows fetched here, inside the retries and the
        error labelling; a LazyFrame reader's are fetched when it collects.
        """
        asset = key.to_user_string()
        target = self.target()
        sliced: core.PartitionSlice | None = None
        with _labelled(target, asset, lambda: sliced, "cannot read: ") as secrets:
            sliced = partitions() if callable(partitions) else partitions
            location = target.locate(key, metadata)

            def attempt() -> pl.DataFrame | pl.LazyFrame:
                with target.session() as session:
                    frame = session.read(location, columns, sliced)
                    return frame if lazy or isinstance(frame, pl.DataFrame) else frame.collect()

            def log_retry(n: int, exc: BaseException) -> None:
                if warn is not None:
                    warn(
                        f"{target.word} sink, `{asset}`: read retry {n} after:"
                        f" {redact(str(exc), secrets)}"
                    )

            return Retry(attempts=self.retries + 1).run(attempt, target.transient, log_retry)

    def readback(self) -> TargetReadback:
        """This manager as a reconciliation check reads it: its reader and its type table."""
        return TargetReadback(self)


class TargetReadback:
    """A sink-seam manager's reader and type table, as `honey_duck.io.reconcile` uses them."""

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
        partitions: core.PartitionSlice | None,
    ) -> pl.DataFrame | pl.LazyFrame:
        return self.manager.read(key, metadata, partitions)


def write_through(
    session: Session, column_type: Callable[[pl.DataType], Any], name: str, write: Write
) -> tuple[int, dict[str, Any]]:
    """Decide the schema against what is stored, then run the write's verb, in one session.

    `write.schema` and `write.stored` are filled in here; the rows the target holds
    afterwards and its schema are returned.
    """
    stored = session.stored_schema(write.location, write.partitions)
    wanted = {c: column_type(t) for c, t in write.incoming.items()}
    schema = core.check_schema(
        stored, wanted, write.settings.schema_policy, f"`{name}`", session.schema_origins()
    )
    decided = dataclasses.replace(write, schema=schema, stored=stored)
    return _dispatch(session, decided), schema


def _dispatch(session: Session, write: Write) -> int:
    mode = write.settings.mode
    if mode is WriteMode.APPEND:
        return session.append(write)
    if mode is WriteMode.UPSERT:
        return session.upsert(write)
    if write.partitions is not None:
        return session.replace_slice(write)
    return session.replace(write)


def _metadata(context: dg.OutputContext | dg.InputContext) -> dict[str, Any]:
    """The asset's definition metadata (an input reads its upstream output's)."""
    if isinstance(context, dg.InputContext):
        upstream = context.upstream_output
        return dict((upstream.definition_metadata if upstream else None) or {})
    return {**(context.definition_metadata or {}), **(context.output_metadata or {})}


@contextmanager
def _labelled(
    target: Target,
    asset: str,
    partitions: Callable[[], core.PartitionSlice | None],
    prefix: str,
) -> Iterator[Sequence[str | None]]:
    """Turn any failure into one SinkError naming target, asset and partition, redacted."""
    secrets = tuple(target.secrets())
    try:
        yield secrets
    except core.SinkError:
        raise
    except Exception as exc:
        parts = partitions()
        raw = f"{prefix}{exc}"
        cause = redact(raw, secrets)
        # a cause that carried a secret is not chained: tracebacks would print it
        leaked = cause != raw or mentions_secret(exc, secrets)
        error = core.SinkError(target.word, asset, cause, parts.label() if parts else None)
        raise error from (None if leaked else exc)


# ---------------------------------------------------------------------------------------------
# Checked when the definitions load
# ---------------------------------------------------------------------------------------------


def check_assets(assets: Iterable[dg.AssetsDefinition | Any], resources: Mapping[str, Any]) -> None:
    """Refuse, when the definitions load, an asset whose sink cannot keep what it asks for.

    Each asset written by one of our IO managers must name a write mode and schema policy its
    target supports (on a partitioned asset, per partition), give upsert keys for an upsert,
    and say which column holds its partitions.
    """
    problems = []
    for assets_def in assets:
        if not isinstance(assets_def, dg.AssetsDefinition):
            continue
        for key in assets_def.keys:
            manager = resources.get(assets_def.get_io_manager_key_for_asset_key(key))
            if not isinstance(manager, SinkIOManager):
                continue
            problem = _asset_problem(manager, assets_def, key)
            if problem:
                problems.append(f"`{key.to_user_string()}` ({manager.word()} sink): {problem}")
    if problems:
        raise dg.DagsterInvalidDefinitionError(
            "assets ask their sinks for what they cannot keep:\n  " + "\n  ".join(problems)
        )


def _asset_problem(manager: SinkIOManager, assets_def: dg.AssetsDefinition, key: Any) -> str:
    metadata = assets_def.metadata_by_key.get(key, {})
    policy = manager.schema_policy if isinstance(manager.schema_policy, str) else "strict"
    try:
        settings = core.WriteSettings.from_metadata(metadata, policy)
    except ValueError as exc:
        return str(exc)
    partitioned = assets_def.partitions_def is not None
    why = manager.target_capabilities().refusal(settings, partitioned)
    if why:
        return f"it cannot keep {why}"
    if partitioned and settings.partition_expr is None:
        return "it is partitioned but has no `partition_expr` metadata naming the column"
    return ""
