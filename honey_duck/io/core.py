"""The sink contract's building blocks: write modes, partition slices, schema policy, the
validation pass, batches and metadata, all target-neutral.

The flow that uses them is `honey_duck.io.sink`; the README's "The sink contract" says what
every IO manager of ours promises.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import pairwise
from typing import Any

import dagster as dg
import polars as pl
import polars.selectors as cs

# Definition or output metadata keys an asset uses to steer its sink.
WRITE_MODE = "write_mode"
UPSERT_KEYS = "upsert_keys"
SCHEMA_POLICY = "schema_policy"
PARTITION_EXPR = "partition_expr"  # the key Dagster's own database IO managers use too

DEFAULT_BATCH_ROWS = 100_000


class WriteMode(StrEnum):
    REPLACE = "replace"
    APPEND = "append"
    UPSERT = "upsert"


class SchemaPolicy(StrEnum):
    STRICT = "strict"
    EVOLVE = "evolve"


class SinkError(Exception):
    """A write or read that failed for a reason a person can act on; nothing was changed."""

    def __init__(self, target: str, asset: str, cause: str, partition: str | None = None):
        where = f"`{asset}`" + (f" (partition {partition})" if partition else "")
        super().__init__(f"{target} sink, {where}: {cause}")
        self.target, self.asset, self.partition, self.cause = (
            target,
            asset,
            partition,
            cause,
        )


# ---------------------------------------------------------------------------------------------
# Settings: what the asset asked for
# ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Unwrap a Dagster MetadataValue to the Python value it carries."""
    return value.value if isinstance(value, dg.MetadataValue) else value


@dataclass(frozen=True)
class WriteSettings:
    """How one output is written: mode, upsert keys, schema policy, partition columns."""

    mode: WriteMode = WriteMode.REPLACE
    keys: tuple[str, ...] = ()
    schema_policy: SchemaPolicy = SchemaPolicy.STRICT
    partition_expr: str | Mapping[str, str] | None = None

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any], default_policy: str = SchemaPolicy.STRICT
    ) -> WriteSettings:
        """Read settings from definition metadata overlaid with output metadata."""
        meta = {k: _plain(v) for k, v in metadata.items()}
        try:
            mode = WriteMode(meta.get(WRITE_MODE, WriteMode.REPLACE))
            policy = SchemaPolicy(meta.get(SCHEMA_POLICY, default_policy))
        except ValueError as exc:
            raise ValueError(
                f"{exc}; write_mode is one of {[m.value for m in WriteMode]} and schema_policy "
                f"one of {[p.value for p in SchemaPolicy]}"
            ) from None
        keys = meta.get(UPSERT_KEYS) or ()
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        if mode is WriteMode.UPSERT and not keys:
            raise ValueError("write_mode 'upsert' needs the key columns in metadata 'upsert_keys'")
        return cls(mode, keys, policy, meta.get(PARTITION_EXPR))

    @classmethod
    def from_context(cls, context: dg.OutputContext, default_policy: str) -> WriteSettings:
        return cls.from_metadata(
            {**(context.definition_metadata or {}), **(context.output_metadata or {})},
            default_policy,
        )


