"""Two sides' figures compared, and the example keys that tell a person what differs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl

from honey_duck.seam.reconcile.figures import Figures, both_figures, row_hash
from honey_duck.seam.schema import column as by_name
from honey_duck.seam.settings import metadata_value
from honey_duck.seam.target import Landing

EXAMPLES = 5  # example keys a failed check shows


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
    inferred: set[str] = set()  # read back typed from the values: compared as typed JSON text
    for column, dtype in produced.items():
        if column not in stored:
            continue
        want = landing(dtype).dtype
        got = stored[column]
        if want is None:  # the target infers the type from its values (JSON in SQL)
            inferred.add(column)
            declared[column] = pl.String
            continue
        declared[column] = want
        if got != want:
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
        (
            typed_json(_changed(landing(produced[c]), by_name(c)), produced[c])
            if c in inferred
            else _changed(landing(produced[c]), by_name(c)).cast(declared[c])
        ).alias(c)
        for c in common
    )
    kept = landed.select(
        (typed_json(by_name(c), stored[c]) if c in inferred else by_name(c)).alias(c)
        for c in common
    )
    usable_keys = [k for k in keys if k in schema]
    if only_expected_keys and usable_keys:
        kept = kept.join(
            converted.select(by_name(k) for k in usable_keys).unique(),
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


def _changed(landing: Landing, expr: pl.Expr) -> pl.Expr:
    return landing.change(expr) if landing.change is not None else expr


def typed_json(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A value as JSON text with its struct fields in name order: the number 1 and the string
    "1" differ, as do 1 and 1.0 and -0.0 and 0.0, and the order a store keeps keys in (jsonb
    sorts them) does not matter. Null stays null."""
    wrapped = pl.struct(_fields_in_name_order(expr, dtype).alias("v")).struct.json_encode()
    return pl.when(expr.is_not_null()).then(wrapped)


def _fields_in_name_order(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.List | pl.Array):
        items = expr if isinstance(dtype, pl.List) else expr.arr.to_list()
        return items.list.eval(_fields_in_name_order(pl.element(), dtype.inner))
    if isinstance(dtype, pl.Struct):
        # by position: a field called `*` or `^...$` would be read as a pattern
        plain = expr.struct.rename_fields([f"f{i}" for i in range(len(dtype.fields))])
        ordered = sorted(enumerate(dtype.fields), key=lambda field: field[1].name)
        return pl.struct(
            _fields_in_name_order(plain.struct.field(f"f{i}"), f.dtype).alias(f.name)
            for i, f in ordered
        )
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return expr.cast(pl.String)
    return expr


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
    ours = expected.select(*(by_name(c) for c in shown), row_hash(schema).alias(h))
    theirs = landed.select(*(by_name(c) for c in shown), row_hash(schema).alias(h))
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
    values = [metadata_value(v) if isinstance(v, int | float | str | bool) else str(v) for v in row]
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
