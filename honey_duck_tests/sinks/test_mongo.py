"""The MongoDB sink against a real wire-protocol server (SecantusDB, a one-node replica set).

Every test reads back with pymongo (find / aggregate), not only through our `load_input`.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pymongo
import pytest
from hypothesis import strategies as st

from honey_duck.targets.mongo.target import STAGING, MongoConnection, MongoIOManager, _name_problem
from honey_duck_tests.contract import partitions
from honey_duck_tests.contract.probe import Probe, Server, frame_of, private
from honey_duck_tests.contract.runs import (
    MONTHLY,
    error_of,
    months,
    run,
)
from honey_duck_tests.contract.suite import LandedContract, ServerContract
from honey_duck_tests.sinks import roundtrip


class MongoProbe(Probe):
    """A fresh database per test, its manager, and pymongo on it."""

    word, title = "mongo", "MongoDB"

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.client: pymongo.MongoClient = pymongo.MongoClient(url)
        self.db = self.client[name]

    def manager(self, **config: Any) -> MongoIOManager:
        return MongoIOManager(
            connection=MongoConnection(url=self.url), database=self.name, **config
        )

    def location(self, table: str) -> dict[str, Any]:
        return {"collection": table}

    def table_name(self, table: str) -> str:
        return f"{self.name}.{table}"

    def docs(self, collection: str = "table", sort: str = "id") -> list[dict]:
        return list(self.db[collection].find({}, {"_id": 0}).sort(sort, 1))

    def native(self, table: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        docs = list(self.db[table].find({}, {"_id": 0}).sort("$natural", 1))
        return frame_of(native_columns(docs, pl.Schema(schema)), schema)

    def exists(self, table: str) -> bool:
        return table in self.db.list_collection_names()

    def update(self, table: str, id: int, column: str, value: Any) -> None:
        self.db[table].update_one({"id": id}, {"$set": {column: value}})

    def delete(self, table: str, id: int) -> None:
        self.db[table].delete_one({"id": id})

    def leftovers(self) -> list[str]:
        return [c for c in self.db.list_collection_names() if STAGING in c]

    def odd_location(self) -> dict[str, Any]:
        return {"collection": 'Sales "Q1" Table'}

    def read_odd(self, meta: Mapping[str, Any], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        return self.native(meta["collection"], schema)

    def check_metadata(self, metadata: Mapping[str, Any], table: str) -> None:
        assert metadata["dagster/uri"].value.startswith("mongodb://127.0.0.1:")
        assert metadata["dagster/uri"].value.endswith(f"/{self.name}.{table}")

    def unreachable(self) -> tuple[MongoIOManager, str, str]:
        url = "mongodb://duck:s3cret-Pa55@127.0.0.1:1/?directConnection=true"
        io = MongoIOManager(connection=MongoConnection(url=url, timeout_ms=500), retries=0)
        return io, "127.0.0.1:1", "s3cret-Pa55"

    def killed_write(self, table: str) -> None:
        """A writer process loading 2,000,000 documents, SIGKILLed once it has staged some."""
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, self.url, self.name, table])
        try:
            deadline = time.monotonic() + 120
            staged: list[str] = []
            while time.monotonic() < deadline and writer.poll() is None:
                staged = self.leftovers()
                if staged and self.db[staged[0]].estimated_document_count() > 10_000:
                    break
                time.sleep(0.05)
            assert staged and writer.poll() is None, "the writer was never caught mid-load"
            os.kill(writer.pid, signal.SIGKILL)
        finally:
            writer.wait()
        assert writer.returncode == -signal.SIGKILL

    def private_server(self) -> AbstractContextManager[Server]:
        from honey_duck_dev.services.mongo import Mongo, mongo_url

        def count(server: Mongo, table: str) -> int:
            with pymongo.MongoClient(server.url) as client:
                return client[self.name][table].count_documents({})

        return private(
            Mongo.launch,
            lambda server: MongoIOManager(
                connection=MongoConnection(
                    url=mongo_url("127.0.0.1", server.port), timeout_ms=1000
                ),
                database=self.name,
            ),
            count,
            "honey_duck-mongo-",
        )


_WRITER = """
import sys
import polars as pl
from honey_duck.targets.mongo.target import MongoIOManager, MongoConnection
from honey_duck_tests.contract.runs import error_of, run