# ---------------------------------------------------------------------------------------------
# Partition slices: exactly the partitions an output covers, never a bounding box
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A half-open time interval [start, end) of one time-window partition."""

    start: datetime
    end: datetime


Bound = Window | str


@dataclass(frozen=True)
class Part:
    """One partition: its key and, per column, the window or value its rows must have."""

    key: str
    bounds: Mapping[str, Bound]
    dimensions: Mapping[str, str] = field(default_factory=dict)  # dimension name -> key

    def predicate(self, schema: pl.Schema) -> pl.Expr:
        return pl.all_horizontal(
            [_bound_expr(column, bound, schema) for column, bound in self.bounds.items()]
        )


def _literal_for(dtype: pl.DataType, moment: datetime) -> Any:
    """A window edge as a literal comparable with a column of `dtype`."""
    if dtype == pl.Date:
        return moment.date()
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return pl.lit(moment.replace(tzinfo=None), dtype=pl.Datetime(dtype.time_unit))
        return pl.lit(moment).dt.convert_time_zone(dtype.time_zone).cast(dtype)
    raise TypeError(f"a time-window partition column must be Date or Datetime, not {dtype}")


def _bound_expr(column: str, bound: Bound, schema: pl.Schema) -> pl.Expr:
    if column not in schema:
        raise KeyError(
            f"partition column `{column}` is not in the data (columns: {schema.names()})"
        )
    col = pl.col(literal_name(column))
    if isinstance(bound, Window):
        dtype = schema[column]
        return (col >= _literal_for(dtype, bound.start)) & (col < _literal_for(dtype, bound.end))
    value = typed_key(column, bound, schema[column])
    if isinstance(value, str):
        return col.cast(pl.String) == value
    return col == pl.lit(value, dtype=schema[column])


def typed_key(column: str, key: str, dtype: pl.DataType) -> Any:
    """A static partition key as a value of its column's type.

    A key the column would spell differently (`01` for the integer 1) is refused: it would
    name one partition in a file path and another in a table.
    """
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return key
    if dtype == pl.Boolean:  # polars casts no string to Boolean
        if key not in ("true", "false"):
            raise ValueError(
                f"partition key {key!r} is not how column `{column}` (Boolean) spells a value;"
                " name the partitions 'true' and 'false'"
            )
        return key == "true"
    try:
        value = _parse(pl.Series([key]), dtype).item()
        spelled = pl.Series([value], dtype=dtype).cast(pl.String).item()
    except Exception:
        raise ValueError(
            f"partition key {key!r} cannot be a value of column `{column}` ({dtype})"
        ) from None
    if spelled != key:
        raise ValueError(
            f"partition key {key!r} is not how column `{column}` ({dtype}) spells {spelled};"
            f" name the partition {spelled!r}"
        )
    return value


def _parse(text: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Strings as values of `dtype`: temporal types parsed (polars deprecates casting them)."""
    if dtype == pl.Date:
        return text.str.to_date("%Y-%m-%d", strict=True)
    if isinstance(dtype, pl.Datetime):
        return text.str.to_datetime(
            time_unit=dtype.time_unit, time_zone=dtype.time_zone, strict=True
        )
    if dtype == pl.Time:
        return text.str.to_time(strict=True)
    return text.cast(dtype, strict=True)


@dataclass(frozen=True)
class PartitionSlice:
    """The partitions one output replaces, as an exact set of parts."""

    parts: tuple[Part, ...]

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.parts]

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(c for p in self.parts for c in p.bounds))

    def label(self) -> str:
        keys = self.keys
        return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]} ({len(keys)} partitions)"

    def predicate(self, schema: pl.Schema) -> pl.Expr:
        """True for rows that belong to any part of this slice."""
        covering = self.covering_window()
        if covering is not None:  # a contiguous key range: one range test, not an OR chain
            return _bound_expr(*covering, schema)
        return pl.any_horizontal([p.predicate(schema) for p in self.parts])

    def covering_window(self) -> tuple[str, Window] | None:
        """One window covering every part, when the parts are contiguous windows of one column."""
        columns, windows = set(), []
        for part in self.parts:
            if len(part.bounds) != 1:
                return None
            ((column, bound),) = part.bounds.items()
            if not isinstance(bound, Window):
                return None
            columns.add(column)
            windows.append(bound)
        windows.sort(key=lambda w: w.start)
        if len(columns) != 1 or any(a.end != b.start for a, b in pairwise(windows)):
            return None
        return columns.pop(), Window(windows[0].start, windows[-1].end)


