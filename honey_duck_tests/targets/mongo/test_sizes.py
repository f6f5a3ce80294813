"""A row too big for one BSON document is refused before the first write, by the size formula."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl

from honey_duck.targets.mongo.encode import encode_batch
from honey_duck.targets.mongo.sizes import element_size
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.targets.mongo.conftest import Db

MIB = 1024 * 1024


def every_shape() -> pl.DataFrame:
    """Every column type the sink takes, nulls, nested values and non-ASCII names."""
    return pl.DataFrame(
        {
            "id": [1, 2, 3],
            "small": pl.Series([1, None, 3], dtype=pl.Int8),
            "u64": pl.Series([2**63 - 1, 0, None], dtype=pl.UInt64),
            "real": pl.Series([1.5, None, float("nan")], dtype=pl.Float32),
            "name": ["Zoë 🦆", "", None],
            "flag": [True, None, False],
            "day": [date(2024, 1, 2), None, date(1, 1, 1)],
            "at": [datetime(2024, 1, 2, 3), None, datetime(9999, 12, 31)],
            "amount": pl.Series([Decimal("1.25"), None, Decimal("-3")], dtype=pl.Decimal(10, 2)),
            "took": [timedelta(seconds=1), None, timedelta(days=-2)],
            "blob": [b"\x00\xff", None, b""],
            "kind": pl.Series(["a", None, "b"], dtype=pl.Categorical),
            "level": pl.Series(["x", None, "y"], dtype=pl.Enum(["x", "y"])),
            "nothing": pl.Series([None, None, None], dtype=pl.Null),
            "tags": [["a", "bé"], None, []],
            "ints": [[2**40, 1, None], None, list(range(120))],
            "pair": pl.Series([[1, 2], [3, 4], None], dtype=pl.Array(pl.Int16, 2)),
            "info": [{"k": 1, "v": "x"}, None, {"k": 2, "v": None}],
            "deep": [[{"a": [1, None], "b": None}], [None], None],
            "ü": ["é", "", None],
        }
    )


def test_the_size_formula_is_the_encoded_size_of_every_column_type() -> None:
    frame = every_shape()
    for name, dtype in frame.schema.items():
        encoded = [len(doc) - 5 for doc in encode_batch(frame.select(name)).to_pylist()]
        assert frame.select(element_size(name, dtype)).to_series().to_list() == encoded, name


def test_an_upsert_with_an_oversized_row_in_its_third_batch_writes_nothing(db: Db) -> None:
    io = db.manager(batch_rows=1_000)
    upsert = db.meta(write_mode="upsert", upsert_keys=["id"])
    old = pl.DataFrame({"id": [0, 1, 2], "v": ["old"] * 3, "a": ["-"] * 3, "b": ["-"] * 3})
    assert run(io, lambda: old, metadata=upsert).success
    # each text fits a document alone; row 2,500 holds two, together over 16 MiB
    big = pl.when(pl.col("id") == 2_500).then(pl.lit("q" * (9 * MIB))).otherwise(pl.lit("-"))
    frame = pl.DataFrame({"id": pl.int_range(0, 3_000, eager=True)}).with_columns(
        v=pl.lit("new"), a=big, b=big
    )
    message = error_of(run(io, lambda: frame, metadata=upsert))
    assert db.db["table"].count_documents({}) == 3  # not one batch applied
    assert db.docs() == old.to_dicts()
    assert "column `a`" in message and "1 row, the first is row 2500" in message, message
    assert "16,777,216 bytes" in message and "qqqq" not in message
