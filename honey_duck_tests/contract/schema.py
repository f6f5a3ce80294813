"""The schema policy every sink keeps: strict refuses drift before writing, evolve adds a
column, an empty frame still makes a typed table, odd identifiers survive."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import polars as pl

from honey_duck.seam import WriteMode
from honey_duck_tests.contract.probe import Probe, rows, seen_reader
from honey_duck_tests.contract.runs import error_of, run

AMOUNT = pl.Decimal(12, 2)


class SchemaContract:
    """Subclasses give `probe` (a fixture) and `typed_frame` (every type the sink claims)."""

    typed_frame: ClassVar[Any]

    def test_strict_refuses_drift_before_writing_and_evolve_adds_a_column(
        self, probe: Probe
    ) -> None:
        io = probe.manager()
        first = pl.DataFrame({"id": [1], "amount": pl.Series([Decimal("1.50")], dtype=AMOUNT)})
        assert run(io, lambda: first, metadata=probe.meta()).success
        drifted = pl.DataFrame({"id": [2], "amount": [2.5], "note": ["new"]})
        message = error_of(run(io, lambda: drifted, metadata=probe.meta()))
        assert "column `amount` is Float64" in message and " in the data but " in message
        assert probe.decimal_words in message, message
        assert "column `note` is new" in message
        assert rows(probe.native("table", first.schema), "id", "amount") == [(1, Decimal("1.50"))]
        added = pl.DataFrame({"id": [2], "note": ["new"]})
        # an append where the target has one, else an upsert: either adds a row
        mode = "append" if probe.has(WriteMode.APPEND) else "upsert"
        evolve = probe.meta(schema_policy="evolve", write_mode=mode)
        if mode == "upsert":
            evolve["upsert_keys"] = ["id"]
        seen, consume = seen_reader()
        result = run(io, lambda: added, metadata=evolve, consume=consume)
        assert result.success, error_of(result)
        expected = [(1, Decimal("1.50"), None), (2, None, "new")]
        schema = pl.Schema({"id": pl.Int64, "amount": AMOUNT, "note": pl.String})
        assert rows(probe.native("table", schema), "id", "amount", "note") == expected
        assert seen["t"].schema == schema
        assert rows(seen["t"], "id", "amount", "note") == expected

    def test_an_empty_frame_creates_a_typed_table(self, probe: Probe) -> None:
        empty = type(self).typed_frame().clear()
        seen, consume = seen_reader()
        result = run(probe.manager(), lambda: empty, metadata=probe.meta(), consume=consume)
        assert result.success, error_of(result)
        assert probe.exists("table")
        assert probe.native("table", empty.schema).height == 0
        assert probe.records("table") in (None, 0)
        assert seen["t"].height == 0
        # typed as the sink's type table says (a type inferred from stored values has none)
        landing = probe.manager().target().landing  # type: ignore[attr-defined]
        declared = {c: landing(t).dtype for c, t in empty.schema.items()}
        assert {c: seen["t"].schema[c] for c, t in declared.items() if t is not None} == {
            c: t for c, t in declared.items() if t is not None
        }
        assert list(seen["t"].columns) == empty.columns

    def test_quoted_spaced_and_capitalised_identifiers_survive(self, probe: Probe) -> None:
        names = probe.odd_columns
        frame = pl.DataFrame(  # a dict: from a list of Series polars renames an empty name
            {name: [i * 2 + 1, i * 2 + 2] for i, name in enumerate(names)}
        ).with_columns(pl.col(names[1]).cast(pl.String))
        where = probe.odd_location()
        if probe.capabilities().keyed:
            where["upsert_keys"] = [names[0]]
        seen, consume = seen_reader()
        result = run(probe.manager(), lambda: frame, metadata=where, consume=consume)
        assert result.success, error_of(result)
        assert seen["t"].sort(names[0]).equals(frame)
        native = probe.read_odd(where, frame.schema).sort(names[0])
        assert native.select(names).equals(frame)