def _partition_columns(
    expr: str | Mapping[str, str] | None, dimensions: Sequence[str], asset: str
) -> dict[str, str]:
    """Map each partition dimension to the column that holds it."""
    if expr is None:
        raise ValueError(
            f"`{asset}` is partitioned but has no `partition_expr` metadata naming the column"
            " that holds the partition"
        )
    if isinstance(expr, str):
        if len(dimensions) != 1:
            raise ValueError(
                f"`{asset}` has partition dimensions {list(dimensions)}: give `partition_expr` as"
                " a mapping from each dimension to its column"
            )
        return {dimensions[0]: expr}
    missing = [d for d in dimensions if d not in expr]
    if missing:
        raise ValueError(f"`partition_expr` of `{asset}` names no column for dimensions {missing}")
    return {d: expr[d] for d in dimensions}


def _bound_for(pdef: dg.PartitionsDefinition, key: str) -> Bound:
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        window = pdef.time_window_for_partition_key(key)
        return Window(window.start, window.end)
    return key


def parts_for(
    partitions_def: dg.PartitionsDefinition,
    keys: Sequence[str],
    columns: Mapping[str, str] | None = None,
) -> PartitionSlice:
    """The parts for `keys`; with `columns` (dimension -> column) each part also has its bounds."""
    multi = isinstance(partitions_def, dg.MultiPartitionsDefinition)
    parts = []
    for key in keys:
        if multi:
            by_dim = dict(partitions_def.get_partition_key_from_str(str(key)).keys_by_dimension)
            defs = {d: partitions_def.get_partitions_def_for_dimension(d) for d in by_dim}
        else:
            by_dim, defs = {"partition": str(key)}, {"partition": partitions_def}
        bounds = {columns[d]: _bound_for(defs[d], k) for d, k in by_dim.items()} if columns else {}
        parts.append(Part(str(key), bounds, by_dim if multi else {}))
    return PartitionSlice(tuple(parts))


def slice_for(
    partitions_def: dg.PartitionsDefinition,
    keys: Sequence[str],
    partition_expr: str | Mapping[str, str] | None,
    asset: str,
) -> PartitionSlice:
    """Build the exact slice for `keys` of `partitions_def` (time windows, sets or multi)."""
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        dims = partitions_def.partition_dimension_names
    else:
        dims = ["partition"]
    return parts_for(partitions_def, keys, _partition_columns(partition_expr, dims, asset))


def slice_from_context(
    context: dg.OutputContext | dg.InputContext, partition_expr: Any
) -> PartitionSlice | None:
    """The slice an output writes (or an input reads), or None when unpartitioned."""
    if not context.has_asset_partitions:
        return None
    asset = context.asset_key.to_user_string()
    return slice_for(
        context.asset_partitions_def,
        context.asset_partition_keys,
        partition_expr,
        asset,
    )


def read_slice_from_context(context: dg.InputContext, partition_expr: Any) -> PartitionSlice | None:
    """The slice an input reads: with column bounds when the upstream names its column."""
    if not context.has_asset_partitions:
        return None
    if partition_expr is None:
        return parts_for(context.asset_partitions_def, context.asset_partition_keys)
    return slice_from_context(context, partition_expr)


# ---------------------------------------------------------------------------------------------
# Schema: compare, decide by policy, conform
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaDiff:
    """Column-by-column difference between the stored schema and the incoming one."""

    added: dict[str, Any]
    removed: dict[str, Any]
    changed: dict[str, tuple[Any, Any]]  # column -> (stored type, incoming type)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self, origins: Mapping[str, str] | None = None) -> str:
        """The difference in words; `origins` says where a stored column lives, if it helps."""
        origins = origins or {}

        def at(column: str) -> str:
            return f" (in {origins[column]})" if column in origins else ""

        lines = [f"column `{c}` is new ({t})" for c, t in self.added.items()]
        lines += [
            f"column `{c}` ({t}) is missing from the data{at(c)}" for c, t in self.removed.items()
        ]
        lines += [
            f"column `{c}` is {new} in the data but {old} in the target{at(c)}"
            for c, (old, new) in self.changed.items()
        ]
        return "; ".join(lines)


