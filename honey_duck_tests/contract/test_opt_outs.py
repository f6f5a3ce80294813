"""Every sink of ours runs the contract suite, and every opt-out from it says why."""

import importlib
from pathlib import Path

import pytest

from honey_duck_tests.contract.probe import iter_contract_classes, opt_out, opt_outs
from honey_duck_tests.contract.suite import DataContract, LandedContract, ServerContract

SINKS = Path(__file__).parents[1] / "sinks"
# our own managers (the official ones, duckdb and parquet, are used as they are)
OURS = ["postgres", "mongo", "kafka", "redshift", "json", "csv", "excel", "feather"]
BASES = (DataContract, LandedContract)


def contract_classes(word: str) -> list[type]:
    module = importlib.import_module(f"honey_duck_tests.sinks.test_{word}")
    return [c for c in iter_contract_classes(module) if issubclass(c, BASES)]


def contract_tests() -> set[str]:
    return {
        name
        for base in (ServerContract, LandedContract)
        for klass in base.__mro__
        for name in vars(klass)
        if name.startswith("test_")
    }


@pytest.mark.parametrize("word", OURS)
def test_every_sink_of_ours_runs_the_contract(word: str) -> None:
    classes = contract_classes(word)
    assert any(issubclass(c, DataContract) for c in classes), f"test_{word}.py runs no contract"
    assert any(issubclass(c, LandedContract) for c in classes), f"test_{word}.py lands nothing"


@pytest.mark.parametrize("word", OURS)
def test_every_opt_out_names_a_contract_test_and_says_why(word: str) -> None:
    known = contract_tests()
    for klass in contract_classes(word):
        for name, reason in opt_outs(klass).items():
            assert name in known, f"{klass.__name__}.{name} opts out of no contract test"
            assert len(reason.split()) >= 3, f"{klass.__name__}.{name}: say why ({reason!r})"


def test_an_opt_out_without_a_reason_is_refused_and_a_redefinition_runs() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        opt_out("  ")

    class Base:
        def test_a(self) -> None: ...

    class Out(Base):
        test_a = opt_out("this sink has no such thing")

    class Back(Out):
        def test_a(self) -> None: ...

    assert opt_outs(Out) == {"test_a": "this sink has no such thing"}
    assert opt_outs(Back) == {}
