"""Any frame of the types a sink claims reads back equal, through our reader and the target's
own client, or is refused before writing naming the column (hypothesis, few examples)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from honey_duck_tests.contract.probe import Probe, seen_reader
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.sinks import roundtrip


class RoundTripContract:
    """Subclasses give `probe`, and may narrow `frames` (the strategy), `examples` (fewer on a
    slow server) and `prepared`, `refused`, `expected` (the sink's differences)."""

    frames: ClassVar[st.SearchStrategy[pl.DataFrame]] = roundtrip.frames()
    examples: ClassVar[int] = 25

    def prepared(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The frame as the sink's asset would produce it (a key column for a broker)."""
        return frame

    # a refusal names every refused column (else at least one)
    names_every_refused: ClassVar[bool] = False

    def refused(self, probe: Probe, frame: pl.DataFrame) -> dict[str, str]:
        """The columns the sink refuses before writing, each with words its refusal says
        (by default its declared refusals, which may say anything)."""
        declared = probe.manager().target().refusals(frame.schema)  # type: ignore[attr-defined]
        return dict.fromkeys(roundtrip.refused_columns(declared, frame), "")

    def expected(self, frame: pl.DataFrame) -> pl.DataFrame:
        """What reads back: the frame after the README type table's declared changes."""
        return frame

    def test_any_frame_of_the_claimed_types_round_trips(self, probe: Probe) -> None:
        @settings(
            max_examples=type(self).examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(frame=type(self).frames)
        def one(frame: pl.DataFrame) -> None:
            round_trip(self, probe, self.prepared(frame))

        one()


class ReadContract:
    """Subclasses give `probe` and `lazy_rows`, `lazy_frame(n)` and `lazy_config` (the
    manager's batch settings): a LazyFrame consumer reads in batches, typed exactly."""

    lazy_rows: ClassVar[int] = 5_000
    lazy_config: ClassVar[dict[str, Any]] = {"batch_rows": 1_000}
    lazy_frame: ClassVar[Any]  # (n) -> pl.DataFrame with an `id` column 0..n-1

    def test_a_lazyframe_consumer_reads_in_batches_with_exact_types(self, probe: Probe) -> None:
        n = type(self).lazy_rows
        frame = type(self).lazy_frame(n)
        narrow = frame.columns[1]  # a projection keeps its exact type too
        seen: dict[str, Any] = {}

        def consume(table: pl.LazyFrame) -> None:
            seen["lazy"] = table
            seen["batches"] = [b.height for b in table.collect_batches(chunk_size=1_000)]
            seen["some"] = table.filter(pl.col("id") >= n - 3).select("id", narrow).collect()

        io = probe.manager(**type(self).lazy_config)
        result = run(io, lambda: frame, metadata=probe.meta(), consume=consume)
        assert result.success, error_of(result)
        assert isinstance(seen["lazy"], pl.LazyFrame)
        plan = seen["lazy"].explain()  # not a DataFrame made lazy after the fact
        if probe.streams:
            assert ("PYTHON SCAN" in plan) if probe.python_scan else ("DF [" not in plan), plan
        assert sum(seen["batches"]) == n and len(seen["batches"]) > 1
        assert seen["lazy"].collect_schema() == frame.schema
        back = seen["lazy"].collect().sort("id")
        assert back.schema == frame.schema and back.equals(frame)
        assert sorted(seen["some"]["id"].to_list()) == [n - 3, n - 2, n - 1]
        assert seen["some"].schema == pl.Schema({"id": pl.Int64, narrow: frame.schema[narrow]})


def round_trip(contract: Any, probe: Probe, frame: pl.DataFrame) -> None:
    table = f"p_{time.time_ns()}"
    probe.fresh()
    seen, consume = seen_reader()
    keyed = ["__hd_key__"] if "__hd_key__" in frame.columns else ["id"]
    result = run(
        probe.manager(), lambda: frame, metadata=probe.meta(table, keys=tuple(keyed)),
        consume=consume,
    )  # fmt: skip
    refused = contract.refused(probe, frame)
    if refused:
        message = error_of(result)
        named = [f"column `{c}`" in message and words in message for c, words in refused.items()]
        assert all(named) if contract.names_every_refused else any(named), message
        assert not probe.exists(table)  # refused before anything was written
        return
    assert result.success, error_of(result)
    expected = contract.expected(frame)
    back = seen["t"]
    if "__hd_key__" in frame.columns:
        back = back.sort("__hd_key__")
    roundtrip.assert_columns_equal(expected, {c: back[c].to_list() for c in back.columns})
    roundtrip.assert_reconciles(probe.manager().target().landing, frame, back)
    exact = [c for c, t in frame.schema.items() if probe.exact(t)]
    native = probe.native(table, expected.schema)
    if "__hd_key__" in frame.columns:
        native = native.sort("__hd_key__")
    assert native.height == frame.height
    probe.check_native(table, frame)
    roundtrip.assert_columns_equal(expected.select(exact), {c: native[c].to_list() for c in exact})
