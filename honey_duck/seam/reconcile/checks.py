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
from typing import Any

import dagster as dg
import polars as pl

from honey_duck.seam.faults import redact
from honey_duck.seam.frames import as_lazy
from honey_duck.seam.partitions import slice_for
from honey_duck.seam.readback import Readback
from honey_duck.seam.reconcile.compare import compare
from honey_duck.seam.settings import PARTITION_EXPR, WriteMode

CHECK_NAME = "reconciles_with_source"
KEYS = "reconcile_keys"  # asset metadata: the columns that name a row in the examples
BLOCKING = "reconcile_blocking"  # asset metadata: True makes the check blocking


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
            partitions = slice_for(
                partitions_def,
                context.op_execution_context.partition_keys,
                metadata.get(PARTITION_EXPR),
                asset,
            )
        name = readback.name(key, metadata)
        try:
            result = compare(
                name,
                as_lazy(expected),
                as_lazy(readback.read(key, metadata, partitions)),
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
