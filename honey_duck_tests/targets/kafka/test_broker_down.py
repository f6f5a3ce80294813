"""A broker SIGKILLed mid-transaction, and not back: the write fails within a bound, saying it
could not reach Kafka, instead of hanging (a private broker; the others keep theirs)."""

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from honey_duck.targets.kafka.records import TopicRecords
from honey_duck.targets.kafka.target import KafkaConnection, KafkaIOManager
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.targets.kafka.plain import fresh_topic, keyed

BOUND = 90.0  # seconds: a few broker timeouts and one retry's backoff, with room to spare


def test_a_broker_killed_mid_transaction_fails_the_write_within_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from honey_duck_dev.services.kafka import Kafka
    from honey_duck_dev.services.lifecycle import ServiceError

    try:
        server = Kafka.launch(data_dir=tmp_path / "kafka")
    except ServiceError as exc:
        pytest.skip(f"no private Kafka broker: {exc}")
    try:
        io = KafkaIOManager(
            connection=KafkaConnection(bootstrap_servers=server.bootstrap, timeout_seconds=2),
            retries=1,
        )
        topic = fresh_topic()
        first = run(io, lambda: pl.DataFrame({"id": [1], "v": ["old"]}), metadata=keyed(topic))
        assert first.success, error_of(first)
        save = TopicRecords.save

        def kill_then_save(records: TopicRecords, *args: Any, **extra: Any) -> None:
            # every row is produced, the transaction is open: the broker dies now
            assert server.pid is not None
            os.kill(server.pid, signal.SIGKILL)
            time.sleep(0.5)
            save(records, *args, **extra)

        monkeypatch.setattr(TopicRecords, "save", kill_then_save)
        frame = pl.DataFrame({"id": range(50_000), "v": "new"})
        results: list[dg.ExecuteInProcessResult] = []
        writer = threading.Thread(
            target=lambda: results.append(run(io, lambda: frame, metadata=keyed(topic))),
            daemon=True,  # a writer that hangs must not hang the test session too
        )
        started = time.monotonic()
        writer.start()
        writer.join(BOUND)
        assert not writer.is_alive(), f"the write still waits {BOUND:g} s after its broker died"
        assert not results[0].success
        assert "Kafka" in error_of(results[0]), error_of(results[0])
        assert time.monotonic() - started < BOUND
    finally:
        server.stop()
