"""What is measured, found by module name: `approaches/<word>.py` is everything measured for the
sink `<word>` (the word of `honey_duck/sinks/<word>.py`): its approaches, its row counter, its
server, and its reconciliation checks.

A module defines `SINKS`, `{name: Sink}`, each name its word or `<word>_<variant>` (the file
formats' `csv_monthly`: the same table in 24 monthly partitions), and optionally `CHECKS`,
`{name: Checked}`, named the same way. Modules whose names start with `_` are what several share
(`_base`: Approach, Sink, Checked, the helpers; `_dagster`: runs through `dg.materialize` and
their timings; `_files`: the file formats' manager and partitioned writes). Adding a sink is
adding a module: there is no list to edit.

Heavy imports stay inside the functions: this package is imported by the parent process, which
is never measured, and by every measuring child, which imports only what its approach needs.
"""

from __future__ import annotations

import importlib
import pkgutil

from honey_duck_dev.benchmarks.approaches._base import KINDS, Approach, Checked, Kind, Sink

__all__ = ["APPROACHES", "CHECKS", "KINDS", "SINKS", "SINK_GROUPS", "Approach", "Checked", "Kind"]
__all__ += ["Sink", "discover"]


def _named_for(word: str, name: str) -> bool:
    return name == word or name.startswith(f"{word}_")


def discover() -> tuple[dict[str, Sink], dict[str, Checked]]:
    """Every sink module's SINKS and CHECKS, in the modules' alphabetical order."""
    sinks: dict[str, Sink] = {}
    checks: dict[str, Checked] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found_sinks = getattr(module, "SINKS", None)
        if not isinstance(found_sinks, dict) or not found_sinks:
            raise TypeError(f"benchmark module {module.__name__} defines no SINKS")
        found_checks = getattr(module, "CHECKS", {})
        strays = [n for n in [*found_sinks, *found_checks] if not _named_for(info.name, n)]
        if strays:
            raise TypeError(
                f"benchmark module {module.__name__} names {strays}: a module's sinks and"
                f" checks are named {info.name!r} or {info.name + '_<variant>'!r}"
            )
        sinks.update(found_sinks)
        checks.update(found_checks)
    return sinks, checks


SINKS, CHECKS = discover()

# Every approach name any sink has, the kinds first: what `--approaches` accepts.
APPROACHES: tuple[str, ...] = tuple(
    dict.fromkeys([*KINDS, *(kind for sink in SINKS.values() for kind in sink.approaches)])
)

# Names `--sinks` accepts for several sinks at once: `monthly` for every `<word>_monthly`.
SINK_GROUPS: dict[str, tuple[str, ...]] = {
    "monthly": tuple(name for name in SINKS if name.endswith("_monthly")),
}