url, database, collection = sys.argv[1], sys.argv[2], sys.argv[3]
connection = MongoConnection(url=url)
io = MongoIOManager(connection=connection, database=database, batch_rows=5_000, retries=0)
frame = pl.LazyFrame({"id": pl.int_range(0, 2_000_000, eager=True)}).with_columns(v=pl.lit("x"))
result = run(io, lambda: frame, metadata={"collection": collection})
sys.exit(error_of(result) if not result.success else 0)
"""


@pytest.fixture
def mongo(request: pytest.FixtureRequest, mongo_server: str) -> Any:
    name = "".join(c if c.isalnum() else "_" for c in request.node.name[:24])
    db = MongoProbe(mongo_server, f"t_{name}_{time.time_ns() % 10**8}")
    yield db
    db.client.drop_database(db.name)
    db.client.close()


def typed_frame() -> pl.DataFrame:
    """Every type the sink claims, with nulls (datetimes to the millisecond)."""
    return pl.DataFrame(
        {
            "id": [1, 2, 3],
            "small": pl.Series([1, -2, None], dtype=pl.Int8),
            "u32": pl.Series([2**32 - 1, 0, None], dtype=pl.UInt32),
            "u64": pl.Series([2**63 - 1, 0, None], dtype=pl.UInt64),
            "real": pl.Series([1.5, float("nan"), None], dtype=pl.Float32),
            "price": [1.25, float("-inf"), float("nan")],
            "name": ['Zoë "the" artist\x00, 🦆', "", None],
            "flag": [True, False, None],
            "day": [date(2024, 1, 2), None, date(1, 1, 1)],
            "at": [datetime(2024, 1, 2, 3, 4, 5, 123000), None, datetime(9999, 12, 31, 23, 59)],
            "at_zone": pl.Series([datetime(2024, 6, 1, 12), None, datetime(1900, 1, 1)])
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone("Asia/Kathmandu"),
            "amount": pl.Series([Decimal("12.34"), None, Decimal("-0.01")], dtype=pl.Decimal(12, 2)),  # noqa: E501
            "took": [timedelta(seconds=90, microseconds=5), None, timedelta(days=-2)],
            "when": [clock(1, 2, 3, 456789), None, clock(0)],
            "blob": [b"\x00\xff", None, b""],
            "kind": pl.Series(["a", None, "b"], dtype=pl.Categorical),
            "tags": [["a", "b"], None, []],
            "info": [{"k": 1, "v": "x"}, None, {"k": 2, "v": None}],
        }
    )  # fmt: skip


def native(value: Any, dtype: pl.DataType) -> Any:
    """A value as pymongo reads it, in the Python form polars gives for `dtype`."""
    if value is None:
        return None
    if dtype == pl.Date:
        return value.date()
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            return value.replace(tzinfo=UTC).astimezone(ZoneInfo(dtype.time_zone))
        return value
    if isinstance(dtype, pl.Decimal):
        return value.to_decimal()
    if dtype == pl.Time:
        return (datetime(2000, 1, 1) + timedelta(microseconds=value // 1000)).time()
    if isinstance(dtype, pl.Duration):
        return timedelta(microseconds=value)
    return value


def native_columns(docs: list[dict], schema: pl.Schema) -> dict[str, list]:
    return {c: [native(d.get(c), t) for d in docs] for c, t in schema.items()}


def test_without_transactions_a_half_replaced_slice_is_refused_until_rerun(
    mongo: MongoProbe,
) -> None:
    """The fallback's marker: a writer that stopped mid-slice leaves a refusal, not a mix."""
    io = mongo.manager(transactions=False)
    where = mongo.meta(partition_expr="d")
    jan = "2024-01-01"
    assert run(
        io, lambda: months([1]), metadata=where, partitions_def=MONTHLY, partition_key=jan
    ).success
    # what a writer killed between its delete and its inserts leaves behind
    mongo.db["_honey_duck_schemas"].update_one(
        {"_id": "table"}, {"$addToSet": {"pending_slices": jan}}
    )
    mongo.db.table.delete_one({"id": 10})
    read = run(
        io, lambda: months([2]), metadata=where, partitions_def=MONTHLY, partition_key="2024-02-01",
        consume=lambda table: None,
    )  # fmt: skip
    assert "partitions ['2024-01-01']" in error_of(read) and "rerun them" in error_of(read)
    again = run(io, lambda: months([1]), metadata=where, partitions_def=MONTHLY, partition_key=jan)
    assert again.success, error_of(again)
    assert [d["id"] for d in mongo.docs()] == [10, 11, 20, 21]  # January whole again


