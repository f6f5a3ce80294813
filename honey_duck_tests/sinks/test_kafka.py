"""The Kafka sink against a real broker (noida-db's Kafka endpoint, or HONEY_DUCK_KAFKA_BOOTSTRAP).

Every test reads back with a plain confluent-kafka Consumer (`read_committed`), not only
through our `load_input`.
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import polars as pl
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource
from hypothesis import given, settings
from hypothesis import strategies as st

from honey_duck import cli, environments, seam, sinks
from honey_duck.environments import REPO_ROOT
from honey_duck.seam import check_assets
from honey_duck.targets.kafka import target as kafka
from honey_duck.targets.kafka.target import SCHEMA_TOPIC, KafkaConnection, KafkaIOManager
from honey_duck_tests.contract.probe import Probe, Server, frame_of, private
from honey_duck_tests.contract.runs import (
    MONTHLY,
    error_of,
    months,
    run,
)
from honey_duck_tests.contract.suite import LandedContract, ServerContract
from honey_duck_tests.sinks import roundtrip
from honey_duck_tests.targets.kafka.plain import fresh_topic, keyed, messages


def live(bootstrap: str, topic: str) -> dict[Any, dict[str, Any]]:
    """A compacted topic as its consumers see it: the last value per key, tombstones dropped,
    keys and values decoded from JSON by the standard library."""
    latest: dict[bytes | None, bytes | None] = {}
    for key, value, _ in messages(bootstrap, topic):
        latest[key] = value
    return {
        tuple(json.loads(k).values()) if k else None: json.loads(v)
        for k, v in latest.items()
        if v is not None
    }


def typed_frame() -> pl.DataFrame:
    """Every type the Kafka sink claims, with nulls and edge values."""
    return pl.DataFrame(
        {
            "id": [1, 2, 3],
            "small": pl.Series([1, -2, None], dtype=pl.Int16),
            "big": pl.Series([2**64 - 1, 0, None], dtype=pl.UInt64),
            "min": pl.Series([-(2**63), 2**63 - 1, None], dtype=pl.Int64),
            "price": [1.25, None, 1e-310],
            "real": pl.Series([1.1, -0.0, None], dtype=pl.Float32),
            "name": ['Zoë "the" artist\x00, Jr. 🦆\n', "", None],
            "flag": [True, False, None],
            "day": [date(2024, 1, 2), None, date(1, 1, 1)],
            "at": [datetime(2024, 1, 2, 3, 4, 5, 123456), None, datetime(9999, 12, 31)],
            "at_ns": pl.Series([1_704_067_200_000_000_007, None, -7]).cast(pl.Datetime("ns")),
            "at_zone": pl.Series([datetime(1850, 6, 1, 12), None, datetime(2024, 1, 1)]).dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Kathmandu"),  # noqa: E501
            "amount": pl.Series([Decimal("12.34"), None, Decimal("-99999999999999999999999999999999999.99")], dtype=pl.Decimal(38, 2)),  # noqa: E501
            "clock": [clock(1, 2, 3, 456789), None, clock(0)],
            "took": [timedelta(seconds=90, microseconds=5), None, timedelta(days=-2)],
            "blob": [b"\x00\xff", None, b""],
            "tags": [["a", "b"], None, []],
            "info": [{"k": 1, "v": "x"}, None, {"k": 2, "v": None}],
            "kind": pl.Series(["a", "b", None], dtype=pl.Categorical),
            "level": pl.Series(["lo", None, "hi"], dtype=pl.Enum(["lo", "hi"])),
            "nothing": pl.Series([None, None, None], dtype=pl.Null),
        }
    )  # fmt: skip


@pytest.fixture
def io(kafka_server: str) -> KafkaIOManager:
    return KafkaIOManager(connection=KafkaConnection(bootstrap_servers=kafka_server), retries=1)


def test_the_wire_form_of_every_type_headers_and_the_schema_record(
    io: KafkaIOManager, kafka_server: str
) -> None:
    """What a plain consumer gets for each type (the README's table), after two replaces."""
    topic, frame = fresh_topic(), typed_frame()
    for _ in range(2):
        result = run(io, lambda: frame.lazy(), metadata=keyed(topic))
        assert result.success, error_of(result)
    native = live(kafka_server, topic)
    assert sorted(native) == [(1,), (2,), (3,)]
    assert native[(1,)]["name"] == 'Zoë "the" artist\x00, Jr. 🦆\n'
    assert native[(1,)]["big"] == 2**64 - 1 and native[(2,)]["min"] == 2**63 - 1
    assert native[(3,)]["price"] == 1e-310
    assert native[(1,)]["tags"] == ["a", "b"] and native[(3,)]["info"] == {"k": 2, "v": None}
    assert native[(1,)]["amount"] == "12.34" and native[(1,)]["day"] == "2024-01-02"
    assert native[(1,)]["clock"] == "01:02:03.456789000" and native[(1,)]["blob"] == "AP8="
    assert native[(1,)]["took"] == 90_000_005  # microseconds
    # a zoned instant travels in UTC: a local mean time offset of +05:41:16 survives exactly
    assert datetime.fromisoformat(native[(1,)]["at_zone"]) == datetime(1850, 6, 1, 12, tzinfo=UTC)
    raw = messages(kafka_server, topic)
    assert len(raw) == 6  # two replaces of three keyed rows; nothing to tombstone
    key, _, headers = raw[0]
    assert json.loads(key or b"") in ({"id": 1}, {"id": 2}, {"id": 3})
    assert headers["asset"] == b"t/table" and headers["partition"] == b""
    assert len(headers["run_id"]) == 36
    # the schema record sits in the compacted schema topic, keyed by the topic's name
    records = {k: v for k, v, _ in messages(kafka_server, SCHEMA_TOPIC)}
    record = json.loads(records[topic.encode()] or b"")
    assert record["keys"] == ["id"] and record["rows"] == 3
    assert [c["name"] for c in record["columns"]] == frame.columns


def test_topics_are_created_compacted_with_the_configured_partitions(
    kafka_server: str,
) -> None:
    topic = fresh_topic()
    io = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=kafka_server), topic_partitions=5
    )
    assert run(io, lambda: months([1]), metadata=keyed(topic)).success
    admin = AdminClient({"bootstrap.servers": kafka_server})
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 5
    for name, policy in ((topic, "compact"), (SCHEMA_TOPIC, "compact")):
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = admin.describe_configs([resource])[resource].result(timeout=15)
        assert configs["cleanup.policy"].value == policy


