"""Reconciliation: after a write, prove that what the target holds is what the asset produced.

Every destination asset gets an asset check (`reconcile_checks`) that reads the asset back
through its target's own reader and compares it with the transform's rows for the same
partitions, in one streaming pass per side:

- the row count;
- each column's null count;
- each column's content digest and a whole-row digest: sums (modulo 2^64) of 64-bit value
  hashes, so row order does not matter, a value moved between rows is caught by the row digest,
  and duplicated rows count as often as they occur.

Both sides are hashed in the target's types: the asset's columns are first converted as the
target's type table declares (`Target.landing`: UInt64 as Decimal(20, 0) in SQL, Excel's whole
milliseconds), so a declared conversion is no false alarm, while a column that reads back in
another type, or a value the target changed without saying so, fails the check.

Memory stays bounded: both sides reduce to a few numbers per column in polars' streaming
engine. Only a mismatch costs more: a second pass joins the two sides' row hashes (8 bytes per
row, plus the key columns) to name a few example keys.
"""

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import dagster as dg
import polars as pl

from honey_duck.io import core
from honey_duck.io.core import WriteMode
from honey_duck.io.faults import redact
from honey_duck.io.sink import Landing

CHECK_NAME = "reconciles_with_source"
KEYS = "reconcile_keys"  # asset metadata: the columns that name a row in the examples
BLOCKING = "reconcile_blocking"  # asset metadata: True makes the check blocking
EXAMPLES = 5
_SEED = 0x68_6F_6E_65_79  # "honey": any fixed seed; both sides hash in the same process
_FNV_OFFSET, _FNV_PRIME = 0xCBF2_9CE4_8422_2325, 0x100_0000_01B3  # FNV-1a's 64-bit constants


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
        partitions: core.PartitionSlice | None,
    ) -> pl.DataFrame | pl.LazyFrame:
        """The stored rows of the asset (only `partitions`), through the target's own reader."""
        ...


# ---------------------------------------------------------------------------------------------
# Figures of one side
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """What one side's streaming pass found: rows, and per column nulls and a content digest."""

    rows: int
    nulls: dict[str, int]
    digests: dict[str, int]
    row_digest: int

    def checksum(self) -> str:
        return f"{self.row_digest:016x}"


