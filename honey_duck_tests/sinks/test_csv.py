"""The csv group, landed by the README's main command and read back with DuckDB's CSV reader."""

from pathlib import Path

import duckdb
import polars as pl
import pytest

from honey_duck_tests.conftest import LocalRun
from honey_duck_tests.contract import files
from honey_duck_tests.contract.files import FileProbe
from honey_duck_tests.contract.probe import opt_out
from honey_duck_tests.contract.suite import DataContract, LandedContract
from honey_duck_tests.sinks import readback


def read(path: Path) -> pl.DataFrame:
    return duckdb.sql(f"select * from read_csv('{path}')").pl()


class TestCsv(DataContract, LandedContract):
    """The contract on csv files, and what `local` landed."""

    word = "csv"
    lands = "csv"
    typed_frame = staticmethod(files.typed_frame)
    lazy_frame = staticmethod(files.lazy_frame)

    test_any_frame_of_the_claimed_types_round_trips = opt_out(
        "the format's own property test round-trips its type table (targets/files/"
        "test_formats.py::test_csv_round_trips_every_claimed_type, 120 examples); "
        "a reader without our sidecar cannot type the file's values back"
    )
    test_the_reconciliation_check_names_rows_changed_or_deleted_with_the_native_client = opt_out(
        "a file changed behind the manager's back fails its sidecar's digest on the next read,"
        " before the check compares values (targets/files/test_files.py::"
        "test_a_sidecar_that_no_longer_matches_its_file_is_reported_and_repaired)"
    )

    @pytest.fixture
    def probe(self, tmp_path: Path) -> FileProbe:
        return FileProbe("csv", tmp_path / "out")

    def assert_files_land(self, local_run: LocalRun) -> None:
        readback.assert_files_land(local_run, "csv", "csv", read)