def test_replace_tombstones_the_keys_the_new_data_lacks(
    io: KafkaIOManager, kafka_server: str
) -> None:
    topic = fresh_topic()
    first = pl.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    assert run(io, lambda: first, metadata=keyed(topic)).success
    second = pl.DataFrame({"id": [2, 4], "v": ["B", "D"]})
    seen: dict[str, pl.DataFrame] = {}
    result = run(
        io, lambda: second, metadata=keyed(topic), consume=lambda table: seen.update(t=table)
    )
    assert result.success, error_of(result)
    assert seen["t"].sort("id").rows() == [(2, "B"), (4, "D")]
    assert live(kafka_server, topic) == {(2,): {"id": 2, "v": "B"}, (4,): {"id": 4, "v": "D"}}
    tombstones = sorted(
        json.loads(k or b"")["id"] for k, v, _ in messages(kafka_server, topic) if v is None
    )
    assert tombstones == [1, 3]
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/row_count"].value == 2


def test_a_delete_topic_appends_in_one_transaction_per_run(kafka_server: str) -> None:
    topic = fresh_topic()
    io = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=kafka_server), cleanup_policy="delete"
    )
    frame = pl.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    seen: dict[str, pl.DataFrame] = {}
    for _ in range(2):
        result = run(
            io,
            lambda: frame,
            metadata={"topic": topic, "write_mode": "append"},
            consume=lambda table: seen.update(t=table),
        )
        assert result.success, error_of(result)
    assert sorted(seen["t"].rows()) == [(1, "a"), (1, "a"), (2, "b"), (2, "b")]
    raw = messages(kafka_server, topic)
    assert len(raw) == 4 and all(k is None for k, _, _ in raw)  # no upsert keys: no key
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/row_count"].value == 4
    admin = AdminClient({"bootstrap.servers": kafka_server})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=15)
    assert configs["cleanup.policy"].value == "delete"


