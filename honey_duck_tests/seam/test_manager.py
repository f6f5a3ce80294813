"""The sink seam itself: what the flow refuses at load time, retries, and never reveals.

The target here keeps Arrow tables in a dict: it exists to test the flow, which every real
target (files, SQL, and the ones to come) shares; the real targets have their own tests.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import polars as pl
import pytest

from honey_duck import seam
from honey_duck.seam import Capabilities, Session, SinkIOManager, Target, Write, check_assets
from honey_duck.seam.faults import ConnectFailed, OutcomeUnknown, Retry, connect_failed
from honey_duck_tests.contract.runs import error_of, run

SECRET = "hunter2-Secret"
TABLES: dict[str, pl.DataFrame] = {}
FAILURES: list[BaseException] = []  # raised, in order, by the next sessions


class DictSession(Session):
    def stored_schema(self, location: str, partitions: Any) -> Mapping[str, Any] | None:
        return TABLES[location].schema if location in TABLES else None

    def replace(self, write: Write) -> int:
        TABLES[write.location] = write.frame.collect()
        return TABLES[write.location].height

    replace_slice = replace

    def append(self, write: Write) -> int:
        if FAILURES:
            raise FAILURES.pop(0)
        old = TABLES.get(write.location)
        new = write.frame.collect()
        TABLES[write.location] = new if old is None else pl.concat([old, new])
        return TABLES[write.location].height

    upsert = append

    def read(self, location: str, columns: Sequence[str] | None, partitions: Any) -> pl.DataFrame:
        frame = TABLES[location]
        return frame.select(columns) if columns else frame


class DictTarget(Target):
    word = "dict"
    capabilities = Capabilities(
        modes=frozenset({seam.WriteMode.APPEND}),
        slice_modes=frozenset({seam.WriteMode.APPEND}),
        policies=frozenset({seam.SchemaPolicy.STRICT}),
        why="a log only grows",
    )

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> str:
        return key.to_user_string()

    def table_name(self, location: str) -> str:
        return location

    def uri(self, location: str, partitions: Any = None) -> str:
        return f"dict://user:{SECRET}@memory/{location}"

    def secrets(self) -> Sequence[str | None]:
        return [SECRET]

    @contextmanager
    def session(self) -> Iterator[DictSession]:
        if FAILURES and isinstance(FAILURES[0], ConnectFailed):
            raise FAILURES.pop(0)
        yield DictSession()


class DictIOManager(SinkIOManager):
    @classmethod
    def target_class(cls) -> type[Target]:
        return DictTarget

    def target(self) -> DictTarget:
        return DictTarget()


@pytest.fixture(autouse=True)
def empty() -> Iterator[None]:
    TABLES.clear()
    FAILURES.clear()
    yield
    FAILURES.clear()


def _asset(name: str, metadata: dict, **more: Any) -> dg.AssetsDefinition:
    @dg.asset(name=name, metadata=metadata, io_manager_key="dict_io_manager", **more)
    def _produce() -> pl.DataFrame:
        return pl.DataFrame({"id": [1]})

    return _produce


def test_a_mode_the_target_cannot_keep_is_refused_when_the_definitions_load() -> None:
    assets = [
        _asset("fine", {"write_mode": "append"}),
        _asset("swapped", {"write_mode": "replace"}),
        _asset("merged", {"write_mode": "upsert"}),  # no keys: a settings error, named too
        _asset(
            "monthly",
            {"write_mode": "append"},
            partitions_def=dg.MonthlyPartitionsDefinition(start_date="2024-01-01"),
        ),
    ]
    with pytest.raises(dg.DagsterInvalidDefinitionError) as raised:
        check_assets(assets, {"dict_io_manager": DictIOManager()})
    message = str(raised.value)
    assert "`swapped` (dict sink)" in message
    assert "write_mode 'replace' on an asset (it supports: append); a log only grows" in message
    assert "`merged` (dict sink): write_mode 'upsert' needs the key columns" in message
    assert "`monthly` (dict sink): it is partitioned but has no `partition_expr`" in message
    assert "`fine`" not in message


class KeyedDictIOManager(DictIOManager):
    """Capabilities that follow a plain config field, as a topic's cleanup policy does."""

    compacted: bool = False

    def target_capabilities(self) -> Capabilities:
        if not self.compacted:
            return super().target_capabilities()
        return Capabilities(modes=frozenset(seam.WriteMode), keyed=True, why="compacted")


def test_capabilities_can_follow_configuration_and_demand_keys() -> None:
    replace = _asset("swapped", {"write_mode": "replace", "upsert_keys": ["id"]})
    keyless = _asset("keyless", {"write_mode": "append"})
    with pytest.raises(dg.DagsterInvalidDefinitionError) as raised:
        check_assets([replace, keyless], {"dict_io_manager": KeyedDictIOManager(compacted=True)})
    message = str(raised.value)
    assert "`keyless` (dict sink): it cannot keep write_mode 'append' without `upsert_keys`" in (
        message
    )
    assert "`swapped`" not in message
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="`swapped`"):
        check_assets([replace], {"dict_io_manager": KeyedDictIOManager(compacted=False)})


