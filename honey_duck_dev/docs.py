"""The README's destination and type tables, generated from what the code declares.

    python -m honey_duck_dev.docs            rewrite the generated blocks of README.md
    python -m honey_duck_dev.docs --check    exit 1 with a unified diff when README.md differs

(`python3 tasks.py docs [--check]` runs the same.) Each block sits between
`<!-- generated: <name> (python3 tasks.py docs) -->` and `<!-- end generated -->`; everything
outside the blocks is hand-written and left alone. The tables come from the real IO managers of
the `dev` environment (built, never connected): each sink's capabilities, and for each type its
`unsupported`, `refusals` and `landing` declarations; for the official Parquet and DuckDB
managers, from their sink modules' readbacks. The test suite fails when README.md disagrees.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from tabulate import tabulate

from honey_duck import environments, seam
from honey_duck.seam import Capabilities, Landing, SchemaPolicy, SinkIOManager, WriteMode
from honey_duck.sinks import SINKS

README = environments.REPO_ROOT / "README.md"
COMMAND = "python3 tasks.py docs"
BEGIN = "<!-- generated: {name} (" + COMMAND + ") -->"
END = "<!-- end generated -->"
ZONE = "Asia/Kathmandu"  # the one zone the tz-aware row is shown with


@dataclass(frozen=True)
class Kind:
    """One row of the type table: a polars type, and whether the property tests draw it."""

    dtype: pl.DataType
    drawn: bool = True  # one of the kinds `honey_duck_tests/sinks/roundtrip.py` draws


KINDS: tuple[Kind, ...] = (
    *(Kind(t()) for t in (pl.Int8, pl.Int16, pl.Int32, pl.Int64)),
    *(Kind(t()) for t in (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)),
    Kind(pl.Float32()),
    Kind(pl.Float64()),
    Kind(pl.Decimal(18, 4)),
    Kind(pl.String()),
    Kind(pl.Categorical()),
    Kind(pl.Enum(["gallery", "online", "Zoë ✓", ""])),
    Kind(pl.Boolean()),
    Kind(pl.Date()),
    Kind(pl.Time()),
    Kind(pl.Datetime("us")),
    Kind(pl.Datetime("ns")),
    Kind(pl.Datetime("us", ZONE)),
    Kind(pl.Duration("us")),
    Kind(pl.Binary()),
    Kind(pl.List(pl.Int64)),
    Kind(pl.List(pl.String)),
    Kind(pl.Struct({"k": pl.Int64, "v": pl.String})),
)


@dataclass(frozen=True)
class Sink:
    """What one built destination declares, as the tables show it."""

    word: str
    manager: str  # the IO manager's class name
    package: str | None  # the official manager's distribution; None for ours
    capabilities: Capabilities
    tested_against: str
    unsupported: Callable[[pl.DataType], str | None]
    refusals: Callable[[pl.Schema], list[seam.Refusal]]
    landing: Callable[[pl.DataType], Landing]


def sinks() -> list[Sink]:
    """Every built sink, in `SINKS` order, from the real managers of the `dev` environment.

    `dev`'s own defaults are used (no variable is read), so the tables do not depend on who
    generates them; building a manager and its target opens no connection.
    """
    env = environments.environment("dev", home=environments.REPO_ROOT / "data", variables={})
    found = []
    for word, sink in SINKS.items():
        manager = sink.manager(env)
        if isinstance(manager, SinkIOManager):
            declares: Any = manager.target()
            capabilities, package = manager.target_capabilities(), None
        else:  # an official manager: its target module's readback declares for it
            assert sink.readback is not None, f"{word}: an official manager needs a readback"
            declares = sink.readback(manager)
            capabilities = declares.capabilities
            package = type(manager).__module__.split(".")[0].replace("_", "-")
        found.append(
            Sink(
                word=word,
                manager=type(manager).__name__,
                package=package,
                capabilities=capabilities,
                tested_against=sink.tested_against,
                unsupported=declares.unsupported,
                refusals=declares.refusals,
                landing=declares.landing,
            )
        )
    return found


# ---------------------------------------------------------------------------------------------
# How things read
# ---------------------------------------------------------------------------------------------


def readable(dtype: pl.DataType) -> str:
    """A polars type as people write it: `Datetime(us, UTC)`, `Decimal(18, 4)`, `List(Int64)`."""
    if isinstance(dtype, pl.Datetime):
        zone = f", {dtype.time_zone}" if dtype.time_zone else ""
        return f"Datetime({dtype.time_unit}{zone})"
    if isinstance(dtype, pl.Duration):
        return f"Duration({dtype.time_unit})"
    if isinstance(dtype, pl.Decimal):
        return f"Decimal({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, pl.Array):
        return f"Array({readable(dtype.inner)}, {dtype.size})"
    if isinstance(dtype, pl.List):
        return f"List({readable(dtype.inner)})"
    if isinstance(dtype, pl.Struct):
        return "Struct(" + ", ".join(f"{f.name}: {readable(f.dtype)}" for f in dtype.fields) + ")"
    if isinstance(dtype, pl.Enum):
        return "Enum(" + ", ".join(repr(c) for c in dtype.categories.to_list()) + ")"
    return str(dtype)


def _modes(modes: frozenset[WriteMode]) -> str:
    return ", ".join(m.value for m in WriteMode if m in modes) or "none"


def _policies(policies: frozenset[SchemaPolicy]) -> str:
    return ", ".join(p.value for p in SchemaPolicy if p in policies) or "none"


def _cell_text(dtype: pl.DataType, landing: Landing) -> str:
    if landing.dtype is None:
        base = "inferred"
    elif landing.dtype == dtype and readable(landing.dtype) == readable(dtype):
        base = "" if landing.note else "yes"
    else:
        base = f"as {readable(landing.dtype)}"
    if landing.note:
        return f"{base}; {landing.note}" if base else landing.note
    return base


class Footnotes:
    """The value refusals behind the table's markers: one number per sink and reason."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, str], int] = {}

    def mark(self, word: str, whys: Sequence[str]) -> str:
        numbers = []
        for why in dict.fromkeys(whys):  # in order, each reason once
            key = (word, why)
            numbers.append(self.numbers.setdefault(key, len(self.numbers) + 1))
        return f" <sup>{','.join(map(str, numbers))}</sup>" if numbers else ""

    def lines(self) -> list[str]:
        return [f"{n}. {word}: {why}" for (word, why), n in self.numbers.items()]