def test_a_delete_topic_appends_partitions_and_counts_each_slice(kafka_server: str) -> None:
    topic = fresh_topic()
    io = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=kafka_server), cleanup_policy="delete"
    )
    where = {"topic": topic, "write_mode": "append", "partition_expr": "d"}
    seen: dict[str, pl.DataFrame] = {}
    for _ in range(2):
        result = run(
            io,
            lambda: months([2]),
            metadata=where,
            partitions_def=MONTHLY,
            partition_key="2024-02-01",
            consume=lambda table: seen.update(t=table),
        )
        assert result.success, error_of(result)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/partition_row_count"].value == 4
    assert sorted(seen["t"]["id"].to_list()) == [20, 20, 21, 21]
    raw = messages(kafka_server, topic)
    assert {h["partition"] for _, _, h in raw} == {b"2024-02-01"} and len(raw) == 4


def test_what_a_topic_cannot_keep_is_refused_when_the_definitions_load(
    kafka_server: str,
) -> None:
    def asset(name: str, metadata: dict[str, Any]) -> dg.AssetsDefinition:
        return dg.asset(name=name, metadata=metadata)(lambda: pl.DataFrame({"id": [1]}))

    compact = KafkaIOManager(connection=KafkaConnection(bootstrap_servers=kafka_server))
    with pytest.raises(dg.DagsterInvalidDefinitionError) as keyless:
        check_assets([asset("keyless", {"write_mode": "replace"})], {"io_manager": compact})
    assert "`keyless` (kafka sink)" in str(keyless.value)
    assert "without `upsert_keys`" in str(keyless.value)
    assert "every message it writes needs a key" in str(keyless.value)
    delete = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=kafka_server), cleanup_policy="delete"
    )
    with pytest.raises(dg.DagsterInvalidDefinitionError) as replacing:
        check_assets([asset("replacing", keyed("x"))], {"io_manager": delete})
    message = str(replacing.value)
    assert "write_mode 'replace' on an asset (it supports: append)" in message
    assert "keeps every message, so it cannot replace or upsert" in message
    assert "cleanup_policy='compact' with `upsert_keys` can" in message
    partitioned = dg.asset(
        name="monthly", partitions_def=MONTHLY, metadata={"partition_expr": "d"}
    )(lambda: months([1]))
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="on a partitioned asset"):
        check_assets([partitioned], {"io_manager": delete})
    check_assets([asset("appending", {"write_mode": "append"})], {"io_manager": delete})
    check_assets([asset("keyed", keyed("x"))], {"io_manager": compact})


def test_values_json_cannot_carry_are_refused_naming_the_column(
    io: KafkaIOManager, kafka_server: str
) -> None:
    topic = fresh_topic()
    cases = {
        "ratio": [1.0, float("nan")],
        "limit": pl.Series([float("inf"), 0.0], dtype=pl.Float32),
        "old": pl.Series([0, -719_163], dtype=pl.Int32).cast(pl.Date),  # 1970, then year 0
    }
    data: dict[str, pl.DataFrame] = {}
    for column, values in cases.items():
        data["frame"] = pl.DataFrame({"id": [1, 2], column: values})
        message = error_of(run(io, lambda: data["frame"], metadata=keyed(topic)))
        assert f"column `{column}`" in message, message
        assert "NaN or infinity" in message or "outside years 1..9999" in message
    nested = pl.DataFrame({"id": [1], "xs": [[1.5]]})
    message = error_of(run(io, lambda: nested, metadata=keyed(topic)))
    assert "`xs` (List(Float64))" in message
    admin = AdminClient({"bootstrap.servers": kafka_server})
    assert topic not in admin.list_topics(timeout=10).topics  # nothing was created or written