def test_a_keyed_target_refuses_duplicate_keys_in_every_mode_before_writing() -> None:
    """One validation pass: a target keyed by `upsert_keys` needs them unique for a replace
    too (a compacted topic would keep one of two rows silently); other targets do not."""
    frame = pl.DataFrame({"id": [1, 2, 2, 3, 3], "v": list("abcde")})
    replace = {"write_mode": "replace", "upsert_keys": ["id"]}
    result = run(KeyedDictIOManager(compacted=True), lambda: frame, metadata=replace)
    message = error_of(result)
    assert "2 upsert keys ['id'] appear more than once in the data" in message
    assert "(the first is rows 1 and 2)" in message and "{'id'" not in message
    assert TABLES == {}
    nulls = pl.DataFrame({"id": [1, None], "v": ["a", "b"]})
    result = run(KeyedDictIOManager(compacted=True), lambda: nulls, metadata=replace)
    assert "1 rows have a null in upsert keys ['id']" in error_of(result)
    assert TABLES == {}
    # a target that does not key its rows keeps an append's duplicates, as before
    append = {"write_mode": "append", "upsert_keys": ["id"]}
    result = run(DictIOManager(), lambda: frame, metadata=append)
    assert result.success, error_of(result)
    assert TABLES["t/table"].height == 5


def test_the_project_definitions_pass_the_load_time_check(tmp_path) -> None:
    from honey_duck import definitions, environments

    for name in environments.ENVIRONMENTS:
        definitions.build(environments.environment(name, home=tmp_path))  # raises if refused


def test_a_mode_refused_at_run_time_too_when_metadata_overrides_it() -> None:
    """Output metadata can change the mode per run: the flow checks again before any I/O."""

    def produce(context: dg.AssetExecutionContext) -> pl.DataFrame:
        context.add_output_metadata({"write_mode": "replace"})
        return pl.DataFrame({"id": [1]})

    result = run(DictIOManager(), produce, metadata={"write_mode": "append"})
    assert "cannot keep write_mode 'replace'" in error_of(result)
    assert TABLES == {}


def test_transient_failures_are_retried_and_an_uncertain_append_is_not(
    capfd: pytest.CaptureFixture[str],
) -> None:
    FAILURES.append(ConnectFailed(f"reset by peer (password {SECRET})", transient=True))
    result = run(DictIOManager(retries=2), lambda: pl.DataFrame({"id": [1]}), metadata=APPEND)
    assert result.success, error_of(result)
    assert TABLES["t/table"].height == 1
    logged = capfd.readouterr().err
    assert "dict sink, `t/table`: retry 1 of 2 after: reset by peer (password ***)" in logged
    assert SECRET not in logged

    # A commit that may have landed: an append must not run twice.
    cause = ConnectFailed("connection lost during COMMIT", transient=True)
    uncertain = OutcomeUnknown("COMMIT failed")
    uncertain.__cause__ = cause
    FAILURES.append(uncertain)
    result = run(DictIOManager(retries=2), lambda: pl.DataFrame({"id": [2]}), metadata=APPEND)
    assert "COMMIT failed" in error_of(result)
    assert TABLES["t/table"]["id"].to_list() == [1]


APPEND = {"write_mode": "append"}


def test_errors_metadata_and_logs_never_carry_a_secret() -> None:
    FAILURES.append(ValueError(f"server said no to user:{SECRET}"))
    result = run(DictIOManager(retries=0), lambda: pl.DataFrame({"id": [1]}), metadata=APPEND)
    message = error_of(result)
    assert "dict sink, `t/table`: server said no to user:***" in message
    assert SECRET not in str([e for e in result.all_events])

    ok = run(DictIOManager(), lambda: pl.DataFrame({"id": [1]}), metadata=APPEND)
    metadata = ok.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/uri"].value == "dict://user:***@memory/t/table"
    assert metadata["dagster/row_count"].value == 1


def test_the_retry_policy_is_bounded_exponential_and_jittered() -> None:
    waits: list[float] = []
    attempts: list[int] = []

    def always_down() -> None:
        attempts.append(1)
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        Retry().run(always_down, lambda e: True, sleep=waits.append)
    assert len(attempts) == Retry.attempts
    ceilings = [0.5, 1, 2, 4, 8, 8]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    # a server that restarts in a few seconds is waited for: at least 11.75 s in all
    assert sum(c / 2 for c in ceilings) >= 11.75


def test_a_server_in_recovery_or_starting_up_is_transient_and_a_bad_login_is_not() -> None:
    class Refusal(Exception):
        def __init__(self, message: str, sqlstate: str | None = None) -> None:
            super().__init__(message)
            self.sqlstate = sqlstate

    transient = [
        Refusal("FATAL:  the database system is in recovery mode"),
        Refusal("FATAL:  the database system is not yet accepting connections"),
        Refusal("the database system is in recovery mode", sqlstate="57P03"),
        Refusal("sorry, too many clients already", sqlstate="53300"),
    ]
    permanent = [
        Refusal('password authentication failed for user "x"', sqlstate="28P01"),
        Refusal('database "nope" does not exist', sqlstate="3D000"),
        Refusal('password authentication failed for user "x"'),
    ]
    assert all(connect_failed("PostgreSQL", "here", e).transient for e in transient)
    assert not any(connect_failed("PostgreSQL", "here", e).transient for e in permanent)
