"""The benchmark's tables: every measurement, ours against each baseline, memory side by side;
rendered as aligned text and Markdown by tabulate."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from honey_duck_dev.benchmarks.approaches import SINKS, Approach
from honey_duck_dev.benchmarks.runner import Measurement

NOTE_CAPPED = (
    "`*` measured on fewer rows than the run's row count: per-row approaches are capped, and their"
    " rows/s and MB/s are measured at that size, not extrapolated; their peak RSS is for that"
    " smaller input, so the RSS ratio flatters them."
)
NOTE_UNITS = (
    "*seconds* is the whole approach: for a row through Dagster (ours, official) the whole"
    " `dg.materialize` run. *write s* is that run's `handle_output` alone, from Dagster's event"
    " log (STEP_OUTPUT to the next event, logged once `handle_output` returned); *empty run s* is"
    " Dagster's fixed cost, the same asset with its LazyFrame unread through"
    " `dg.InMemoryIOManager`, run in the same child right after. A plain row (floor, naive, other"
    " raw paths) runs in a process that imports only what its code needs, never Dagster. MB/s is"
    " the input's in-memory Arrow size (polars `estimated_size`) divided by seconds, the same"
    " basis for every approach; output MB is what landed on disk (sidecar schema files and"
    " DuckDB's database file included). Peak RSS is the child's high-water mark (`VmHWM`, not"
    " `ru_maxrss`, which Linux carries over from the parent); *at start* is its resident memory"
    " (`VmRSS`) as the clock started, its imports (and for a Dagster row its empty warm-up run)"
    " included; *rise* is peak minus start, what the approach itself held. In the ratio table,"
    " ours (the official manager where honey_duck has no sink: DuckDB) is divided by each other"
    " approach: a speed ratio above 1 means ours is faster, an RSS ratio below 1 that ours is"
    " leaner. *ours' whole run ÷ it* compares ours' whole run with its whole code; *ours' write"
    " ÷ it* ours' `handle_output` with its code (with an official manager's `handle_output`)."
)


THROUGHPUT_HEADERS = [
    "sink",
    "approach",
    "code",
    "rows",
    "seconds",
    "write s",
    "empty run s",
    "rows/s",
    "MB/s (input, in memory)",
    "peak RSS MB",
    "at start MB",
    "rise MB",
    "output MB",
]
RATIO_HEADERS = [
    "sink",
    "ours",
    "against",
    "its code",
    "speed: ours' whole run ÷ it",
    "speed: ours' write ÷ it",
    "peak RSS: ours ÷ it",
    "rise: ours ÷ it",
]


def number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _subject(group: Sequence[Measurement]) -> Measurement | None:
    """The approach the ratios are about: ours, or the official manager where we have none."""
    for kind in ("ours", "official"):
        for m in group:
            if m.kind == kind:
                return m
    return None


def _by_sink(measurements: Sequence[Measurement]) -> dict[str, list[Measurement]]:
    groups: dict[str, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault(m.sink, []).append(m)
    return groups


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _write_rate(m: Measurement) -> float | None:
    """Rows per second of the write alone: a Dagster run's `handle_output`, else the code."""
    seconds = m.write_seconds if m.dagster else m.seconds
    return m.rows / seconds if m.ok and seconds else None


def throughput_rows(measured: Sequence[Measurement]) -> list[list[str]]:
    """One table row per measurement, the sink's subject first."""
    rows = []
    for group in _by_sink(measured).values():
        subject = _subject(group)
        for m in sorted(group, key=lambda m: m is not subject):
            ok = m.ok
            rows.append(
                [
                    m.sink,
                    m.kind,
                    m.label if ok else f"{m.label} — FAILED: {m.error}",
                    f"{m.rows:,}" + ("*" if m.capped else ""),
                    number(m.seconds, 2) if ok else "—",
                    number(m.write_seconds, 2) if ok else "—",
                    number(m.empty_run_seconds, 2) if ok else "—",
                    number(m.rows_per_s),
                    number(m.mb_per_s, 1),
                    number(m.peak_rss_mb) if ok else "—",
                    number(m.start_rss_mb) if ok else "—",
                    number(m.rise_mb),
                    number(m.out_bytes / 1e6, 1) if ok and m.out_bytes is not None else "—",
                ]
            )
    return rows


