"""One write's Kafka transaction: a transactional producer, its commit, and the check that
`read_committed` consumers really see what the broker says it committed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from honey_duck.seam import WriteMode
from honey_duck.seam.faults import ConnectFailed, OutcomeUnknown
from honey_duck.targets.kafka.consume import invisible
from honey_duck.targets.kafka.errors import (
    CommitNotVisible,
    WriterFenced,
    connect_failed,
    fatal_error,
    fenced_message,
    is_fenced,
    kafka_error,
)
from honey_duck.targets.kafka.outbox import Outbox

if TYPE_CHECKING:
    from honey_duck.targets.kafka.records import TopicRecords
    from honey_duck.targets.kafka.target import KafkaConnection, KafkaTarget, Topic

# How long a committed transaction's last messages may take to become visible to
# `read_committed` consumers (a broker writes the commit markers after it acknowledges).
VISIBLE_WITHIN_SECONDS = 5.0
# How long a fenced writer waits for the writer that took its topic to commit (then it fails,
# saying to run it again: the other write may take up to its transaction timeout), and how
# often it looks at the schema record meanwhile
FENCED_WAIT_SECONDS = 90.0
FENCED_POLL_SECONDS = 0.5


def transactional_id(topic: str) -> str:
    """One per topic, whatever the partitions: two writers of a topic fence each other."""
    return f"honey_duck-{topic}-{hashlib.sha1(topic.encode()).hexdigest()[:16]}"


class Transactions:
    """What a session mixes in to write in transactions: it sets `target`, `connection` and
    `records`."""

    target: KafkaTarget
    connection: KafkaConnection
    records: TopicRecords

    @contextmanager
    def transaction(self, location: Topic, mode: WriteMode = WriteMode.REPLACE) -> Iterator[Any]:
        """A transactional producer that holds the topic, its transaction begun; committed on
        success, then checked visible to `read_committed` consumers (see `_check_visible`).

        The `transactional.id` is the topic's own: `init_transactions` fences every other
        writer of the topic (its open transaction is aborted, a commit under way finishes
        first), so what the caller reads of the topic after this yields is what it replaces.
        """
        from confluent_kafka import KafkaError, KafkaException, Producer

        lost: list[Any] = []  # every broker went away at some point
        fatal: list[Any] = []  # what ended the producer (a fencing, a lost sequence)

        def on_error(error: Any) -> None:
            if error.code() == KafkaError._ALL_BROKERS_DOWN:
                lost.append(error)
            if error.fatal():  # confluent-kafka hands over the cause, not "_FATAL"
                fatal.append(error)

        conf = self.target.producer_config(transactional_id(location.name))
        producer = Producer({**conf, "error_cb": on_error})
        # the outbox notes the last offset delivered per (topic, partition), the schema
        # record's included, for the commit check
        outbox = Outbox(producer)
        aborted = False
        try:
            try:
                producer.init_transactions(self.connection.timeout_seconds)
            except KafkaException as exc:
                raise connect_failed(self.connection.where(), exc) from None
            producer.begin_transaction()
            lost.clear()
            self.records.producer, self.records.outbox = producer, outbox
            try:
                yield outbox
                # A broker that restarted during the transaction may have forgotten it (one
                # that keeps no transaction state on disk commits only what came after): such
                # a transaction is aborted and written again whole, never committed in part.
                remaining = producer.flush(self.connection.timeout_seconds)
                if fatal:
                    raise fatal_error(fatal[0])
                if lost or remaining:
                    raise ConnectFailed(
                        f"the connection to Kafka at {self.connection.where()} broke during the"
                        f" transaction on topic {location.name!r}"
                        + (f" ({remaining} messages undelivered)" if remaining else "")
                        + "; it is aborted and retried whole",
                        transient=True,
                    )
                self._commit(producer, location)
                producer.close()  # nothing is left to abort or flush: it returns at once
            except BaseException as exc:
                # not committed, so nothing is visible; if the abort fails too, the next
                # producer with this transactional.id (a retry) or the broker's timeout aborts it
                with suppress(Exception):
                    producer.abort_transaction(self.connection.timeout_seconds)
                    aborted = True
                fenced = next((e for e in fatal if is_fenced(e)), None)
                if fenced is None and is_fenced(kafka_error(exc)):
                    fenced = kafka_error(exc)
                aborted = aborted or fenced is not None  # the broker is there: it fenced us
                if fenced is not None and not isinstance(exc, OutcomeUnknown):
                    raise WriterFenced(fenced_message(location.name, fenced)) from exc
                raise
            finally:
                self.records.producer, self.records.outbox = None, None
        finally:
            # close() only once the abort went through: it aborts and flushes without a bound
            # (a dead broker hung it); otherwise what is queued is dropped and the producer
            # goes with its last reference
            with suppress(Exception):
                producer.purge(in_queue=True, in_flight=True, blocking=False)
                if aborted:  # nothing is left to abort or flush: close() returns at once
                    producer.close()
            outbox.producer = None
            del producer
        self._check_visible(location, outbox.last, mode)

    def _commit(self, producer: Any, location: Topic) -> None:
        from confluent_kafka import KafkaException

        try:
            producer.commit_transaction(self.connection.timeout_seconds)
        except KafkaException as exc:
            error = kafka_error(exc)
            if is_fenced(error) or (error is not None and error.fatal()):
                raise  # the caller says what fenced it
            if error is not None and error.txn_requires_abort():
                with suppress(Exception):
                    producer.abort_transaction(self.connection.timeout_seconds)
                raise  # aborted: nothing was published, a retry may repeat it
            raise OutcomeUnknown(
                f"the commit of the transaction on topic {location.name!r} may or may not have"
                f" applied: {exc}"
            ) from exc

    def _check_visible(
        self, location: Topic, last: Mapping[tuple[str, int], int], mode: WriteMode
    ) -> None:
        """Refuse a commit the broker acknowledged but `read_committed` consumers cannot see.

        A broker that restarts between the last delivery and the commit may forget the
        transaction yet acknowledge its commit (noida-db does; a real broker keeps the state in
        `__transaction_state`): the last message of every partition written (the schema record
        too) must come back to a `read_committed` consumer within VISIBLE_WITHIN_SECONDS.
        """
        missing = invisible(self.connection, last, VISIBLE_WITHIN_SECONDS)
        if missing:
            # noida-db lists a producer's earlier aborted transactions (a fenced zombie's, an
            # aborted attempt's) in every fetch, so a consumer that starts after their abort
            # marker skips that producer's later messages too (Kafka lists only those a fetch
            # overlaps): confirm from the partition's beginning, which a consumer reads right
            missing = invisible(
                self.connection,
                {where: last[where] for where in missing},
                VISIBLE_WITHIN_SECONDS,
                from_beginning=True,
            )
        if not missing:
            return
        where = ", ".join(f"{topic}[{partition}]" for topic, partition in missing)
        said = (
            f"the broker acknowledged the commit of the transaction on topic {location.name!r},"
            f" but read_committed consumers cannot see its last message in {where} (checked"
            f" for up to {VISIBLE_WITHIN_SECONDS:g} s; a broker restart before the commit can"
            " lose an open transaction)"
        )
        if mode is WriteMode.APPEND:
            raise OutcomeUnknown(
                said + "; the append is NOT retried, so that its rows are never published"
                " twice: check the topic with a read_committed consumer and run it again only if"
                " its rows are missing"
            )
        raise CommitNotVisible(f"{said}; the {mode.value} is retried whole (it rewrites every row)")

    def after_fenced(
        self, topic: Topic, seen: dict[str, Any] | None, fenced: WriterFenced
    ) -> WriterFenced:
        """Wait (at most FENCED_WAIT_SECONDS) for the writer that took the topic to commit, seen
        as a new schema record: this write may then be retried on top of it."""
        deadline = time.monotonic() + FENCED_WAIT_SECONDS
        while True:
            self.records.forget()
            if self.records.document(topic.name) != seen:
                return WriterFenced(
                    f"{fenced}; that writer has committed since, so this write goes again on"
                    " top of it",
                    retry=True,
                )
            if time.monotonic() > deadline:
                return WriterFenced(
                    f"{fenced}; that writer has not committed within {FENCED_WAIT_SECONDS:g} s:"
                    " run this write again once it is done, if this data should be the topic's"
                )
            time.sleep(FENCED_POLL_SECONDS)
