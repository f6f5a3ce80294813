"""What the README's `local` command landed for a sink, reconciled; and the reconciliation
check catching a change made behind the manager's back with the target's own client."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl

from honey_duck_tests.conftest import LocalRun
from honey_duck_tests.contract.probe import Probe
from honey_duck_tests.contract.reconciling import reconciled
from honey_duck_tests.sinks import readback


class LandedContract:
    """Subclasses give `word` and how `local` lands it: `"duckdb"` (the stand-in of a server
    sink, an embedded DuckDB) or a file extension."""

    word: ClassVar[str]
    lands: ClassVar[str] = "duckdb"

    def test_the_local_command_lands_the_pipeline_tables(self, local_run: LocalRun) -> None:
        """The README's main command, run twice by the fixture: each table equals the
        pipeline's, read with a client that shares no code with ours."""
        if type(self).lands == "duckdb":
            readback.assert_duckdb_stand_in_lands(local_run, type(self).word)
            return
        self.assert_files_land(local_run)
        readback.assert_idempotent(local_run, type(self).word)

    def assert_files_land(self, local_run: LocalRun) -> None:
        raise NotImplementedError("a file sink says how to read its files")

    def test_the_reconciliation_checks_pass_after_the_local_command(
        self, local_run: LocalRun
    ) -> None:
        """Every asset's check read it back and found the transform's rows, value for value."""
        readback.assert_reconciled(local_run, type(self).word)


class ReconcileContract:
    """Subclasses give `probe` (a fixture) with `update` and `delete`."""

    def test_the_reconciliation_check_names_rows_changed_or_deleted_with_the_native_client(
        self, probe: Probe, tmp_path: Path
    ) -> None:
        frame = pl.DataFrame({"id": [1, 2, 3], "price": [1.5, 2.5, 3.5], "name": ["a", "b", None]})
        table = "reconciled"
        metadata = probe.meta(table, reconcile_keys=["id"])
        checked = reconciled(tmp_path, probe.manager(), frame, metadata=metadata)
        verdict = checked.write()
        assert verdict.passed, verdict.description
        assert probe.table_name(table) in verdict.metadata["honey_duck/target"]
        assert verdict.metadata["honey_duck/target_rows"] == 3
        probe.update(table, 2, "price", 2.75)
        verdict = checked.check()
        assert not verdict.passed
        assert "values of `price` differ" in verdict.description, verdict.description
        assert "changed id [2]" in verdict.description
        assert verdict.metadata["honey_duck/differing_columns"] == ["price"]
        probe.delete(table, 3)
        verdict = checked.check()
        assert "2 rows where the asset has 3" in verdict.description, verdict.description
        assert "missing id [3]" in verdict.description
