"""The feather group, landed by the README's main command and read back with pyarrow."""

from pathlib import Path

import polars as pl
import pyarrow.feather
import pytest

from honey_duck_tests.conftest import LocalRun
from honey_duck_tests.contract import files
from honey_duck_tests.contract.files import FileProbe
from honey_duck_tests.contract.probe import opt_out
from honey_duck_tests.contract.suite import DataContract, LandedContract
from honey_duck_tests.sinks import readback


def read(path: Path) -> pl.DataFrame:
    return pl.from_arrow(pyarrow.feather.read_table(path))


class TestFeather(DataContract, LandedContract):
    """The contract on feather files, and what `local` landed."""

    word = "feather"
    lands = "feather"
    typed_frame = staticmethod(files.typed_frame)
    lazy_frame = staticmethod(files.lazy_frame)

    test_any_frame_of_the_claimed_types_round_trips = opt_out(
        "the format's own property test round-trips its type table (targets/files/"
        "test_formats.py::test_feather_round_trips_every_claimed_type, 120 examples); "
        "a reader without our sidecar cannot type the file's values back"
    )

    @pytest.fixture
    def probe(self, tmp_path: Path) -> FileProbe:
        return FileProbe("feather", tmp_path / "out")

    def assert_files_land(self, local_run: LocalRun) -> None:
        readback.assert_files_land(local_run, "feather", "feather", read)