def test_values_bson_cannot_hold_are_refused_before_writing_naming_the_column(
    mongo: MongoProbe,
) -> None:
    io = mongo.manager()
    assert run(io, lambda: pl.DataFrame({"id": [1]}), metadata=mongo.meta()).success
    cases = {
        "at": pl.Series([datetime(2024, 1, 1), datetime(2024, 1, 1, 0, 0, 0, 1)]),
        "big": pl.Series([1, 2**64 - 1], dtype=pl.UInt64),
        "old": pl.Series([0, -800_000], dtype=pl.Int32).cast(pl.Date),  # the year -220
        "far": pl.Series([0, 300_000_000_000_000]).cast(pl.Datetime("ms")),  # the year 11476
        "digits": pl.Series([Decimal("1"), Decimal("9" * 35)], dtype=pl.Decimal(38, 0)),
    }
    data: dict[str, pl.DataFrame] = {}
    for column, values in cases.items():
        data["frame"] = pl.DataFrame({"id": [1, 2], column: values})
        evolve = mongo.meta(schema_policy="evolve")
        message = error_of(run(io, lambda: data["frame"], metadata=evolve))
        assert f"column `{column}`" in message and "the first is row 1" in message, message
    named = pl.DataFrame({"$price": [1], "a.b": [2], "_id": [3], "ok": [4]})
    message = error_of(run(io, lambda: named, metadata=mongo.meta(schema_policy="evolve")))
    assert "`$price`" in message and "`a.b`" in message and "`_id`" in message
    assert "`ok`" not in message
    assert mongo.docs() == [{"id": 1}]  # nothing was written


def test_nested_values_round_trip_and_types_bson_lacks_are_refused_by_name(
    mongo: MongoProbe,
) -> None:
    frame = pl.DataFrame(
        {
            "pair": pl.Series([[1, 2], None, [3, None]], dtype=pl.Array(pl.Int32, 2)),
            "labels": pl.Series([["a"], [None, "b"], None], dtype=pl.List(pl.Categorical)),
            "deep": [{"_id": 1, "xs": [{"f": float("nan")}]}, {"_id": None, "xs": []}, None],
        }
    )
    seen: dict[str, pl.DataFrame] = {}
    result = run(
        mongo.manager(),
        lambda: frame,
        metadata=mongo.meta(),
        consume=lambda table: seen.update(t=table),
    )
    assert result.success, error_of(result)
    assert seen["t"].schema == frame.schema
    roundtrip.assert_columns_equal(frame, {c: seen["t"][c].to_list() for c in frame.columns})
    docs = list(mongo.db.table.find({}, {"_id": 0}))
    assert docs[0]["deep"]["_id"] == 1 and docs[0]["pair"] == [1, 2] and "deep" in docs[2]
    data: dict[str, pl.DataFrame] = {}
    for dtype, words in [
        (pl.Int128, "BSON has no type that holds polars Int128"),
        (pl.List(pl.Date), "not Date"),
        (pl.Struct({"$x": pl.Int8}), "struct field `$x`"),
    ]:
        data["odd"] = pl.DataFrame({"odd": pl.Series([None], dtype=dtype)})
        message = error_of(
            run(mongo.manager(), lambda: data["odd"], metadata={"collection": "odd"})
        )
        assert "`odd`" in message and words in message, message
    assert "odd" not in mongo.db.list_collection_names()


