"""README.md's generated tables agree with the code, cover what the property tests draw, and
follow the declarations they are generated from (no server needed)."""

from __future__ import annotations

import dataclasses
import re

import polars as pl
import pytest

from honey_duck.sinks import SINKS
from honey_duck_dev import docs
from honey_duck_tests.sinks import roundtrip


@pytest.fixture(scope="module")
def built() -> list[docs.Sink]:
    return docs.sinks()


def test_readme_tables_are_what_the_code_declares(built: list[docs.Sink]) -> None:
    current = docs.README.read_text()
    wanted = docs.render(current, built)
    assert current == wanted, (
        f"README.md disagrees with the code; run `{docs.COMMAND}`:\n" + docs.diff(current, wanted)
    )


def test_every_built_sink_has_a_column_and_a_row(built: list[docs.Sink]) -> None:
    assert [s.word for s in built] == list(SINKS)
    text = docs.README.read_text()
    for sink in built:
        assert re.search(rf"\n\| {sink.word} +\| ", text)  # its row of the destination table
        assert sink.tested_against.strip()


def test_the_type_rows_are_the_kinds_the_property_tests_draw() -> None:
    drawn = [k.dtype for k in docs.KINDS if k.drawn]

    def collapsed(dtype: pl.DataType) -> pl.DataType:  # every zone is one row
        if isinstance(dtype, pl.Datetime) and dtype.time_zone:
            return pl.Datetime(dtype.time_unit, docs.ZONE)
        return dtype

    claimed = list(dict.fromkeys(collapsed(dtype) for dtype, _ in roundtrip.COLUMNS.values()))
    assert docs.ZONE in roundtrip.ZONES
    assert sorted(map(docs.readable, drawn)) == sorted(map(docs.readable, claimed))
    assert len(drawn) == len(set(map(docs.readable, drawn)))
    # the rows the property tests do not draw are marked so in the README
    text = docs.README.read_text()
    for kind in docs.KINDS:
        if not kind.drawn:
            assert re.search(rf"\| {re.escape(f'`{docs.readable(kind.dtype)}` *')} +\|", text)


def cells(line: str) -> list[str]:
    """A markdown table row's cells, without their padding (an escaped `\\|` stays in its cell)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _flipped(sink: docs.Sink, **changes) -> docs.Sink:
    return dataclasses.replace(sink, **changes)


def _type_cells(built: list[docs.Sink], word: str, dtype: pl.DataType) -> str:
    """The type table's row for `dtype`, as rendered, and the cell of sink `word`."""
    lines = docs.types(built)
    row = next(line for line in lines if line.startswith(f"| `{docs.readable(dtype)}`"))
    column = [s.word for s in built].index(word)
    return cells(row)[column + 1]


def test_a_refused_type_is_shown_refused(
    built: list[docs.Sink], monkeypatch: pytest.MonkeyPatch
) -> None:
    feather = SINKS["feather"].manager(_dev())
    target_class = type(feather.target())
    assert _type_cells(built, "feather", pl.Binary()) == "yes"
    monkeypatch.setattr(
        target_class,
        "unsupported",
        lambda self, dtype: "no" if dtype == pl.Binary else None,
    )
    rebuilt = docs.sinks()
    assert _type_cells(rebuilt, "feather", pl.Binary()) == "refused"
    # and the README would then disagree: the suite's first test fails with the diff
    current = docs.README.read_text()
    assert docs.render(current, rebuilt) != current


def test_landings_notes_and_refusals_reach_the_cells(built: list[docs.Sink]) -> None:
    kafka = next(s for s in built if s.word == "kafka")
    as_text = _flipped(kafka, landing=lambda dtype: docs.Landing(pl.String()))
    assert _type_cells([as_text], "kafka", pl.Int8()) == "as String"
    inferred = _flipped(kafka, landing=lambda dtype: docs.Landing(None))
    assert _type_cells([inferred], "kafka", pl.Int8()) == "inferred"
    noted = _flipped(kafka, landing=lambda dtype: docs.Landing(dtype, note="rounded"))
    assert _type_cells([noted], "kafka", pl.Int8()) == "rounded"
    refusing = _flipped(
        kafka,
        refusals=lambda schema: [docs.seam.Refusal(c, pl.lit(True), "too odd") for c in schema],
    )
    assert _type_cells([refusing], "kafka", pl.Int8()) == "yes <sup>1</sup>"
    assert "1. kafka: too odd" in docs.types([refusing])


def test_a_capability_change_reaches_the_destination_table(built: list[docs.Sink]) -> None:
    csv = next(s for s in built if s.word == "csv")
    narrowed = _flipped(
        csv,
        capabilities=dataclasses.replace(
            csv.capabilities,
            modes=frozenset({docs.WriteMode.REPLACE}),
            policies=frozenset(),
            why="just because",
        ),
    )
    lines = docs.destinations([narrowed])
    row = next(line for line in lines if cells(line)[:1] == ["csv"])
    assert cells(row)[2:6] == ["replace", "replace, append, upsert", "none", "no"]
    assert "- csv: just because." in lines


def test_the_command_checks_and_writes(tmp_path, capsys) -> None:
    readme = tmp_path / "README.md"
    stale = re.sub(r"\| csv( +)\| ours", r"| csv\1| theirs", docs.README.read_text(), count=1)
    readme.write_text(stale)
    assert docs.main(["--check"], readme) == 1
    out = capsys.readouterr()
    assert re.search(r"^-\| csv +\| theirs", out.out, re.MULTILINE), out.out
    assert "python3 tasks.py docs" in out.err
    assert readme.read_text() == stale  # --check writes nothing
    assert docs.main([], readme) == 0
    assert readme.read_text() == docs.README.read_text()
    assert docs.main(["--check"], readme) == 0


def test_the_generator_opens_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"the generator tried to connect: {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert docs.types(docs.sinks())


def _dev():
    from honey_duck import environments

    return environments.environment("dev", home=environments.REPO_ROOT / "data", variables={})
