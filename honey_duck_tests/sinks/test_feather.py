"""The feather group, landed by the README's main command and read back with pyarrow."""

from pathlib import Path

import polars as pl
import pyarrow.feather

from honey_duck_tests.contract.files import FileContract
from honey_duck_tests.contract.landed import ReconcileContract


def read(path: Path) -> pl.DataFrame:
    return pl.from_arrow(pyarrow.feather.read_table(path))


class TestFeather(FileContract):
    """The contract on feather files, and what `local` landed."""

    word = "feather"
    lands = "feather"
    read = staticmethod(read)

    # no sidecar: a change behind the manager's back reaches the reconciliation check
    test_the_reconciliation_check_names_rows_changed_or_deleted_with_the_native_client = ReconcileContract.test_the_reconciliation_check_names_rows_changed_or_deleted_with_the_native_client  # noqa: E501