def test_an_oversized_message_is_refused_naming_its_key(
    io: KafkaIOManager, kafka_server: str
) -> None:
    topic = fresh_topic()
    assert run(io, lambda: pl.DataFrame({"id": [1], "v": ["a"]}), metadata=keyed(topic)).success
    huge = pl.DataFrame({"id": [7, 8, 9], "v": ["ok", "x" * 2_000_000, "ok"]})
    message = error_of(run(io, lambda: huge, metadata=keyed(topic)))
    assert "max.message.bytes" in message and 'key {"id":8}' in message, message
    assert live(kafka_server, topic) == {(1,): {"id": 1, "v": "a"}}


def test_live_messages_keep_each_keys_last_value_across_spill_files() -> None:
    """A compacted topic read through spill files of 2 messages: a key rewritten in a later
    file, a tombstone, a key deleted and written again, and messages without a key."""
    stream = [
        (b"a", b"1"),
        (b"b", b"2"),
        (None, b"n1"),
        (b"a", b"3"),  # a rewritten in the second file
        (b"c", b"4"),
        (b"b", None),  # b deleted
        (None, b"n2"),
        (b"c", None),
        (b"c", b"5"),  # c deleted, then written again
    ]
    kept = pl.concat(list(kafka.live_messages(iter(stream), batch=2)))
    expected = {key: value for key, value in stream}  # the last message of each key
    live = {key: value for key, value in expected.items() if value is not None}
    assert dict(kept.rows()) == live == {b"a": b"3", None: b"n2", b"c": b"5"}
    assert kept["key"].to_list() == [b"a", None, b"c"]  # where each last value was produced
    assert list(kafka.live_messages(iter([]))) == []
    assert list(kafka.live_messages(iter([(b"gone", None)]), batch=2)) == []


@given(
    stream=st.lists(
        st.tuples(
            st.one_of(st.none(), st.binary(max_size=3)),
            st.one_of(st.none(), st.binary(max_size=8)),
        ),
        max_size=60,
    ),
    batch=st.integers(min_value=1, max_value=7),
)
@settings(max_examples=150, deadline=None)
def test_live_messages_equal_a_dict_of_last_values_for_any_stream(
    stream: list[tuple[bytes | None, bytes | None]], batch: int
) -> None:
    """Against the plain definition (a dict keeps each key's last value): the same live pairs,
    in the order their last values were produced, for any keys, tombstones and spill size."""
    last: dict[bytes | None, tuple[int, bytes | None]] = {}
    for position, (key, value) in enumerate(stream):
        last[key] = (position, value)
    expected = [
        (key, value)
        for key, (_, value) in sorted(last.items(), key=lambda item: item[1][0])
        if value is not None
    ]
    frames = list(kafka.live_messages(iter(stream), batch=batch))
    assert all(f.height for f in frames)
    assert [row for f in frames for row in f.rows()] == expected


def test_sasl_credentials_never_reach_errors_logs_or_metadata(kafka_server: str) -> None:
    """noida-db accepts any SASL/PLAIN login: the password must still appear nowhere."""
    io = KafkaIOManager(
        connection=KafkaConnection(
            bootstrap_servers=kafka_server,
            username="duck",
            password="s3cret-Pa55",
            security_protocol="SASL_PLAINTEXT",
            timeout_seconds=5,
        ),
        retries=0,
    )
    topic = fresh_topic()
    result = run(io, lambda: pl.DataFrame({"id": [1]}), metadata=keyed(topic))
    events = str([(e.message, e.event_specific_data) for e in result.all_events])
    assert "s3cret-Pa55" not in events
    if result.success:
        assert live(kafka_server, topic) == {(1,): {"id": 1}}
    else:
        assert "cannot connect to Kafka" in error_of(result)


