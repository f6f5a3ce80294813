"""What librdkafka's errors mean for a write: worth a retry, a lost connection, or final."""

from __future__ import annotations

from typing import Any

from honey_duck.seam.faults import ConnectFailed

# Errors a retry cannot fix: credentials and access rules do not change by waiting, and a
# fenced producer means another writer of the same topic took over.
FENCED_CODES = ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH")
PERMANENT_CODES = (
    "_AUTHENTICATION",
    "SASL_AUTHENTICATION_FAILED",
    "TOPIC_AUTHORIZATION_FAILED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    *FENCED_CODES,
)
TRANSIENT_CODES = (
    "_TRANSPORT",
    "_TIMED_OUT",
    "_ALL_BROKERS_DOWN",
    "_MSG_TIMED_OUT",
    "REQUEST_TIMED_OUT",
    "NOT_COORDINATOR",
    "COORDINATOR_NOT_AVAILABLE",
    "COORDINATOR_LOAD_IN_PROGRESS",
    "NOT_ENOUGH_REPLICAS",
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_FOR_PARTITION",
    "CONCURRENT_TRANSACTIONS",
)


class CommitNotVisible(RuntimeError):
    """The broker acknowledged a commit whose messages `read_committed` consumers cannot see
    (a broker that restarted between the last delivery and the commit may have forgotten the
    transaction): a replace or upsert is retried whole, an append raises OutcomeUnknown."""


class StoredChanged(RuntimeError):
    """Another writer committed a new schema record between this write's schema decision and
    the moment it took the topic: retried, so the decision is made again on what is stored."""


class WriterFenced(RuntimeError):
    """Another writer of the same topic started its transaction and fenced ours: nothing of
    this write was published. `retry` once that writer has committed (the write then goes on
    top of it, as if the two had run one after the other); a retry before would fence the other
    writer in turn, and the two would take the topic from each other."""

    def __init__(self, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


def kafka_error(exc: BaseException) -> Any:
    """The KafkaError inside a KafkaException (or the error itself), else None."""
    from confluent_kafka import KafkaError

    if isinstance(exc, KafkaError):
        return exc
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], KafkaError) else None


def _codes(names: tuple[str, ...]) -> set[int]:
    from confluent_kafka import KafkaError

    return {getattr(KafkaError, name) for name in names if hasattr(KafkaError, name)}


def is_fenced(error: Any) -> bool:
    """Whether `error` (a KafkaError) says another producer with our transactional.id took
    over."""
    return error is not None and error.code() in _codes(FENCED_CODES)


def transient_error(error: Any) -> bool:
    """Whether a retry (with a new producer) may succeed where `error` failed."""
    if error is None:
        return False
    if error.code() in _codes(PERMANENT_CODES):
        return False
    # a fatal error (an idempotence sequence lost in a broker restart) ends this producer, not
    # the write: the transaction was not committed, and a retry's new producer fences it; a
    # fatal error that is a fencing was refused above
    if error.retriable() or error.txn_requires_abort() or error.fatal():
        return True
    return error.code() in _codes(TRANSIENT_CODES)


def connect_failed(where: str, exc: BaseException) -> ConnectFailed:
    """A ConnectFailed saying where we tried to connect (bootstrap servers, no credential)."""
    error = kafka_error(exc)
    transient = error is None or transient_error(error)
    return ConnectFailed(f"cannot connect to Kafka at {where}: {exc}", transient)


def fatal_error(error: Any) -> Exception:
    """The exception for a fatal producer error seen by the error callback."""
    from confluent_kafka import KafkaException

    return KafkaException(error)


def fenced_message(topic: str, error: Any) -> str:
    """What a person reads when another writer of `topic` took it over mid-write."""
    return (
        f"another writer of topic {topic!r} started its own transaction on the topic and"
        f" fenced this one (Kafka: {error.str()}); nothing of this write was published"
    )
