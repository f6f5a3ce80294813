"""The sink seam: one IO manager flow, written once, and the target behind it.

`SinkIOManager` owns the flow of every honey_duck IO manager: the settings from metadata, the
partition slice, the type check, the validation pass, the schema policy, timing, retries,
error labelling, redaction and the standard metadata. A destination adds a `Target` (what it
can keep, where an asset lives, how to connect) and a `Session` (the contract's verbs on one
connection or transaction):

    SinkIOManager.handle_output
      -> Target.locate, Target.unsupported, Target.refusals  (before any I/O)
      -> validate                                      (one streaming pass)
      -> Retry.run( Target.session() as s:
             s.stored_schema -> check_schema -> s.replace | s.replace_slice
                                                    | s.append | s.upsert )
      -> output_metadata

An asset that asks a target for a write mode or schema policy it cannot keep is refused when
the definitions load (`check_assets`), never half-way through a run.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck.seam.faults import OutcomeUnknown, Retry, mentions_secret, redact
from honey_duck.seam.frames import as_lazy, input_columns, is_lazy_annotation
from honey_duck.seam.metadata import (
    declared_descriptions,
    output_metadata,
    partition_observations,
    stopwatch,
)
from honey_duck.seam.partitions import PartitionSlice, read_slice_from_context, slice_from_context
from honey_duck.seam.readback import TargetReadback
from honey_duck.seam.schema import check_schema, check_types
from honey_duck.seam.settings import (
    DEFAULT_BATCH_ROWS,
    PARTITION_EXPR,
    SinkError,
    WriteMode,
    WriteSettings,
)
from honey_duck.seam.target import Capabilities, Run, Session, Target, Write
from honey_duck.seam.validate import validate


class SinkIOManager(dg.ConfigurableIOManager):
    """The flow every honey_duck IO manager shares; a subclass names its target."""

    schema_policy: Literal["strict", "evolve"] = Field(
        default="strict", description="What to do when the schema differs from the stored one."
    )
    batch_rows: int = Field(default=DEFAULT_BATCH_ROWS, description="Rows per write batch.")
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
        partitions: PartitionSlice | None = None
        with _labelled(target, asset, lambda: partitions, "") as secrets:
            settings = WriteSettings.from_context(context, self.schema_policy)
            why = self.target_capabilities().refusal(settings, context.has_asset_partitions)
            if why:
                raise ValueError(f"the {target.word} sink cannot keep {why}")
            partitions = slice_from_context(context, settings.partition_expr)
            frame = as_lazy(obj)
            incoming = frame.collect_schema()
            check_types(incoming, target.unsupported)
            if problems := target.schema_problems(incoming):
                raise ValueError("; ".join(problems))
            location = target.locate(context.asset_key, _metadata(context))
            run = Run(context.run_id or "", asset, tuple(partitions.keys) if partitions else ())
            with stopwatch() as watch:
                # one pass: a target that keys every row by `upsert_keys` (a compacted topic)
                # needs them unique and non-null whatever the mode
                checked = validate(
                    frame, settings, partitions, target.refusals(incoming),
                    unique_keys=self.target_capabilities().keyed,
                )  # fmt: skip

                def attempt() -> tuple[int, dict[str, Any]]:
                    with target.session() as session:
                        return write_through(
                            session, target.column_type, target.table_name(location),
                            Write(location, frame, incoming, {}, None, settings, partitions,
                                  checked, self.batch_rows, run),
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
            output_metadata(
                table=target.table_name(location),
                uri=redact(target.uri(location, partitions), secrets),
                storage_kind=target.storage_kind,
                schema=schema,
                rows=rows,
                settings=settings,
                seconds=watch.seconds,
                partitions=partitions,
                rows_written=checked.rows,
                descriptions=declared_descriptions(_metadata(context)),
            )
        )
        if partitions is not None and len(partitions.parts) > 1:
            for observation in partition_observations(
                context.asset_key, partitions, checked, settings,
                lambda part: redact(target.uri(location, part), secrets),
            ):  # fmt: skip
                context.log_event(observation)

    # -- reading ----------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        metadata = _metadata(context)
        lazy = is_lazy_annotation(context)
        frame = self.read(
            context.asset_key,
            metadata,
            lambda: read_slice_from_context(context, metadata.get(PARTITION_EXPR)),
            input_columns(context),
            lazy=lazy,
            warn=context.log.warning,
        )
        return frame.lazy() if lazy else frame

    def read(
        self,
        key: dg.AssetKey,
        metadata: Mapping[str, Any],
        partitions: Callable[[], PartitionSlice | None] | PartitionSlice | None,
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
        sliced: PartitionSlice | None = None
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


def write_through(
    session: Session, column_type: Callable[[pl.DataType], Any], name: str, write: Write
) -> tuple[int, dict[str, Any]]:
    """Decide the schema against what is stored, then run the write's verb, in one session.

    `write.schema` and `write.stored` are filled in here; the rows the target holds
    afterwards and its schema are returned.
    """
    stored = session.stored_schema(write.location, write.partitions)
    wanted = {c: column_type(t) for c, t in write.incoming.items()}
    schema = check_schema(
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
    partitions: Callable[[], PartitionSlice | None],
    prefix: str,
) -> Iterator[Sequence[str | None]]:
    """Turn any failure into one SinkError naming target, asset and partition, redacted."""
    secrets = tuple(target.secrets())
    try:
        yield secrets
    except SinkError:
        raise
    except Exception as exc:
        parts = partitions()
        raw = f"{prefix}{exc}"
        cause = redact(raw, secrets)
        # a cause that carried a secret is not chained: tracebacks would print it
        leaked = cause != raw or mentions_secret(exc, secrets)
        error = SinkError(target.word, asset, cause, parts.label() if parts else None)
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
        settings = WriteSettings.from_metadata(metadata, policy)
    except ValueError as exc:
        return str(exc)
    partitioned = assets_def.partitions_def is not None
    why = manager.target_capabilities().refusal(settings, partitioned)
    if why:
        return f"it cannot keep {why}"
    if partitioned and settings.partition_expr is None:
        return "it is partitioned but has no `partition_expr` metadata naming the column"
    return ""