def diff_schemas(stored: Mapping[str, Any], incoming: Mapping[str, Any]) -> SchemaDiff:
    """Compare two schemas by column name (types: polars types, or a target's own)."""
    return SchemaDiff(
        added={c: t for c, t in incoming.items() if c not in stored},
        removed={c: t for c, t in stored.items() if c not in incoming},
        changed={c: (stored[c], t) for c, t in incoming.items() if c in stored and stored[c] != t},
    )


def check_schema(
    stored: Mapping[str, Any] | None,
    incoming: Mapping[str, Any],
    policy: SchemaPolicy,
    target: str,
    origins: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Apply the schema policy; return the schema the target will have after the write.

    `strict` refuses any difference. `evolve` adds new columns (nullable) and fills columns
    missing from the data with nulls, but never changes the type of a stored column.
    """
    if stored is None:
        return dict(incoming)
    diff = diff_schemas(stored, incoming)
    if not diff:
        return dict(stored)
    if policy is SchemaPolicy.STRICT or diff.changed:
        advice = (
            "set schema_policy='evolve' to add columns, or migrate"
            if not diff.changed
            else "cast the column in the asset, or migrate"
        )
        raise ValueError(
            f"the schema of {target} differs: {diff.describe(origins)}; {advice} the target"
        )
    return {**stored, **diff.added}


# what a polars (Rust) pattern must escape
_REGEX_SPECIAL = set("\\.+*?()|[]{}^$#&-~")


def literal_name(name: str) -> str:
    """`name` as polars matches it literally: it reads `*` and `^...$` names as patterns."""
    if name != "*" and not (name.startswith("^") and name.endswith("$")):
        return name
    escaped = "".join(f"\\{c}" if c in _REGEX_SPECIAL else c for c in name)
    return f"^{escaped}$"  # a pattern that matches only `name`


def column(name: str) -> pl.Expr:
    """The column called `name`, whatever its name looks like (`pl.col` would read `*` or
    `^a$` as a pattern and pick other columns)."""
    return pl.col(literal_name(name))


def conform(frame: pl.LazyFrame, target: pl.Schema) -> pl.LazyFrame:
    """Order columns as the target has them, filling absent ones with typed nulls."""
    present = frame.collect_schema()
    return frame.select(
        [column(c) if c in present else pl.lit(None, dtype=t).alias(c) for c, t in target.items()]
    )


def check_types(schema: pl.Schema, unsupported: Callable[[pl.DataType], str | None]) -> None:
    """Refuse columns the target's type map cannot hold, naming each one."""
    problems = [f"`{c}` ({t}): {why}" for c, t in schema.items() if (why := unsupported(t))]
    if problems:
        raise ValueError("columns the target cannot store: " + "; ".join(problems))


def schema_to_json(schema: pl.Schema) -> dict[str, Any]:
    """A readable and exact description of a schema (the Arrow IPC form keeps every detail)."""
    import base64

    arrow = pl.DataFrame(schema=schema).to_arrow().schema
    return {
        "columns": [{"name": c, "type": str(t)} for c, t in schema.items()],
        "arrow_schema": base64.b64encode(arrow.serialize().to_pybytes()).decode(),
    }


def schema_from_json(doc: Mapping[str, Any]) -> pl.Schema:
    import base64

    import pyarrow as pa

    arrow = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(doc["arrow_schema"])))
    types = pl.from_arrow(arrow.empty_table()).schema.values()  # type: ignore[union-attr]
    # by Arrow's names: polars renames a column called "" to `column_<n>` on the way in
    return pl.Schema(zip(arrow.names, types, strict=True))


# ---------------------------------------------------------------------------------------------
# Frames: validation in one pass, mode semantics for whole-object rewrites, bounded batches
# ---------------------------------------------------------------------------------------------