def test_a_replace_keeps_the_indexes_of_the_collection(mongo: MongoProbe) -> None:
    io = mongo.manager()
    upsert = mongo.meta(write_mode="upsert", upsert_keys=["id"])
    assert run(io, lambda: pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), metadata=upsert).success
    mongo.db.table.create_index([("v", -1)], name="v by value")

    def indexes() -> list[tuple]:
        found = mongo.db.table.list_indexes()
        return sorted((i["name"], list(i["key"].items()), bool(i.get("unique"))) for i in found)

    before = indexes()
    assert len(before) == 3
    assert [keys for _, keys, unique in before if unique] == [[("id", 1)]]  # the upsert's
    for _ in range(2):
        replaced = run(
            io, lambda: pl.DataFrame({"id": [2, 3], "v": ["B", "c"]}), metadata=mongo.meta()
        )
        assert replaced.success, error_of(replaced)
        assert indexes() == before
    again = run(io, lambda: pl.DataFrame({"id": [3, 4], "v": ["C", "d"]}), metadata=upsert)
    assert again.success, error_of(again)
    assert mongo.docs() == [{"id": 2, "v": "B"}, {"id": 3, "v": "C"}, {"id": 4, "v": "d"}]


def test_a_replace_that_fails_leaves_the_old_collection_and_no_staging(mongo: MongoProbe) -> None:
    """Duplicate ids break the kept unique index on the staged copy: nothing is swapped in."""
    io = mongo.manager()
    upsert = mongo.meta(write_mode="upsert", upsert_keys=["id"])
    assert run(io, lambda: pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), metadata=upsert).success
    doubled = pl.DataFrame({"id": [7, 7], "v": ["x", "y"]})
    message = error_of(run(io, lambda: doubled, metadata=mongo.meta()))
    assert "duplicate key" in message.lower(), message
    assert mongo.docs() == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
    assert [c for c in mongo.db.list_collection_names() if STAGING in c] == []
    assert "next" not in mongo.db["_honey_duck_schemas"].find_one({"_id": "table"})


def test_a_replace_whose_writer_stopped_after_the_rename_reads_the_new_schema(
    mongo: MongoProbe,
) -> None:
    """The record's `next` names its staging collection: gone means the rename happened."""
    from honey_duck.seam.records import SchemaRecord

    io = mongo.manager()
    assert run(io, lambda: pl.DataFrame({"id": [1]}), metadata=mongo.meta()).success
    staged = "table" + STAGING + "elsewhere.1"
    newer = SchemaRecord(pl.Schema({"id": pl.Int8})).to_json()
    mongo.db["_honey_duck_schemas"].update_one(
        {"_id": "table"}, {"$set": {"next": {"staging": staged, "record": newer}}}
    )
    mongo.db[staged].insert_one({"id": 7})
    target = io.target()
    location = target.locate(dg.AssetKey("x"), {"collection": "table"})
    with target.session() as session:  # staged, not renamed: the current record holds
        assert session.stored_schema(location) == pl.Schema({"id": pl.Int64})
    mongo.client.admin.command(
        "renameCollection", f"{mongo.name}.{staged}", to=f"{mongo.name}.table", dropTarget=True
    )
    with target.session() as session:  # renamed, never promoted: the new record holds
        assert session.stored_schema(location) == pl.Schema({"id": pl.Int8})
        assert session.read(location, None, None).collect().rows() == [(7,)]


def storage(home: Path, table: str) -> pl.DataFrame:
    """A transform output as the pipeline stored it: what the sink should hold."""
    path = home / "storage" / table
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path.with_suffix(".parquet")]
    return pl.concat([pl.read_parquet(f) for f in files])


def test_a_column_a_write_lacks_is_no_field_rather_than_null(mongo: MongoProbe) -> None:
    """The contract reads nulls; BSON tells an absent field from a null, and we send none."""
    io = mongo.manager()
    upsert = mongo.meta(write_mode="upsert", upsert_keys=["id"], schema_policy="evolve")
    assert run(io, lambda: pl.DataFrame({"id": [1], "note": ["k"]}), metadata=upsert).success
    assert run(io, lambda: pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), metadata=upsert).success
    assert mongo.docs() == [{"id": 1, "note": "k", "v": "a"}, {"id": 2, "v": "b"}]