def _hashable(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A column in a form whose hash depends on its values only (not a category's code)."""
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return expr.cast(pl.String)
    return expr


def _hashes(schema: pl.Schema) -> list[pl.Expr]:
    """Each column's 64-bit value hash, as `h0`, `h1`, ... (a null hashes to a fixed value).

    Each position has a seed of its own, so one value hashes differently in two columns and a
    row's columns cannot cancel out in `_row_of`.
    """
    return [
        _hashable(core.column(c), t).hash(_SEED + i).alias(f"h{i}")
        for i, (c, t) in enumerate(schema.items())
    ]


def _row_of(hashes: Sequence[pl.Expr]) -> pl.Expr:
    """A row's hash from its column hashes: FNV-1a over 64-bit words, then hashed once more.

    A struct of the values hashed again cost twenty times more (1M rows of the benchmark's 15
    columns: 0.74 s against 0.04 s). Position matters, so a value moved to another column or row
    changes the row's hash; UInt64 products wrap, as the sums do.
    """
    if not hashes:
        return pl.lit(0, dtype=pl.UInt64)
    prime = pl.lit(_FNV_PRIME, dtype=pl.UInt64)
    combined = pl.lit(_FNV_OFFSET, dtype=pl.UInt64)
    for hashed in hashes:
        combined = combined.xor(hashed) * prime
    return combined.hash(_SEED)


def row_hash(schema: pl.Schema) -> pl.Expr:
    """One 64-bit hash of each whole row (columns in `schema`'s order)."""
    return _row_of(_hashes(schema))


def _figures_query(frame: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """One row: `rows`, `n<i>` null counts, `d<i>` column digests and the `row` digest.

    Each value is hashed once; the column digests are sums of those hashes and the row digest
    the sum of a hash of each row's column hashes. UInt64 sums wrap (modulo 2^64), which makes
    them order-independent: `test_reconcile` pins that polars keeps doing so.
    """
    hashes = [pl.col(f"h{i}") for i in range(len(schema))]
    per_row = frame.select(
        *_hashes(schema),
        *(core.column(c).is_null().alias(f"n{i}") for i, c in enumerate(schema)),
    )
    return per_row.select(
        pl.len().alias("rows"),
        *(pl.col(f"n{i}").sum().alias(f"n{i}") for i in range(len(schema))),
        *(h.sum().alias(f"d{i}") for i, h in enumerate(hashes)),
        _row_of(hashes).sum().alias("row"),
    )


def _read_figures(found: Mapping[str, Any], schema: pl.Schema) -> Figures:
    names = list(schema)
    return Figures(
        rows=int(found["rows"]),
        nulls={c: int(found[f"n{i}"] or 0) for i, c in enumerate(names)},
        digests={c: int(found[f"d{i}"] or 0) for i, c in enumerate(names)},
        row_digest=int(found["row"] or 0),
    )


def figures(frame: pl.LazyFrame, schema: pl.Schema) -> Figures:
    """Row count, null counts and digests of `frame`'s `schema` columns, in one streaming pass."""
    return both_figures([frame], schema)[0]


def both_figures(frames: Sequence[pl.LazyFrame], schema: pl.Schema) -> list[Figures]:
    """`figures` of several frames at once: one streaming query each, run side by side."""
    found = pl.collect_all([_figures_query(f, schema) for f in frames], engine="streaming")
    return [_read_figures(f.row(0, named=True), schema) for f in found]


# ---------------------------------------------------------------------------------------------
# Comparing the two sides
# ---------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """The outcome of one reconciliation: both sides' figures and what differs."""

    name: str  # where the asset landed
    expected: Figures | None
    landed: Figures | None
    problems: list[str] = field(default_factory=list)  # in words, most telling first
    differing: list[str] = field(default_factory=list)  # columns, in the asset's order
    examples: dict[str, list[Any]] = field(default_factory=dict)  # missing/unexpected/changed
    types: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (declared, read)

    @property
    def passed(self) -> bool:
        return not self.problems

    def description(self) -> str:
        if self.passed:
            rows = self.landed.rows if self.landed else 0
            return f"`{self.name}` holds the asset's {rows:,} rows, value for value."
        return f"`{self.name}` differs from the asset: " + "; ".join(self.problems) + "."

    def metadata(self, seconds: float) -> dict[str, Any]:
        e, g = self.expected, self.landed
        out: dict[str, Any] = {
            "honey_duck/target": self.name,
            "honey_duck/check_seconds": round(seconds, 3),
        }
        if e is not None:
            out["honey_duck/asset_rows"] = e.rows
            out["honey_duck/asset_checksum"] = e.checksum()
        if g is not None:
            out["honey_duck/target_rows"] = g.rows
            out["honey_duck/target_checksum"] = g.checksum()
        if e is not None and g is not None:
            out["honey_duck/columns"] = dg.MetadataValue.md(self._column_table(e, g))
        if self.differing:
            out["honey_duck/differing_columns"] = self.differing
        if self.examples:
            out["honey_duck/example_keys"] = dg.MetadataValue.json(self.examples)
        return out

    def _column_table(self, e: Figures, g: Figures) -> str:
        lines = [
            "| column | nulls in the asset | nulls in the target | values |",
            "|---|---|---|---|",
        ]
        for column in e.nulls:
            if column in self.types:
                declared, read = self.types[column]
                verdict = f"reads back as {read}, declared {declared}"
            elif column not in g.nulls:
                verdict = "missing from the target"
            else:
                verdict = "equal" if e.digests[column] == g.digests[column] else "**differ**"
            theirs = g.nulls.get(column)
            lines.append(
                f"| {_md(column)} | {e.nulls[column]:,} |"
                f" {'—' if theirs is None else f'{theirs:,}'} | {verdict} |"
            )
        for column in g.nulls:
            if column not in e.nulls:
                lines.append(f"| {_md(column)} | — | {g.nulls[column]:,} | not in the asset |")
        return "\n".join(lines)


def _md(name: str) -> str:
    return "`" + name.replace("|", "\\|").replace("`", "'") + "`"


def compare(
    name: str,
    expected: pl.LazyFrame,
    landed: pl.LazyFrame,
    landing: Callable[[pl.DataType], Landing],
    keys: Sequence[str] = (),
    only_expected_keys: bool = False,
) -> Comparison:
    """Compare the asset's rows (`expected`) with what the target reads back (`landed`).

    `expected` is converted as `landing` declares for each of its types; the columns of
    `landed` must read back in exactly those types. With `only_expected_keys` (an upsert
    target, which also keeps rows of earlier runs), only the landed rows whose `keys` the asset
    produced are compared.
    """
    produced = expected.collect_schema()
    stored = landed.collect_schema()
    result = Comparison(name, None, None)
    declared: dict[str, pl.DataType] = {}
    for column, dtype in produced.items():
        if column not in stored:
            continue
        want = landing(dtype).dtype
        got = stored[column]
        # None: the target infers the type from its values (JSON in SQL); compare in its type
        declared[column] = got if want is None else want
        if want is not None and got != want:
            result.types[column] = (str(want), str(got))
    missing = [c for c in produced if c not in stored]
    extra = [c for c in stored if c not in produced]
    if missing:
        result.problems.append(f"column(s) {missing} are missing from the target")
    if extra:
        result.problems.append(f"column(s) {extra} are in the target but not in the asset")
    for column, (want, got) in result.types.items():
        result.problems.append(
            f"column `{column}` reads back as {got}, where the type table says {want}"
        )
    common = [c for c in produced if c in stored and c not in result.types]
    schema = pl.Schema({c: declared[c] for c in common})
    converted = expected.select(
        _convert(landing(produced[c]), core.column(c), declared[c]).alias(c) for c in common
    )
    kept = landed.select(core.column(c) for c in common)
    usable_keys = [k for k in keys if k in schema]
    if only_expected_keys and usable_keys:
        kept = kept.join(
            converted.select(core.column(k) for k in usable_keys).unique(),
            on=usable_keys,
            how="semi",
        )
    result.expected, result.landed = both_figures([converted, kept], schema)
    e, g = result.expected, result.landed
    if e.rows != g.rows:
        result.problems.insert(0, f"{g.rows:,} rows where the asset has {e.rows:,}")
    for column in common:
        if e.nulls[column] != g.nulls[column]:
            result.differing.append(column)
            result.problems.append(
                f"`{column}` has {g.nulls[column]:,} nulls where the asset has {e.nulls[column]:,}"
            )
        elif e.digests[column] != g.digests[column]:
            result.differing.append(column)
            result.problems.append(f"values of `{column}` differ")
    if e.row_digest != g.row_digest and not result.differing and e.rows == g.rows:
        result.problems.append("the same values sit in different rows")
    result.differing = list(dict.fromkeys([*result.types, *result.differing]))
    if result.problems and common:
        result.examples = examples(converted, kept, schema, usable_keys)
        if result.examples:
            result.problems.append("e.g. " + _describe_examples(result.examples, usable_keys))
    return result


def _convert(landing: Landing, expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    changed = landing.change(expr) if landing.change is not None else expr
    return changed.cast(dtype)


def examples(
    expected: pl.LazyFrame,
    landed: pl.LazyFrame,
    schema: pl.Schema,
    keys: Sequence[str],
    limit: int = EXAMPLES,
) -> dict[str, list[Any]]:
    """A few rows only one side has: by key when `keys` name rows, else the rows themselves.

    A key both sides have with other values is `changed`; one only the asset has `missing`;
    one only the target has `unexpected`.
    """
    h = "__honey_duck_row_hash"
    shown = list(keys) or list(schema)[:4]
    ours = expected.select(*(core.column(c) for c in shown), row_hash(schema).alias(h))
    theirs = landed.select(*(core.column(c) for c in shown), row_hash(schema).alias(h))
    only_ours, only_theirs = pl.collect_all(
        [
            ours.join(theirs.select(h), on=h, how="anti").drop(h).head(limit),
            theirs.join(ours.select(h), on=h, how="anti").drop(h).head(limit),
        ],
        engine="streaming",
    )
    found: dict[str, list[Any]] = {}
    if keys:
        ours_keys = {tuple(r) for r in only_ours.rows()}
        theirs_keys = {tuple(r) for r in only_theirs.rows()}
        changed = sorted(ours_keys & theirs_keys, key=repr)
        missing = sorted(ours_keys - theirs_keys, key=repr)
        unexpected = sorted(theirs_keys - ours_keys, key=repr)
        for label, rows in (("changed", changed), ("missing", missing), ("unexpected", unexpected)):
            if rows:
                found[label] = [_plain_key(keys, r) for r in rows[:limit]]
        return found
    if only_ours.height:
        found["only in the asset"] = [_short(r) for r in only_ours.rows(named=True)]
    if only_theirs.height:
        found["only in the target"] = [_short(r) for r in only_theirs.rows(named=True)]
    return found


def _plain_key(keys: Sequence[str], row: tuple[Any, ...]) -> Any:
    values = [core._plain(v) if isinstance(v, int | float | str | bool) else str(v) for v in row]
    return values[0] if len(keys) == 1 else dict(zip(keys, values, strict=True))


def _short(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        text = v if isinstance(v, int | float | bool) or v is None else str(v)
        out[k] = text[:40] + "…" if isinstance(text, str) and len(text) > 41 else text
    return out


def _describe_examples(found: Mapping[str, list[Any]], keys: Sequence[str]) -> str:
    label = ", ".join(keys) if keys else "rows"
    parts = [f"{kind} {label} {values}" for kind, values in found.items()]
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# The asset checks
# ---------------------------------------------------------------------------------------------


def reconcile_checks(
    assets: Sequence[dg.AssetsDefinition],
    manager_key: str,
    readback: Callable[[Any], Readback] | None = None,
    manager: Any = None,
) -> list[dg.AssetChecksDefinition]:
    """One reconciliation check per destination asset written through `manager_key`.

    The check reads the asset's upstream transform (its single input) through that input's IO
    manager, and the destination through the resource under `manager_key`, whose `readback()`
    gives the target's reader and type table (every IO manager on the sink seam has one). An
    official manager has none: its sink module's `readback(manager)` wraps the configured
    `manager` instead. Assets written in `append` mode are not checked: the target holds every
    run's rows, the asset only the last run's.
    """
    checks = []
    for assets_def in assets:
        for key in assets_def.keys:
            spec = assets_def.specs_by_key[key]
            metadata = dict(spec.metadata)
            if str(metadata.get("write_mode", "replace")) == WriteMode.APPEND.value:
                continue
            upstream = [d.asset_key for d in spec.deps]
            if len(upstream) != 1:
                continue
            if readback is None:
                opener: Callable[[Any], Readback] = lambda resources: getattr(  # noqa: E731
                    resources, manager_key
                ).readback()
                needs = {manager_key}
            else:
                opener, needs = (lambda resources: readback(manager)), set()
            with warnings.catch_warnings():
                # partitioned asset checks are a Dagster preview: said once, in the README
                warnings.simplefilter("ignore", dg.PreviewWarning)
                check = _check(key, upstream[0], spec.partitions_def, metadata, opener, needs)
            checks.append(check)
    return checks


def _check(
    key: dg.AssetKey,
    upstream: dg.AssetKey,
    partitions_def: dg.PartitionsDefinition | None,
    metadata: Mapping[str, Any],
    opener: Callable[[Any], Readback],
    resource_keys: set[str],
) -> dg.AssetChecksDefinition:
    asset = key.to_user_string()
    keys = [str(k) for k in (metadata.get(KEYS) or metadata.get("upsert_keys") or [])]
    upsert = str(metadata.get("write_mode", "replace")) == WriteMode.UPSERT.value
    blocking = bool(metadata.get(BLOCKING, False))

    @dg.asset_check(
        asset=key,
        name=CHECK_NAME,
        description=(
            f"`{asset}` read back from its target equals `{upstream.to_user_string()}`: rows,"
            " nulls per column and a content checksum, after the target's declared type"
            " conversions."
        ),
        blocking=blocking,
        additional_ins={"expected": dg.AssetIn(upstream)},
        required_resource_keys=resource_keys,
        partitions_def=partitions_def,
    )
    def reconcile(context: dg.AssetCheckExecutionContext, expected: pl.LazyFrame) -> Any:
        started = time.perf_counter()
        readback = opener(context.resources)
        partitions = None
        if partitions_def is not None:
            partitions = core.slice_for(
                partitions_def,
                context.op_execution_context.partition_keys,
                metadata.get(core.PARTITION_EXPR),
                asset,
            )
        name = readback.name(key, metadata)
        try:
            result = compare(
                name,
                core.as_lazy(expected),
                core.as_lazy(readback.read(key, metadata, partitions)),
                readback.landing,
                keys,
                only_expected_keys=upsert,
            )
        except Exception as exc:  # an unreadable target fails the check, saying why
            secrets = readback.secrets() if hasattr(readback, "secrets") else ()
            cause = redact(str(exc), secrets)
            return dg.AssetCheckResult(
                passed=False,
                description=f"`{name}` could not be read back: {cause}",
                metadata={"honey_duck/target": name},
            )
        return dg.AssetCheckResult(
            passed=result.passed,
            description=result.description(),
            metadata=result.metadata(time.perf_counter() - started),
        )

    return reconcile
