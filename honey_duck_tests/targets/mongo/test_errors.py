"""A MongoDB error never carries a row's values: not the key, not the document's bytes."""

import polars as pl

from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.targets.mongo.conftest import Db

SECRET = "hunter2-do-not-show"
KEY = 987_654_321


def shown(result: object) -> str:
    """Everything a person sees of a failed run: the error and every event's message."""
    messages = [e.message for e in result.all_events if e.message]  # type: ignore[attr-defined]
    return error_of(result) + "\n".join(messages)  # type: ignore[arg-type]


def test_a_duplicate_key_on_append_names_the_index_and_row_not_the_values(db: Db) -> None:
    io = db.manager()
    upsert = db.meta(write_mode="upsert", upsert_keys=["id"])
    assert run(io, lambda: pl.DataFrame({"id": [KEY], "secret": ["old"]}), metadata=upsert).success
    again = pl.DataFrame({"id": [1, KEY], "secret": ["fine", SECRET]})
    failed = run(io, lambda: again, metadata=db.meta(write_mode="append"))
    message = error_of(failed)
    assert "duplicate key" in message and "`_hd_keys_id` on ['id']" in message, message
    assert "the first is row 1" in message, message
    assert SECRET not in shown(failed) and str(KEY) not in shown(failed)
    assert "RawBSONDocument" not in shown(failed)
    assert db.docs() == [{"id": KEY, "secret": "old"}]


def test_a_unique_index_that_cannot_be_built_does_not_quote_the_duplicates(db: Db) -> None:
    io = db.manager()
    assert run(io, lambda: pl.DataFrame({"id": [1]}), metadata=db.meta()).success
    db.db["table"].insert_many([{"id": KEY, "secret": SECRET}, {"id": KEY, "secret": SECRET}])
    failed = run(
        io, lambda: pl.DataFrame({"id": [2]}),
        metadata=db.meta(write_mode="upsert", upsert_keys=["id"]),
    )  # fmt: skip
    message = error_of(failed)
    assert "duplicate key" in message and "MongoDB error 11000" in message, message
    assert SECRET not in shown(failed) and str(KEY) not in shown(failed)