def test_the_uri_and_a_bad_port_never_show_the_password() -> None:
    url = "mongodb://duck:s3cret-Pa55@127.0.0.1:1/?directConnection=true"
    io = MongoIOManager(connection=MongoConnection(url=url, timeout_ms=500), retries=0)
    assert (
        io.target().uri(io.target().locate(dg.AssetKey(["a", "b"]), {}))
        == "mongodb://127.0.0.1:1/honey_duck.a.b"
    )
    with pytest.raises(ValueError, match="Port must be an integer") as caught:
        MongoIOManager(
            connection=MongoConnection(url="mongodb://duck:s3cret-Pa55@127.0.0.1:99999/")
        ).target()
    assert "s3cret-Pa55" not in str(caught.value) and caught.value.__cause__ is None


def test_credentials_work_and_a_wrong_password_fails_at_once_without_showing_it(
    mongo: MongoProbe,
) -> None:
    user, password = f"duck_{time.time_ns() % 10**8}", "s3cret-Pa55-word"
    mongo.client.admin.command("createUser", user, pwd=password, roles=["root"])
    host = mongo.url.split("://", 1)[1]
    try:
        good = MongoProbe(f"mongodb://{user}:{password}@{host}", mongo.name)
        seen: dict[str, pl.DataFrame] = {}
        result = run(
            good.manager(), lambda: pl.DataFrame({"id": [1]}), metadata=mongo.meta(),
            consume=lambda table: seen.update(t=table),
        )  # fmt: skip
        assert result.success, error_of(result)
        assert seen["t"].rows() == [(1,)]
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        shown = str(metadata) + str([e.message for e in result.all_events])
        assert password not in shown and user not in str(metadata["dagster/uri"].value)
        wrong = MongoProbe(f"mongodb://{user}:not-{password}@{host}", mongo.name)
        began = time.monotonic()
        failed = run(wrong.manager(), lambda: pl.DataFrame({"id": [2]}), metadata=mongo.meta())
        message = error_of(failed)
        assert "authentication failed" in message.lower(), message
        assert password not in message and time.monotonic() - began < 5  # not retried
        assert mongo.docs() == [{"id": 1}]
        good.client.close()
        wrong.client.close()
    finally:
        mongo.client.admin.command("dropUser", user)