_KILLED_WRITER = """
import os, signal, sys
import polars as pl
from honey_duck import seam
from honey_duck.targets.kafka import target as kafka
from honey_duck.targets.kafka.target import KafkaIOManager, KafkaConnection
from honey_duck_tests.contract.runs import run

bootstrap, topic = sys.argv[1], sys.argv[2]

def save_then_die(self, name, record, **extra):
    # every row and the schema record are produced, the transaction is not committed
    self.producer.flush(30)  # so the aborted rows really reach the broker's log
    os.kill(os.getpid(), signal.SIGKILL)

kafka.TopicRecords.save = save_then_die
frame = pl.DataFrame({"id": list(range(150_000)), "v": ["new"] * 150_000})
meta = {"topic": topic, "upsert_keys": ["id"]}
io = KafkaIOManager(connection=KafkaConnection(bootstrap_servers=bootstrap))
run(io, lambda: frame, metadata=meta)
"""


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[list[Any]]:
    """A private broker whose data directory outlives a restart: [server] (the latest)."""
    from honey_duck_dev.services.kafka import Kafka
    from honey_duck_dev.services.lifecycle import ServiceError

    try:
        servers = [Kafka.launch(data_dir=tmp_path / "kafka")]
    except ServiceError as exc:
        pytest.skip(f"no private Kafka broker: {exc}")
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_a_broker_restart_mid_run_is_retried_and_recovered(
    own_broker: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker restarts while a write runs, then is down when one starts: both land once.

    The restart comes after the write began (its rows validated, the topic created) and
    before its transaction: noida-db keeps no transaction state across a restart, so a
    restart inside an open transaction can leave `read_committed` readers stuck before that
    transaction's first message, whatever the client does (a real broker keeps that state in
    `__transaction_state`).
    """
    from honey_duck_dev.services.kafka import Kafka

    server = own_broker[0]
    io = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=server.bootstrap, timeout_seconds=5), retries=6
    )
    topic = fresh_topic()
    assert run(io, lambda: pl.DataFrame({"id": [1], "v": ["old"]}), metadata=keyed(topic)).success
    port = server.port

    def restart(after: float) -> threading.Thread:
        def go() -> None:
            time.sleep(after)
            own_broker[-1].stop()
            time.sleep(2.0)
            own_broker.append(Kafka.launch(port=port, data_dir=tmp_path / "kafka"))

        thread = threading.Thread(target=go)
        thread.start()
        return thread

    live_keys = kafka.KafkaSession._live_keys
    restarters: list[threading.Thread] = []

    def restart_first(session: kafka.KafkaSession, *args: Any) -> set[bytes]:
        if not restarters:  # the first attempt: the broker goes down now, is back 2 s later
            own_broker[-1].stop()
            restarters.append(restart(after=0.0))
        return live_keys(session, *args)

    monkeypatch.setattr(kafka.KafkaSession, "_live_keys", restart_first)
    frame = pl.DataFrame({"id": list(range(200_000)), "v": ["new"] * 200_000})
    seen: dict[str, pl.DataFrame] = {}
    result = run(
        io, lambda: frame, metadata=keyed(topic), consume=lambda table: seen.update(t=table)
    )
    for restarter in restarters:
        restarter.join()
    monkeypatch.setattr(kafka.KafkaSession, "_live_keys", live_keys)
    assert len(own_broker) == 2, "the broker was not restarted"
    assert result.success, error_of(result)
    assert seen["t"].sort("id").equals(frame)
    assert len(messages(server.bootstrap, topic)) == 200_001  # the old row, then each new once
    # down when the run starts: our retries (one session per attempt) wait for it
    attempts: list[str] = []
    check = kafka.KafkaSession.check_reachable

    def counted(session: kafka.KafkaSession) -> None:
        try:
            check(session)
            attempts.append("ok")
        except Exception as exc:
            attempts.append(str(exc))
            raise

    monkeypatch.setattr(kafka.KafkaSession, "check_reachable", counted)
    quick = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=server.bootstrap, timeout_seconds=1), retries=6
    )
    own_broker[-1].stop()
    restarter = restart(after=1.0)
    smaller = frame.head(1000).with_columns(v=pl.lit("again"))
    result = run(
        quick, lambda: smaller, metadata=keyed(topic), consume=lambda table: seen.update(t=table)
    )
    restarter.join()
    assert result.success, error_of(result)
    assert len(attempts) >= 3 and attempts[-1] == "ok", attempts
    assert f"cannot connect to Kafka at {server.bootstrap}" in attempts[0]
    assert seen["t"].sort("id").equals(smaller)


NOT_VISIBLE = "but read_committed consumers cannot see its last message in"


def test_a_broker_restart_between_the_last_delivery_and_the_commit_never_hides_a_success(
    own_broker: list[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The broker restarts INSIDE the transaction: every message delivered, then the commit.

    noida-db forgets the open transaction yet acknowledges its commit (a real broker keeps it
    in `__transaction_state`), so `read_committed` consumers would never see those rows. A run
    must then either succeed with every row visible to a plain consumer, or fail saying so:
    a replace is retried whole, an append fails (OutcomeUnknown) rather than risk its rows twice.
    """
    from honey_duck_dev.services.kafka import Kafka

    port, bootstrap = own_broker[0].port, own_broker[0].bootstrap
    commit = kafka.KafkaSession._commit
    commits: list[str] = []

    def restart_then_commit(session: kafka.KafkaSession, producer: Any, location: Any) -> None:
        if not commits:  # the first attempt: every message is delivered (flushed), not committed
            own_broker[-1].stop()
            own_broker.append(Kafka.launch(port=port, data_dir=tmp_path / "kafka"))
        commits.append(location.name)
        commit(session, producer, location)

    rows = 50_000
    frame = pl.DataFrame({"id": list(range(rows)), "v": ["new"] * rows})

    # a replace of a compacted topic
    io = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=bootstrap, timeout_seconds=5), retries=3
    )
    topic = fresh_topic()
    assert run(io, lambda: pl.DataFrame({"id": [-1], "v": ["old"]}), metadata=keyed(topic)).success
    capfd.readouterr()
    monkeypatch.setattr(kafka.KafkaSession, "_commit", restart_then_commit)
    result = run(io, lambda: frame, metadata=keyed(topic))
    logged = capfd.readouterr().err
    assert len(own_broker) == 2, "the broker was not restarted"
    if result.success:
        assert live(bootstrap, topic) == {(i,): {"id": i, "v": "new"} for i in range(rows)}
        if len(commits) > 1:  # the first commit was caught, said so, and retried whole
            assert NOT_VISIBLE in logged and "the replace is retried whole" in logged, logged
    else:
        assert NOT_VISIBLE in error_of(result)

    # an append to a delete topic: never retried once committed, so never published twice
    monkeypatch.setattr(kafka.KafkaSession, "_commit", commit)
    appender = KafkaIOManager(
        connection=KafkaConnection(bootstrap_servers=bootstrap, timeout_seconds=5),
        cleanup_policy="delete",
        retries=3,
    )
    log = fresh_topic("log")
    append = {"topic": log, "write_mode": "append"}
    assert run(appender, lambda: pl.DataFrame({"id": [-1], "v": ["old"]}), metadata=append).success
    commits.clear()
    monkeypatch.setattr(kafka.KafkaSession, "_commit", restart_then_commit)
    result = run(appender, lambda: frame, metadata=append)
    assert len(own_broker) == 3, "the broker was not restarted"
    assert len(commits) == 1  # an append is not retried after its commit
    seen = len(messages(bootstrap, log))
    if result.success:
        assert seen == 1 + rows
    else:
        message = error_of(result)
        assert NOT_VISIBLE in message and "the append is NOT retried" in message, message
        assert seen in (1, 1 + rows)


