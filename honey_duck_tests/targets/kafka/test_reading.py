"""The reader against messages another producer wrote (the real broker, a plain producer):
a value that does not fit its recorded type exactly is refused, never cast or dropped."""

from decimal import Decimal

import dagster as dg
import polars as pl
import pytest

from honey_duck.seam import SinkError
from honey_duck.targets.kafka.target import KafkaConnection, KafkaIOManager
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.targets.kafka.plain import fresh_topic, keyed, messages, produce

KEY = dg.AssetKey(["t", "table"])


@pytest.fixture
def io(kafka_server: str) -> KafkaIOManager:
    return KafkaIOManager(connection=KafkaConnection(bootstrap_servers=kafka_server), retries=0)


def stored(io: KafkaIOManager, topic: str) -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2],
            "n": [10, 20],
            "d": pl.Series(["2024-01-02", "2024-01-03"]).str.to_date(),
            "m": pl.Series([Decimal("1.25"), Decimal("2.50")], dtype=pl.Decimal(10, 2)),
            "xs": [[1, 2], []],
        }
    )
    result = run(io, lambda: frame, metadata=keyed(topic))
    assert result.success, error_of(result)


def read(io: KafkaIOManager, topic: str) -> pl.DataFrame:
    frame = io.read(KEY, keyed(topic), None, lazy=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (b'{"id":2,"n":20.5,"d":"2024-01-03","m":"2.50","xs":[]}', "column `n`"),
        (b'{"id":2,"n":20,"d":"2024-01-03T04:05:06","m":"2.50","xs":[]}', "column `d`"),
        (b'{"id":2,"n":20,"d":"2024-01-03","m":"2.505","xs":[]}', "column `m`"),
        (b'{"id":2,"n":20,"d":"2024-01-03","m":"2.50","xs":[1.5]}', "column `xs`"),
        (b'{"id":2,"n":true,"d":"2024-01-03","m":"2.50","xs":[]}', "column `n`"),
        (b'{"id":2,"n":20,"d":"2024-01-03","m":"2.50","xs":[],"extra":1}', "['extra']"),
    ],
)
def test_a_value_another_producer_wrote_that_does_not_fit_is_refused_naming_column_and_key(
    io: KafkaIOManager, kafka_server: str, value: bytes, refused: str
) -> None:
    topic = fresh_topic()
    stored(io, topic)
    produce(kafka_server, topic, b'{"id":2}', value)
    with pytest.raises(SinkError) as caught:
        read(io, topic)
    message = str(caught.value)
    assert refused in message and 'key {"id":2}' in message, message
    assert "2.505" not in message and "20.5" not in message  # never a row's values


def test_exact_values_in_another_form_read_back(io: KafkaIOManager, kafka_server: str) -> None:
    topic = fresh_topic()
    stored(io, topic)
    # other field order, spaces, fewer decimal digits, an integral float written as an integer
    value = b'{ "xs": [3], "m": "2.5", "d": "2024-01-03", "n": 21, "id": 2 }'
    produce(kafka_server, topic, b'{"id":2}', value)
    back = read(io, topic).sort("id")
    assert back.row(1) == (2, 21, back["d"][1], Decimal("2.50"), [3])


def test_negative_zero_round_trips(io: KafkaIOManager, kafka_server: str) -> None:
    topic = fresh_topic()
    frame = pl.DataFrame(
        {"id": [1, 2], "f": [-0.0, 0.0], "g": pl.Series([-0.0, 1.5], dtype=pl.Float32)}
    )
    result = run(io, lambda: frame, metadata=keyed(topic))
    assert result.success, error_of(result)
    raw = {k: v for k, v, _ in messages(kafka_server, topic)}
    assert raw[b'{"id":1}'] == b'{"id":1,"f":-0.0,"g":-0.0}'
    back = read(io, topic).sort("id")
    assert [str(x) for x in back["f"]] == ["-0.0", "0.0"]
    assert str(back["g"][0]) == "-0.0"