def test_dev_materializes_the_mongo_group_twice(
    mongo_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from honey_duck import cli, environments

    database = f"honey_duck_dev_{time.time_ns() % 10**8}"  # never the dev server's own
    for name, value in {
        "HONEY_DUCK_ENV": "dev", "HONEY_DUCK_HOME": str(tmp_path),
        "HONEY_DUCK_MONGO_URL": mongo_server, "HONEY_DUCK_MONGO_DATABASE": database,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    env = environments.current()
    with pymongo.MongoClient(mongo_server) as client:
        try:
            for _ in range(2):
                ok, landed = cli.materialize(env, ["mongo"])
                assert ok
            check_dev_landed(client[database], tmp_path)
        finally:
            client.drop_database(database)
    where = landed[next(k for k in landed if k.to_user_string() == "mongo/sales_enriched")]
    assert where.where.startswith("mongodb://127.0.0.1:")
    assert where.where.endswith(f"/{database}.mongo.sales_enriched")


def check_dev_landed(db: Any, home: Path) -> None:
    """Each table equals the pipeline's, read with pymongo; 24 months; the upsert's index."""
    for table, key in (
        ("sales_enriched", "sale_id"),
        ("artworks_summary", "artwork_id"),
        ("sales_monthly", "sale_id"),
    ):
        expected = storage(home, table).sort(key)
        docs = list(db[f"mongo.{table}"].find({}, {"_id": 0}).sort(key, 1))
        assert len(docs) == expected.height, table  # twice, and one copy of each row
        roundtrip.assert_columns_equal(expected, native_columns(docs, expected.schema))
    months = db["mongo.sales_monthly"].aggregate(
        [{"$group": {"_id": {"y": {"$year": "$sale_date"}, "m": {"$month": "$sale_date"}}}}]
    )
    assert len(list(months)) == 24
    indexes = db["mongo.artworks_summary"].list_indexes()
    assert [list(i["key"]) for i in indexes if i.get("unique")] == [["artwork_id"]]


# Datetimes the sink keeps (to the millisecond) and any datetimes (sub-millisecond ones are
# refused); UInt64 beyond Int64 is refused too. Every other kind of the shared table is kept.
def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


KINDS = {
    **roundtrip.COLUMNS,
    "Datetime": (
        pl.Datetime("us"),
        st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)).map(_ms),
    ),
    **{
        f"Datetime[{z}]": (
            pl.Datetime("us", z),
            st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)).map(
                lambda d: _ms(d).replace(tzinfo=UTC)
            ),
        )
        for z in roundtrip.ZONES
    },
    "Datetime(any)": roundtrip.COLUMNS["Datetime"],
    "Datetime(ns)": (
        pl.Datetime("ns"),
        st.datetimes(datetime(1678, 1, 1), datetime(2261, 12, 31)).map(_ms),
    ),
    "Decimal(38,0)": (
        pl.Decimal(38, 0),
        st.one_of(
            st.sampled_from([Decimal(10**34 - 1), Decimal(-(10**34) + 1), Decimal(10**34)]),
            st.decimals(-(10**36), 10**36, places=0),
        ),
    ),
    "List[Struct]": (
        pl.List(pl.Struct({"f": pl.Float64, "b": pl.List(pl.Binary)})),
        st.lists(
            st.fixed_dictionaries(
                {
                    "f": st.one_of(st.none(), st.floats(allow_nan=True)),
                    "b": st.one_of(st.none(), st.lists(st.binary(max_size=3), max_size=2)),
                }
            ),
            max_size=2,
        ),
    ),
}
FIELD_NAMES = roundtrip.NAMES.filter(lambda name: _name_problem(name) is None)


def expected_refusals(frame: pl.DataFrame) -> list[str]:
    refused = []
    for column in frame.columns:
        series = frame[column]
        values = [v for v in series.to_list() if v is not None]
        if series.dtype == pl.UInt64 and any(v > 2**63 - 1 for v in values):
            refused.append(column)
        if isinstance(series.dtype, pl.Datetime) and any(v.microsecond % 1000 for v in values):
            refused.append(column)
        # copy_abs, not abs: abs() rounds to the context's 28 digits
        if isinstance(series.dtype, pl.Decimal) and any(v.copy_abs() >= 10**34 for v in values):
            refused.append(column)
    return refused


def lazy_frame(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": pl.int_range(0, n, eager=True),
            "small": pl.int_range(0, n, eager=True).cast(pl.Int16),
            "amount": pl.int_range(0, n, eager=True).cast(pl.Decimal(12, 2)),
            "at": pl.repeat(datetime(2024, 1, 2, 3), n, eager=True).dt.replace_time_zone("UTC"),
            "tags": pl.repeat(["a"], n, eager=True),
        }
    )


class TestMongo(ServerContract, LandedContract):
    """The contract on SecantusDB (slow: few hypothesis examples), and what `local` landed."""

    word = "mongo"
    typed_frame = staticmethod(typed_frame)
    lazy_frame = staticmethod(lazy_frame)
    frames = roundtrip.frames(columns=KINDS, names=FIELD_NAMES)
    examples = 25
    names_every_refused = True

    @pytest.fixture
    def probe(self, mongo: MongoProbe) -> MongoProbe:
        return mongo

    def refused(self, probe: Any, frame: pl.DataFrame) -> dict[str, str]:
        return dict.fromkeys(expected_refusals(frame), "")

    @pytest.mark.parametrize("transactions", [True, False])
    def test_multi_partitions_replace_exactly_their_key_set(
        self, probe: MongoProbe, transactions: bool
    ) -> None:
        """Also without transactions (the fallback's markers), and no marker stays behind."""
        partitions.multi_partitions(probe, transactions=transactions)
        record = probe.db["_honey_duck_schemas"].find_one({"_id": "table"})
        assert record.get("pending_slices") in (None, [])