def test_dev_lands_the_kafka_group_twice_and_a_plain_consumer_reads_it(
    kafka_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        environments.ENV_VAR: "dev",
        environments.HOME_VAR: str(tmp_path),
        sinks.kafka.BOOTSTRAP.name: kafka_server,
    }.items():
        monkeypatch.setenv(name, value)
    env = environments.current()
    for _ in range(2):
        ok, landed = cli.materialize(env, ["kafka"])
        assert ok
    keys = {
        "sales_enriched": "sale_id",
        "artworks_summary": "artwork_id",
        "sales_monthly": "sale_id",
    }
    for table, key in keys.items():
        expected_path = tmp_path / "storage" / table
        files = (
            sorted(expected_path.glob("*.parquet"))
            if expected_path.is_dir()
            else [expected_path.with_suffix(".parquet")]
        )
        expected = pl.concat([pl.read_parquet(f) for f in files])
        native = live(kafka_server, f"kafka.{table}")
        assert len(native) == expected.height, table  # replace twice: one live row per key
        by_key = {k[0]: v for k, v in native.items()}
        for row in expected.head(50).iter_rows(named=True):
            stored = by_key[row[key]]
            for column, value in row.items():
                got = stored[column]
                if isinstance(value, date | datetime):
                    got = type(value).fromisoformat(got)
                assert roundtrip.same(value, got), (table, column, value, got)
    where = landed[next(k for k in landed if k.to_user_string() == "kafka/sales_enriched")]
    assert where.where == f"kafka://{kafka_server}/kafka.sales_enriched"


