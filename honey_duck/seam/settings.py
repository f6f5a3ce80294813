"""What an asset asks of its sink: write mode, upsert keys, schema policy, partition column."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import dagster as dg

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


def metadata_value(value: Any) -> Any:
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
        meta = {k: metadata_value(v) for k, v in metadata.items()}
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