def ratio_rows(measured: Sequence[Measurement]) -> list[list[str]]:
    """Per sink, ours (or the official manager) against each other approach, by its code."""
    rows = []
    for group in _by_sink(measured).values():
        subject = _subject(group)
        if subject is None or not subject.ok:
            continue
        for m in group:
            if m is subject or not m.ok:
                continue
            rows.append(
                [
                    m.sink,
                    subject.kind,
                    m.kind + ("*" if m.capped else ""),
                    m.label,
                    _times(ratio(subject.rows_per_s, m.rows_per_s)),
                    _times(ratio(_write_rate(subject), _write_rate(m))),
                    _times(ratio(subject.peak_rss_mb, m.peak_rss_mb)),
                    _times(ratio(subject.rise_mb, m.rise_mb)),
                ]
            )
    return rows


def summaries(measured: Sequence[Measurement]) -> list[str]:
    """One line per sink: the subject's whole run, its write and Dagster's fixed cost, and its
    speed against each baseline, named by kind (the ratio table names their code)."""
    lines = []
    for sink, group in _by_sink(measured).items():
        subject = _subject(group)
        if subject is None or not subject.ok:
            continue
        whole, write = [], []
        for m in group:
            if m is subject or not m.ok:
                continue
            name = m.kind + ("*" if m.capped else "")
            whole.append(f"{_times(ratio(subject.rows_per_s, m.rows_per_s))} {name}")
            write.append(f"{_times(ratio(_write_rate(subject), _write_rate(m)))} {name}")
        parts = f"whole run {number(subject.seconds, 2)} s"
        if subject.write_seconds is not None:
            parts += f", handle_output {number(subject.write_seconds, 2)} s"
        if subject.empty_run_seconds is not None:
            parts += f", Dagster's empty run {number(subject.empty_run_seconds, 2)} s"
        if whole:
            lines.append(
                f"{sink}: {subject.kind} ({parts}): whole run {', '.join(whole)};"
                f" write alone {', '.join(write)} in rows/s"
            )
    return lines


def memory_table(measured: Sequence[Measurement]) -> tuple[list[str], list[list[str]]]:
    """Peak RSS per approach with one column pair per row count, side by side."""
    sizes = sorted({m.rows for m in measured})
    headers = ["sink", "approach", "code"]
    for n in sizes:
        headers += [f"{n:,} rows: peak RSS MB (rise)", f"{n:,} rows: seconds"]
    cells: dict[tuple[str, str], dict[int, Measurement]] = {}
    labels: dict[tuple[str, str], str] = {}
    for m in measured:
        cells.setdefault((m.sink, m.kind), {})[m.rows] = m
        labels[(m.sink, m.kind)] = m.label
    rows = []
    for (sink, kind), by_rows in cells.items():
        row = [sink, kind, labels[(sink, kind)]]
        for n in sizes:
            m = by_rows.get(n)
            if m is None or not m.ok:
                row += ["FAILED" if m else "—", "—"]
                continue
            row += [f"{m.peak_rss_mb:,.0f} (+{m.rise_mb:,.0f})", f"{m.seconds:,.2f}"]
        rows.append(row)
    return headers, rows


def _aligns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Right for a column of numbers (a dash counts as one), left for the rest."""
    numeric = [bool(rows) and all(_is_numeric(r[i]) for r in rows) for i in range(len(headers))]
    return ["right" if n else "left" for n in numeric]


def _is_numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell == "—")


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table, numbers right-aligned."""
    aligns = _aligns(headers, rows)
    return tabulate(rows, headers, tablefmt="simple", colalign=aligns, disable_numparse=True)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown (pipe) table, numeric columns right-aligned."""

    def escaped(cells: Sequence[str]) -> list[str]:
        return [str(c).replace("|", "\\|") for c in cells]

    aligns = _aligns(headers, rows)
    body = [escaped(r) for r in rows]
    return tabulate(body, escaped(headers), tablefmt="pipe", colalign=aligns, disable_numparse=True)


CATALOGUE_HEADERS = ["sink", "approach", "runs in", "code", "rows measured"]


def _process(approach: Approach) -> str:
    """What the approach's process imports before its clock starts."""
    if approach.dagster:
        return "Dagster: " + ", ".join(approach.child_imports)
    return "plain: " + ", ".join(approach.child_imports)


def _rows(approach: Approach, naive_cap: int) -> str:
    caps = [c for c in (approach.cap, naive_cap if approach.per_row else None) if c]
    return f"at most {min(caps):,}" if caps else "all"


def catalogue(naive_cap: int) -> str:
    """Every approach of every sink, the code it runs and its process: `--list`'s table."""
    rows = []
    for name, sink in SINKS.items():
        named = [*sink.approaches.items(), *([("collect", sink.collect)] if sink.collect else [])]
        for kind, approach in named:
            rows.append(
                [name, kind, _process(approach), approach.label, _rows(approach, naive_cap)]
            )
    return markdown_table(CATALOGUE_HEADERS, rows)