def cell(sink: Sink, dtype: pl.DataType, notes: Footnotes) -> str:
    """One type in one sink: refused, kept as is, read back as another type, or changed."""
    if sink.unsupported(dtype):
        return "refused"
    text = _cell_text(dtype, sink.landing(dtype))
    whys = [r.why for r in sink.refusals(pl.Schema({"value": dtype}))]
    return text + notes.mark(sink.word, whys)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub markdown table, its columns padded so that the README reads as text too."""
    escaped = [[_escape(c) for c in row] for row in rows]
    # the cells are text already: numparse would right-align `0` and turn `1.10` into `1.1`
    return tabulate(escaped, headers=header, tablefmt="github", disable_numparse=True).splitlines()


# ---------------------------------------------------------------------------------------------
# The blocks
# ---------------------------------------------------------------------------------------------


def destinations(built: Sequence[Sink]) -> list[str]:
    """One row per built sink: its IO manager, what it keeps and what its tests run against."""
    rows = []
    for sink in built:
        manager = f"`{sink.manager}`"
        manager = f"official: {sink.package} {manager}" if sink.package else f"ours: {manager}"
        caps = sink.capabilities
        rows.append([
            sink.word, manager, _modes(caps.modes), _modes(caps.slice_modes),
            _policies(caps.policies), "yes" if caps.keyed else "no", sink.tested_against,
        ])  # fmt: skip
    header = [
        "destination", "IO manager", "write modes", "per partition", "schema policies",
        "keyed", "tested against",
    ]  # fmt: skip
    lines = _table(header, rows)
    whys = [f"- {s.word}: {s.capabilities.why}." for s in built if s.capabilities.why]
    if whys:
        lines += ["", "Why a mode is missing, as the refusal says it:", "", *whys]
    return lines


def types(built: Sequence[Sink]) -> list[str]:
    """One row per kind, one column per sink; value refusals as numbered footnotes."""
    notes = Footnotes()
    for sink in built:  # number the footnotes sink by sink, so each sink's read together
        for kind in KINDS:
            cell(sink, kind.dtype, notes)
    rows = []
    for kind in KINDS:
        label = f"`{readable(kind.dtype)}`" + ("" if kind.drawn else " *")
        rows.append([label, *(cell(sink, kind.dtype, notes) for sink in built)])
    lines = _table(["polars type", *(s.word for s in built)], rows)
    lines += [
        "",
        "\\* not drawn by the property round trips (only some sinks' tests write it by example).",
        "",
        "Values refused before anything is written (the type itself is kept):",
        "",
        *notes.lines(),
    ]
    return lines


BLOCKS: dict[str, Callable[[Sequence[Sink]], list[str]]] = {
    "destinations": destinations,
    "types": types,
}


def render(text: str, built: Sequence[Sink] | None = None) -> str:
    """`text` (README.md's) with every generated block rewritten; each block must be there."""
    built = sinks() if built is None else built
    for name, make in BLOCKS.items():
        begin = BEGIN.format(name=name)
        start = text.find(begin)
        if start < 0:
            raise ValueError(f"README.md has no `{begin}` line")
        end = text.find(END, start)
        if end < 0:
            raise ValueError(f"README.md's `{name}` block has no `{END}` line")
        body = "\n".join(make(built))
        text = text[: start + len(begin)] + "\n" + body + "\n" + text[end:]
    return text


def diff(current: str, wanted: str) -> str:
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            "README.md",
            "README.md (generated)",
        )
    )


def main(argv: Sequence[str], readme: Path = README) -> int:
    check = "--check" in argv
    unknown = [a for a in argv if a != "--check"]
    if unknown:
        print(f"unknown arguments {unknown}; use --check or nothing", file=sys.stderr)
        return 2
    current = readme.read_text()
    wanted = render(current)
    if current == wanted:
        print("README.md's generated tables match the code")
        return 0
    if check:
        print(diff(current, wanted))
        print(f"README.md disagrees with the code: run `{COMMAND}`", file=sys.stderr)
        return 1
    readme.write_text(wanted)
    print("README.md's generated tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