def _plain_json(dtype: pl.DataType) -> bool:
    """Types whose JSON a consumer reads as the very value (no wire form to undo)."""
    if isinstance(dtype, pl.List):
        return _plain_json(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return all(_plain_json(f.dtype) for f in dtype.fields)
    return dtype.is_integer() or dtype in (pl.Float64, pl.String, pl.Boolean)


def test_a_topic_name_kafka_cannot_take_is_refused(io: KafkaIOManager) -> None:
    bad = run(io, lambda: pl.DataFrame({"id": [1]}), metadata=keyed("no spaces allowed"))
    assert "'no spaces allowed' is not a Kafka topic name" in error_of(bad)


KEY = "__hd_key__"


def decoded(value: Any, dtype: pl.DataType) -> Any:
    """A JSON value as the README's type table says it travels, back in polars' Python form
    (only what the contract's scenarios compare beyond plain JSON: dates and decimals)."""
    if value is None:
        return None
    if dtype == pl.Date:
        return date.fromisoformat(value)
    if isinstance(dtype, pl.Decimal):
        return Decimal(value)
    return value


class KafkaProbe(Probe):
    """A fresh topic prefix per test on the session's broker, read with a plain consumer."""

    word, title = "kafka", "Kafka"
    odd_columns = ("Sale ID", "a.b", "$set", "Zoë ✓", "")

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap, self.prefix = bootstrap, fresh_topic()

    def manager(self, **config: Any) -> KafkaIOManager:
        connection = KafkaConnection(bootstrap_servers=self.bootstrap)
        return KafkaIOManager(connection=connection, **{"retries": 1, **config})

    def topic(self, table: str) -> str:
        return f"{self.prefix}.{table}"

    def location(self, table: str) -> dict[str, Any]:
        return {"topic": self.topic(table)}

    def table_name(self, table: str) -> str:
        return self.topic(table)

    def native(self, table: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        values = list(live(self.bootstrap, self.topic(table)).values())
        return frame_of(
            {c: [decoded(v.get(c), t) for v in values] for c, t in schema.items()}, schema
        )

    def exists(self, table: str) -> bool:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self.topic(table) in admin.list_topics(timeout=10).topics

    def _produce(self, table: str, id: int, change: Callable[[dict], dict | None]) -> None:
        topic = self.topic(table)
        by_id = {json.loads(k)["id"]: (k, v, h) for k, v, h in messages(self.bootstrap, topic)}
        key, value, headers = by_id[id]
        changed = change(json.loads(value))
        producer = Producer({"bootstrap.servers": self.bootstrap})
        body = None if changed is None else json.dumps(changed).encode()  # None: a tombstone
        producer.produce(topic, body, key, headers=list(headers.items()))
        producer.flush(10)

    def update(self, table: str, id: int, column: str, value: Any) -> None:
        self._produce(table, id, lambda stored: {**stored, column: value})

    def delete(self, table: str, id: int) -> None:
        self._produce(table, id, lambda stored: None)

    def records(self, table: str) -> int:
        return len(messages(self.bootstrap, self.topic(table))) if self.exists(table) else 0

    def exact(self, dtype: pl.DataType) -> bool:
        return _plain_json(dtype)

    def odd_location(self) -> dict[str, Any]:
        return {"topic": fresh_topic("Odd_Topic-1.x")}

    def read_odd(self, meta: Mapping[str, Any], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        values = list(live(self.bootstrap, meta["topic"]).values())
        return frame_of({c: [v.get(c) for v in values] for c in schema}, schema)

    def check_metadata(self, metadata: Mapping[str, Any], table: str) -> None:
        assert metadata["dagster/uri"].value == f"kafka://{self.bootstrap}/{self.topic(table)}"
        assert metadata["dagster/storage_kind"].value == "kafka"

    def check_native(self, table: str, frame: pl.DataFrame) -> None:
        """Every message carries every column, in the frame's order."""
        for stored in live(self.bootstrap, self.topic(table)).values():
            assert list(stored) == frame.columns

    def backfilled(self, table: str) -> None:
        """Each month's messages carry their own partition key in a header."""
        found = messages(self.bootstrap, self.topic(table))
        parts = sorted({h["partition"] for _, _, h in found})
        assert parts == [b"2024-01-01", b"2024-02-01", b"2024-03-01", b"2024-04-01"]

    def unreachable(self) -> tuple[KafkaIOManager, str, str]:
        connection = KafkaConnection(
            bootstrap_servers="127.0.0.1:1",
            username="duck",
            password="s3cret-Pa55",
            security_protocol="SASL_PLAINTEXT",
            timeout_seconds=2,
        )
        return KafkaIOManager(connection=connection, retries=0), "127.0.0.1:1", "s3cret-Pa55"

    def killed_write(self, table: str) -> None:
        """A writer SIGKILLed with 150,000 messages produced and its transaction open: a
        read_committed consumer sees none of them, and the next run fences the zombie."""
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_WRITER, self.bootstrap, self.topic(table)],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            timeout=180,
        )
        assert killed.returncode == -9, killed.stderr[-2000:]

    def private_server(self) -> AbstractContextManager[Server]:
        from honey_duck_dev.services.kafka import Kafka

        def manager(server: Kafka) -> KafkaIOManager:
            self.bootstrap = server.bootstrap  # the probe now reads the private broker
            connection = KafkaConnection(bootstrap_servers=server.bootstrap, timeout_seconds=1)
            return KafkaIOManager(connection=connection)

        return private(
            Kafka.launch,
            manager,
            lambda server, table: len(live(server.bootstrap, self.topic(table))),
            "honey_duck-kafka-",
        )


def lazy_frame(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": pl.int_range(0, n, eager=True),
            "amount": pl.int_range(0, n, eager=True).cast(pl.Decimal(12, 2)),
            "day": pl.repeat(date(2024, 1, 2), n, eager=True),
        }
    )


class TestKafka(ServerContract, LandedContract):
    """The contract on noida-db's Kafka endpoint (compacted topics), and what `local` landed."""

    word = "kafka"
    typed_frame = staticmethod(typed_frame)
    lazy_frame = staticmethod(lazy_frame)
    lazy_rows = 150_000
    lazy_config: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def probe(self, kafka_server: str) -> KafkaProbe:
        return KafkaProbe(kafka_server)

    def prepared(self, frame: pl.DataFrame) -> pl.DataFrame:
        """A row number as the message key: every message of a compacted topic needs one."""
        return frame.with_row_index(KEY).with_columns(pl.col(KEY).cast(pl.Int64))

    def refused(self, probe: Any, frame: pl.DataFrame) -> dict[str, str]:
        floats = [c for c, t in frame.schema.items() if t in (pl.Float32, pl.Float64)]
        bad = [c for c in floats if frame.select((~seam.column(c).is_finite()).any()).item()]
        return dict.fromkeys(bad, "NaN or infinity")
