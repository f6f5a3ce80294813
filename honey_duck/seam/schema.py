"""Schemas: compare, decide by policy, conform, name columns literally, keep exactly."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from honey_duck.seam.settings import SchemaPolicy


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


def case_clashes(names: Sequence[str], why: str) -> list[str]:
    """A sentence per group of names that differ only in case (`Caps` and `CAPS`), for a
    target that cannot keep them apart; `why` says which store folds them together."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.casefold(), []).append(name)
    return [
        f"columns {', '.join(f'`{n}`' for n in same)} differ only in case, which {why} cannot"
        " keep apart; rename all but one in the asset"
        for same in groups.values()
        if len(same) > 1
    ]
