"""Values another program wrote with pymongo that our types cannot hold exactly are refused by
the reader, naming the column and row (never the value), so the reconciliation check fails."""

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from bson.decimal128 import Decimal128

from honey_duck_tests.contract.reconciling import reconciled
from honey_duck_tests.targets.mongo.conftest import Db

FRAME = pl.DataFrame(
    {
        "id": [0, 1, 2],
        "n": [10, 20, 30],
        "day": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)],
        "amount": pl.Series([Decimal("1.25"), Decimal("2.50"), None], dtype=pl.Decimal(12, 2)),
        "name": ["a", "b", "c"],
    }
)

ROW_1 = "the first is row 1"
TAMPERING = {
    "a fraction in an Int64 field": ({"n": 20.5}, ["column `n`", ROW_1]),
    "a time of day in a Date field": ({"day": datetime(2024, 1, 2, 3, 4)}, ["column `day`", ROW_1]),
    "one digit more than the scale": ({"amount": Decimal128("2.505")}, ["column `amount`", ROW_1]),
    "a text in an Int64 field": ({"n": "20"}, ["column `n`", ROW_1]),
    "a field the record does not know": (
        {"secret": "kept"},
        ["fields the schema record does not know: `secret` (1 document"],
    ),
}


@pytest.mark.parametrize("change", TAMPERING, ids=list(TAMPERING))
def test_the_check_fails_on_a_value_our_reader_would_cast(
    db: Db, tmp_path: Path, change: str
) -> None:
    run = reconciled(tmp_path, db.manager(), FRAME, metadata=db.meta(reconcile_keys=["id"]))
    verdict = run.write()
    assert verdict.passed, verdict.description
    values, named = TAMPERING[change]
    db.db["table"].update_one({"id": 1}, {"$set": values})
    verdict = run.check()
    assert not verdict.passed
    assert all(part in verdict.description for part in named), verdict.description
    for value in values.values():
        assert str(value) not in verdict.description and "kept" not in verdict.description


def test_values_another_program_wrote_exactly_still_read(db: Db, tmp_path: Path) -> None:
    """An int32 in an Int64 field and a decimal with fewer places than the scale are exact."""
    run = reconciled(tmp_path, db.manager(), FRAME, metadata=db.meta(reconcile_keys=["id"]))
    assert run.write().passed
    changes: dict[str, Any] = {"n": 20, "amount": Decimal128("2.5")}  # pymongo: int32, 1 place
    db.db["table"].update_one({"id": 1}, {"$set": changes})
    assert db.db["table"].find_one({"id": 1}, {"t": {"$type": "$n"}})["t"] == "int"
    verdict = run.check()
    assert verdict.passed, verdict.description