def as_lazy(obj: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    if isinstance(obj, pl.DataFrame):
        return obj.lazy()
    if isinstance(obj, pl.LazyFrame):
        return obj
    raise TypeError(f"expected a polars DataFrame or LazyFrame, got {type(obj).__name__}")


@dataclass(frozen=True)
class Refusal:
    """Values of one column that a target cannot hold exactly, refused before anything is written.

    `bad` is True on a row whose value the target would change or lose (NaN in JSON, a date
    Excel cannot represent); the validation pass counts such rows for every refusal at once.
    """

    column: str
    bad: pl.Expr
    why: str


@dataclass(frozen=True)
class Checked:
    """What one validation pass learned about the incoming rows."""

    rows: int
    rows_by_part: dict[str, int]


def validate(
    frame: pl.LazyFrame,
    settings: WriteSettings,
    partitions: PartitionSlice | None,
    refusals: Sequence[Refusal] = (),
    unique_keys: bool = False,
) -> Checked:
    """Check, before anything is written, everything that would make the write wrong.

    One streaming pass computes the row count, rows per partition, rows outside the slice,
    null keys, duplicate keys and the values the target would not keep (`refusals`). Keys are
    checked for an upsert, and for every mode when `unique_keys` (a target whose rows are keyed
    by them, such as a compacted topic, would silently keep one of two rows with one key).
    """
    schema = frame.collect_schema()
    aggregates: list[pl.Expr] = [pl.len().alias("__rows")]
    for i, refusal in enumerate(refusals):
        aggregates.append(refusal.bad.fill_null(False).sum().alias(f"__refused_{i}"))
    if partitions is not None:
        for i, part in enumerate(partitions.parts):
            aggregates.append(part.predicate(schema).sum().alias(f"__part_{i}"))
        inside = partitions.predicate(schema)
        aggregates.append((~inside.fill_null(False)).sum().alias("__outside"))
    keyed = settings.mode is WriteMode.UPSERT or unique_keys
    keys = list(settings.keys) if keyed else []
    missing = [k for k in keys if k not in schema]
    if missing:
        raise ValueError(f"upsert key columns {missing} are not in the data")
    if keys:
        aggregates.append(pl.any_horizontal(pl.col(keys).is_null()).sum().alias("__null_keys"))
    # one key column: its distinct count, in the same pass (a hash set of the keys, about two
    # thirds of the memory of a group_by's table); the group_by then runs only to describe
    # duplicates found. Several key columns: the group_by itself.
    single = len(keys) == 1
    if single:
        aggregates.append(pl.col(keys[0]).n_unique().alias("__distinct"))

    def duplicates() -> pl.LazyFrame:
        dupes = frame.group_by(keys).len().filter(pl.col("len") > 1)
        return dupes.select(pl.len(), pl.struct(keys).head(3).implode().alias("ex"))

    queries = [frame.select(aggregates)]
    if keys and not single:
        queries.append(duplicates())
    results = pl.collect_all(queries, engine="streaming")
    stats = results[0].row(0, named=True)
    if partitions is not None and stats["__outside"]:
        sample = (
            frame.filter(~partitions.predicate(schema).fill_null(False))
            .select(partitions.columns)
            .head(3)
            .collect()
            .rows()
        )
        raise ValueError(
            f"{stats['__outside']} rows fall outside partitions {partitions.label()} "
            f"(e.g. {sample}); a sink replaces exactly its partitions, so filter the asset's"
            " output to them"
        )
    refused = [(r, stats[f"__refused_{i}"]) for i, r in enumerate(refusals)]
    if any(count for _, count in refused):
        raise ValueError("; ".join(_refused(frame, r, n) for r, n in refused if n))
    if keys and stats["__null_keys"]:
        raise ValueError(f"{stats['__null_keys']} rows have a null in upsert keys {keys}")
    if single and stats["__distinct"] < stats["__rows"]:
        results.append(duplicates().collect(engine="streaming"))
    if keys and len(results) > 1 and results[1].item(0, 0):
        examples = results[1].item(0, 1).to_list()
        raise ValueError(
            f"{results[1].item(0, 0)} upsert keys {keys} appear more than once in the data"
            f" (e.g. {examples}); deduplicate before writing"
        )
    by_part = (
        {p.key: int(stats[f"__part_{i}"] or 0) for i, p in enumerate(partitions.parts)}
        if partitions is not None
        else {}
    )
    return Checked(int(stats["__rows"]), by_part)


def _refused(frame: pl.LazyFrame, refusal: Refusal, count: int) -> str:
    """One refusal as a sentence: the column, why, how many rows, and the first one."""
    row, shown = _first_refused(frame, refusal)
    return (
        f"column `{refusal.column}`: {refusal.why} ({count} row{'s' * (count != 1)},"
        f" the first is row {row}: {shown})"
    )


def _first_refused(frame: pl.LazyFrame, refusal: Refusal) -> tuple[int | None, str]:
    """The first refused row's number and its value, shown as Python shows it if it can be
    (a date past year 9999 cannot), else as polars prints it."""
    # by name, literally: polars reads a column called `*` or `^...$` as a pattern
    column = cs.by_name(refusal.column)
    first = frame.with_row_index("__row").filter(refusal.bad.fill_null(False)).head(1)
    for render in (column, column.cast(pl.String, strict=False)):
        try:
            found = first.select("__row", render.alias("__value")).collect()
            if not found.height:
                return None, "no row"
            row, value = found.row(0)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # polars panics are BaseExceptions
            continue
        shown = repr(value)
        return row, shown if len(shown) <= 60 else shown[:57] + "..."
    return None, "a value polars cannot print"


def combine(
    existing: pl.LazyFrame | None,
    incoming: pl.LazyFrame,
    settings: WriteSettings,
    target: pl.Schema | None = None,
) -> pl.LazyFrame:
    """The full new content of an object a target rewrites whole (a file, a sheet).

    `target` is the object's schema after the write (default: the stored one, else the
    data's). An upsert writes only the data's columns: a matched row keeps its stored values
    of the columns the data lacks (`evolve`), as a SQL upsert of those columns would.
    """
    if target is None:
        target = (existing if existing is not None else incoming).collect_schema()
    new = conform(incoming, target)
    if existing is None or settings.mode is WriteMode.REPLACE:
        return new
    existing = conform(existing, target)
    if settings.mode is WriteMode.APPEND:
        return pl.concat([existing, new], how="vertical")
    keys = list(settings.keys)
    only_stored = [c for c in target if c not in incoming.collect_schema()]
    if only_stored:
        stored_values = existing.select(keys + only_stored)
        new = conform(incoming.join(stored_values, on=keys, how="left"), target)
    kept = existing.join(incoming.select(keys), on=keys, how="anti")
    return pl.concat([kept, new], how="vertical")


def iter_batches(frame: pl.DataFrame | pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    """Yield `frame` in batches of at most `rows` rows; a LazyFrame is streamed, never collected."""
    if isinstance(frame, pl.DataFrame):
        yield from frame.iter_slices(rows)
        return
    for batch in frame.collect_batches(chunk_size=rows):
        if batch.height:
            yield batch


# ---------------------------------------------------------------------------------------------
# Metadata and timing
# ---------------------------------------------------------------------------------------------


class Stopwatch:
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch, start = Stopwatch(), time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start


def column_schema(
    schema: Mapping[str, pl.DataType], descriptions: Mapping[str, str | None] | None = None
) -> dg.TableSchema:
    """The stored columns and their types, with the meanings the asset declares."""
    meaning = descriptions or {}
    return dg.TableSchema(
        columns=[dg.TableColumn(n, str(t), description=meaning.get(n)) for n, t in schema.items()]
    )


def declared_descriptions(metadata: Mapping[str, Any]) -> dict[str, str | None]:
    """Column meanings from an asset's `dagster/column_schema` definition metadata."""
    declared = metadata.get("dagster/column_schema")
    if not isinstance(declared, dg.TableSchema):
        declared = getattr(declared, "value", None)  # a TableSchemaMetadataValue
    columns = getattr(declared, "columns", None) or []
    return {c.name: c.description for c in columns if c.description}


def output_metadata(
    *,
    table: str,
    uri: str,
    storage_kind: str,
    schema: Mapping[str, pl.DataType],
    rows: int,
    settings: WriteSettings,
    seconds: float,
    partitions: PartitionSlice | None = None,
    rows_written: int | None = None,
    descriptions: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The standard metadata of every honey_duck output (never a credential)."""
    meta: dict[str, Any] = {
        "dagster/column_schema": column_schema(schema, descriptions),
        "dagster/table_name": table,
        "dagster/uri": dg.MetadataValue.text(uri),
        "dagster/storage_kind": storage_kind,
        "honey_duck/write_mode": settings.mode.value,
        "honey_duck/write_seconds": dg.MetadataValue.float(round(seconds, 4)),
    }
    if settings.mode is WriteMode.UPSERT:
        meta["honey_duck/upsert_keys"] = ", ".join(settings.keys)
    if rows_written is not None:
        meta["honey_duck/rows_written"] = dg.MetadataValue.int(rows_written)
    if partitions is not None and len(partitions.parts) > 1:
        # Dagster copies a range run's metadata onto every partition's materialization, so a
        # range figure must not wear a per-partition name; each partition's own count and
        # location come as an observation of it (`partition_observations`).
        meta["honey_duck/range_row_count"] = dg.MetadataValue.int(rows)
        meta["honey_duck/range"] = partitions.label()
    else:
        meta["dagster/partition_row_count" if partitions else "dagster/row_count"] = (
            dg.MetadataValue.int(rows)
        )
    return meta


def partition_observations(
    key: dg.AssetKey,
    partitions: PartitionSlice,
    checked: Checked,
    settings: WriteSettings,
    uri: Callable[[PartitionSlice], str],
) -> list[dg.AssetObservation]:
    """One observation per partition of a range write: its own rows and its own location.

    After a replace the rows written are the rows the partition holds; after an append or an
    upsert they are not, so only `rows_written` is reported then.
    """
    observations = []
    for part in partitions.parts:
        written = checked.rows_by_part.get(part.key, 0)
        meta: dict[str, Any] = {
            "honey_duck/rows_written": dg.MetadataValue.int(written),
            "dagster/uri": dg.MetadataValue.text(uri(PartitionSlice((part,)))),
        }
        if settings.mode is WriteMode.REPLACE:
            meta["dagster/partition_row_count"] = dg.MetadataValue.int(written)
        observations.append(dg.AssetObservation(key, partition=part.key, metadata=meta))
    return observations


def pid_alive(pid: int) -> bool:
    """Whether a process of this host runs with this PID (one of another user's counts).

    Targets that name their leftovers after the writer's host and PID (staging files,
    staging collections) ask this before reclaiming one.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scan_frames(
    frames: Callable[[int | None], Iterator[pl.DataFrame]], schema: pl.Schema
) -> pl.LazyFrame:
    """A LazyFrame over a target's reader: `frames(batch_size)` yields frames of `schema`,
    one per server batch, when the LazyFrame is collected (never before).

    The pushdowns polars hands an IO source are applied here, once for every target: the
    columns asked for, the predicate, and a row limit that stops the reader early. A reader
    that yields nothing still gives a typed, empty result.
    """
    from polars.io.plugins import register_io_source

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        remaining, produced = n_rows, False
        for frame in frames(batch_size):
            if with_columns is not None:
                frame = frame.select(with_columns)
            if predicate is not None:
                frame = frame.filter(predicate)
            if remaining is not None:
                frame = frame.head(remaining)
                remaining -= frame.height
            produced = True
            yield frame
            if remaining == 0:
                return
        if not produced:
            empty = pl.DataFrame(schema=schema)
            yield empty.select(with_columns) if with_columns is not None else empty

    return register_io_source(source, schema=schema)


def is_lazy_annotation(context: dg.InputContext) -> bool:
    """True when the consuming input is annotated as a LazyFrame."""
    return context.dagster_type.typing_type is pl.LazyFrame


def input_columns(context: dg.InputContext) -> list[str] | None:
    """The `columns` input metadata, if the consumer asked for a subset."""
    columns = (context.definition_metadata or {}).get("columns")
    return list(columns) if columns else None
