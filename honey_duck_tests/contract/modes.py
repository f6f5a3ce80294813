"""The write modes every sink keeps: replace is idempotent, upsert updates, inserts and keeps
stored columns, append appends, bad keys are refused before writing, missing modes at load."""

from __future__ import annotations

from typing import Any, ClassVar

import dagster as dg
import polars as pl
import pytest

from honey_duck.seam import WriteMode, check_assets
from honey_duck_tests.contract.probe import Probe, rows, seen_reader
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.sinks import roundtrip

UPSERT = {"write_mode": "upsert", "upsert_keys": ["id"]}


def materialized(result: dg.ExecuteInProcessResult) -> Any:
    return result.get_asset_materialization_events()[0].materialization.metadata


class ModesContract:
    """Subclasses give `probe` (a fixture) and `typed_frame` (every type the sink claims)."""

    typed_frame: ClassVar[Any]  # () -> pl.DataFrame, with nulls and edge values

    def test_every_type_round_trips_and_replace_is_idempotent(self, probe: Probe) -> None:
        frame = type(self).typed_frame()
        seen, consume = seen_reader()
        io = probe.manager()
        meta = probe.meta()
        for _ in range(2):
            result = run(io, frame.lazy, metadata=meta, consume=consume)
            assert result.success, error_of(result)
        back = seen["t"].sort("id")
        assert back.schema == frame.schema
        roundtrip.assert_columns_equal(frame, {c: back[c].to_list() for c in back.columns})
        native = probe.native("table", frame.schema).sort("id")  # the target's own client
        assert native.height == 3  # two replaces, one copy of each row
        exact = [c for c, t in frame.schema.items() if probe.exact(t)]
        roundtrip.assert_columns_equal(frame.select(exact), {c: native[c].to_list() for c in exact})
        metadata = materialized(result)
        assert metadata["dagster/row_count"].value == 3
        assert metadata["dagster/table_name"].value == probe.table_name("table")
        assert "password" not in str(metadata).lower()
        probe.check_metadata(metadata, "table")
        assert probe.leftovers() == []

    def test_upsert_updates_inserts_and_keeps_stored_columns_the_data_lacks(
        self, probe: Probe
    ) -> None:
        io = probe.manager()
        first = pl.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"], "note": ["k", "e", "p"]})
        assert run(io, lambda: first, metadata=probe.meta(**UPSERT)).success
        second = pl.DataFrame({"id": [3, 4], "v": ["C", "D"]})
        seen, consume = seen_reader()
        evolve = probe.meta(**UPSERT, schema_policy="evolve")
        result = run(io, lambda: second, metadata=evolve, consume=consume)
        assert result.success, error_of(result)
        expected = [(1, "a", "k"), (2, "b", "e"), (3, "C", "p"), (4, "D", None)]
        assert rows(seen["t"], "id", "v", "note") == expected  # `note` of 3 kept
        native = probe.native("table", first.schema)
        assert rows(native, "id", "v", "note") == expected
        assert materialized(result)["dagster/row_count"].value == 4

    def test_append_appends_and_an_upsert_key_holds(self, probe: Probe) -> None:
        io = probe.manager()
        if not probe.has(WriteMode.APPEND):
            with pytest.raises(dg.DagsterInvalidDefinitionError, match="write_mode 'append'"):
                check_assets([_asset(probe.meta(write_mode="append"))], {"io_manager": io})
            return
        first = pl.DataFrame({"id": [1, 2], "v": ["a", "b"]})
        assert run(io, lambda: first, metadata=probe.meta(**UPSERT)).success
        append = probe.meta(write_mode="append")
        more = pl.DataFrame({"id": [3], "v": ["c"]})
        result = run(io, lambda: more, metadata=append)
        assert result.success, error_of(result)
        again = run(io, lambda: more, metadata=append)
        native = probe.native("table", first.schema)
        if probe.holds_keys:  # the key the upsert created the table with still holds
            message = error_of(again).lower()
            assert "duplicate key" in message or "constraint" in message, message
            assert rows(native, "id", "v") == [(1, "a"), (2, "b"), (3, "c")]
        else:
            assert again.success, error_of(again)
            assert rows(native, "id", "v") == [(1, "a"), (2, "b"), (3, "c"), (3, "c")]

    @pytest.mark.parametrize("mode", ["replace", "upsert"])
    @pytest.mark.parametrize(
        ("frame", "expected"),
        [
            (pl.DataFrame({"id": [5, 5], "v": ["x", "y"]}), "appear more than once"),
            (
                pl.DataFrame({"id": [None, 6], "v": ["x", "y"]}),
                "1 rows have a null in upsert keys ['id']",
            ),
        ],
        ids=["duplicate", "null"],
    )
    def test_duplicate_and_null_keys_fail_before_anything_is_written(
        self, probe: Probe, mode: str, frame: pl.DataFrame, expected: str
    ) -> None:
        io = probe.manager()
        first = pl.DataFrame({"id": [1], "v": ["a"]})
        keyed = probe.capabilities().keyed
        if mode == "replace" and not keyed:  # no keys declared or needed: any rows replace
            assert run(io, lambda: first, metadata=probe.meta()).success
            result = run(io, lambda: frame, metadata=probe.meta())
            assert result.success, error_of(result)
            assert rows(probe.native("table", first.schema), "id", "v") == rows(frame, "id", "v")
            return
        meta = probe.meta(write_mode=mode, upsert_keys=["id"])
        assert run(io, lambda: first, metadata=meta).success
        result = run(io, lambda: frame, metadata=meta)
        assert expected in error_of(result)
        assert rows(probe.native("table", first.schema), "id", "v") == [(1, "a")]
        assert probe.records("table") in (None, 1)  # nothing sent, not even superseded

    def test_modes_it_lacks_are_refused_when_the_definitions_load(self, probe: Probe) -> None:
        io = probe.manager()
        caps = probe.capabilities()
        for mode in WriteMode:
            meta = probe.meta(
                write_mode=mode.value,
                **({} if mode is not WriteMode.UPSERT else {"upsert_keys": ["id"]}),
            )
            if mode in caps.modes:
                check_assets([_asset(meta)], {"io_manager": io})
                continue
            with pytest.raises(dg.DagsterInvalidDefinitionError) as refused:
                check_assets([_asset(meta)], {"io_manager": io})
            message = str(refused.value)
            assert f"`keyed` ({probe.word} sink)" in message, message
            assert f"write_mode '{mode.value}' on an asset (it supports: " in message


def _asset(metadata: dict[str, Any]) -> dg.AssetsDefinition:
    return dg.asset(name="keyed", metadata=metadata)(lambda: pl.DataFrame({"id": [1]}))
