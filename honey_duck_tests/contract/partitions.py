"""Partitions every sink keeps: a range backfilled in one run and one partition rerun, exact
multi-partition key sets, dynamic keys, typed static keys, rows outside the slice refused."""

import dagster as dg
import polars as pl

from honey_duck_tests.contract.probe import Probe, rows
from honey_duck_tests.contract.runs import (
    MONTHLY,
    MULTI,
    backfill_then_rerun_march,
    error_of,
    months,
    run,
)

SALES = months([1]).schema


def range_then_rerun(probe: Probe) -> None:
    """January to April in one run, then March alone with one row: only March changes."""
    first = [(m * 10 + i, "first") for m in (1, 2, 3, 4) for i in (0, 1)]

    def after_backfill() -> None:
        assert rows(probe.native("table", SALES), "id", "c") == first
        probe.backfilled("table")

    backfill_then_rerun_march(probe.manager(), probe.meta(partition_expr="d"), after_backfill)
    assert rows(probe.native("table", SALES), "id", "c", "d") == rows(
        pl.concat([months([1, 2], "first"), months([3], "second").head(1), months([4], "first")]),
        "id",
        "c",
        "d",
    )


def multi_partitions(probe: Probe, **config: object) -> None:
    """Three (month, channel) keys, then January online again with one row: that key shrinks,
    January gallery (the same ids in another channel) and February stay as they were."""
    io = probe.manager(**config)
    partitioned = probe.meta(partition_expr={"month": "d", "channel": "c"}, keys=("id", "c"))

    def produce(context: dg.AssetExecutionContext) -> pl.DataFrame:
        key = context.partition_key.keys_by_dimension
        frame = months([int(key["month"][5:7])], key["channel"])
        return frame.head(1) if context.run.tags.get("again") else frame

    keys = [("2024-01-01", "online"), ("2024-01-01", "gallery"), ("2024-02-01", "online")]
    for (month, channel), tags in [*((k, {}) for k in keys), (keys[0], {"again": "1"})]:
        key = dg.MultiPartitionKey({"month": month, "channel": channel})
        result = run(
            io, produce, metadata=partitioned, partitions_def=MULTI, partition_key=key, tags=tags
        )
        assert result.success, error_of(result)
    assert rows(probe.native("table", SALES), "c", "id") == [
        ("gallery", 10),
        ("gallery", 11),
        ("online", 10),
        ("online", 20),
        ("online", 21),
    ]


class PartitionsContract:
    """Subclasses give `probe` (a fixture)."""

    def test_a_range_backfills_in_one_run_and_a_rerun_replaces_one_partition(
        self, probe: Probe
    ) -> None:
        range_then_rerun(probe)

    def test_multi_partitions_replace_exactly_their_key_set(self, probe: Probe) -> None:
        multi_partitions(probe)

    def test_dynamic_partitions_replace_exactly_their_keys(self, probe: Probe) -> None:
        """Keys added on an instance at run time: each run replaces its own key's rows only."""
        stores = dg.DynamicPartitionsDefinition(name="stores")
        table = dg.asset(
            name="table",
            key_prefix=["t"],
            metadata=probe.meta(partition_expr="store", keys=("store", "n")),
            partitions_def=stores,
        )(
            lambda context: pl.DataFrame(
                {"store": [context.partition_key] * 2, "n": [len(context.partition_key), 0]}
            )
        )
        seen: dict[str, pl.DataFrame] = {}

        @dg.asset(
            ins={"table": dg.AssetIn(["t", "table"])}, partitions_def=stores, io_manager_key="mem"
        )
        def consumer(table: pl.DataFrame) -> None:
            seen["table"] = table

        resources = {"io_manager": probe.manager(), "mem": dg.InMemoryIOManager()}
        defs = dg.Definitions(assets=[table, consumer], resources=resources)
        job = defs.resolve_implicit_global_asset_job_def()
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("stores", ["north", "south"])
            for key in ("north", "south", "north"):
                result = job.execute_in_process(
                    partition_key=key, instance=instance, raise_on_error=False
                )
                assert result.success, error_of(result)
                assert seen["table"]["store"].to_list() == [key, key]
        native = probe.native("table", pl.Schema({"store": pl.String, "n": pl.Int64}))
        assert rows(native, "store", "n") == [
            ("north", 0),
            ("north", 5),
            ("south", 0),
            ("south", 5),
        ]

    def test_static_integer_keys_match_typed_and_other_spellings_are_refused(
        self, probe: Probe
    ) -> None:
        io = probe.manager()
        stores = dg.StaticPartitionsDefinition(["1", "2", "01"])
        frame = pl.DataFrame({"store": [1, 1], "v": ["a", "b"]})
        where = probe.meta(partition_expr="store", keys=("store", "v"))
        for key in ("1", "2"):
            piece = frame.with_columns(store=pl.lit(int(key), dtype=pl.Int64))
            done = run(io, piece.clone, metadata=where, partitions_def=stores, partition_key=key)
            assert done.success, error_of(done)
        redo = run(
            io, lambda: frame.head(1), metadata=where, partitions_def=stores, partition_key="1"
        )
        assert redo.success, error_of(redo)
        odd = run(io, lambda: frame, metadata=where, partitions_def=stores, partition_key="01")
        assert "partition key '01' is not how column `store` (Int64) spells 1" in error_of(odd)
        native = probe.native("table", frame.schema)
        assert rows(native, "store", "v") == [(1, "a"), (2, "a"), (2, "b")]

    def test_rows_outside_the_partition_are_refused(self, probe: Probe) -> None:
        result = run(
            probe.manager(),
            lambda: months([1, 2]),
            metadata=probe.meta(partition_expr="d"),
            partitions_def=MONTHLY,
            partition_key="2024-01-01",
        )
        assert "2 rows fall outside partitions 2024-01-01" in error_of(result)
        assert not probe.exists("table")  # nothing was written
