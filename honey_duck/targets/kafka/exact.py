"""The reader's check that a stored value is exactly what its recorded type reads back.

Another producer may write a topic too: a fraction in an Int64 column, a time of day in a Date
column, a decimal with one digit more than its scale, a field the schema record does not know.
`str.json_decode` would cast or drop those without a word. So each decoded chunk is encoded
again the way this sink writes it: a message that comes out byte for byte the same is exact
(every message this sink wrote does). Only the others are compared value by value with the
standard library's JSON, and the first that does not fit is refused, naming the column and the
message's key, never its values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl

from honey_duck.targets.kafka.wire import json_values


def refuse_inexact(
    text: pl.Series,
    decoded: pl.DataFrame,
    schema: pl.Schema,
    keys: Sequence[bytes | None] | pl.Series | None,
    topic: str,
) -> None:
    """Refuse the first message of `text` whose value `decoded` does not hold exactly."""
    if decoded.height == 0:
        return
    again = decoded.select(json_values(schema).alias("again")).to_series()
    differ = (again != text).fill_null(True)
    if not differ.any():
        return
    for i in differ.arg_true().to_list():
        original, canonical = json.loads(text[i]), json.loads(again[i])
        problem = _misfit(original, canonical, schema)
        if problem is None:
            continue
        key = keys[i] if keys is not None else None
        where = (
            f"the message with key {key.decode(errors='replace')}"
            if key is not None
            else f"message {i + 1} of the chunk read"
        )
        raise ValueError(
            f"topic {topic!r}: {where} {problem}; the reader refuses it rather than cast or"
            " drop it (another producer wrote it?): rewrite the message as this sink writes"
            " it, or write the topic again"
        )


def _misfit(original: Any, canonical: Any, schema: pl.Schema) -> str | None:
    if not isinstance(original, dict):
        return "is not a JSON object"
    unknown = [name for name in original if name not in schema]
    if unknown:
        return f"has fields the schema record does not know: {unknown}"
    for name, dtype in schema.items():
        if not _fits(original.get(name), canonical.get(name), dtype):
            return (
                f"holds in column `{name}` a value that is not exactly a {dtype} (it would"
                " read back changed)"
            )
    return None


def _fits(value: Any, canonical: Any, dtype: pl.DataType) -> bool:
    """Whether a stored JSON value reads back as itself: `canonical` is what was decoded."""
    if value is None:
        return canonical is None
    if canonical is None:
        return False
    if isinstance(dtype, pl.List):
        return (
            isinstance(value, list)
            and len(value) == len(canonical)
            and all(_fits(v, c, dtype.inner) for v, c in zip(value, canonical, strict=True))
        )
    if isinstance(dtype, pl.Struct):
        fields = {f.name: f.dtype for f in dtype.fields}
        return (
            isinstance(value, dict)
            and all(name in fields for name in value)
            and all(_fits(value.get(n), canonical.get(n), t) for n, t in fields.items())
        )
    if dtype.is_integer():
        return type(value) is int and value == canonical
    if dtype.is_float():
        return (
            type(value) in (int, float)
            and value == canonical
            and math.copysign(1.0, value) == math.copysign(1.0, canonical)
        )
    if isinstance(dtype, pl.Decimal):
        return isinstance(value, str) and _decimal(value) == _decimal(canonical)
    return type(value) is type(canonical) and value == canonical


def _decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return None
