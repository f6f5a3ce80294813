"""The benchmark runner at a tiny size: every approach runs and lands every row (no timings).

The runs use `--shared-workers`: two long-lived workers import Dagster and warm up once, instead
of a fresh process per measurement (seconds apiece); every approach's code still runs end to end.
"""

import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from honey_duck import sinks as honey_duck_sinks
from honey_duck_dev.benchmarks import approaches, inputs
from honey_duck_dev.benchmarks.__main__ import NAIVE_CAP as DEFAULT_NAIVE_CAP
from honey_duck_dev.benchmarks.__main__ import main, parser, row_count
from honey_duck_dev.benchmarks.approaches import CHECKS, SINKS, Approach
from honey_duck_dev.benchmarks.approaches.csv import naive as naive_csv
from honey_duck_dev.benchmarks.checks import CHECK_HEADERS
from honey_duck_dev.benchmarks.children import Workers
from honey_duck_dev.benchmarks.runner import effective_cap
from honey_duck_dev.benchmarks.tables import RATIO_HEADERS, THROUGHPUT_HEADERS, catalogue
from honey_duck_tests.servers import unavailable

ROWS, NAIVE_CAP = 1_000, 300
BENCHMARKS_MD = Path(__file__).resolve().parents[2] / "BENCHMARKS.md"
SMOKE = ["--jobs", "2", "--shared-workers"]


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    """Two shared workers for the module's runs: they import and warm up once, not per run."""
    pool = Workers(2)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work folder for the module's runs, so an input of the same size is generated once."""
    return tmp_path_factory.mktemp("bench-work")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def _table(markdown: str, headers: list[str]) -> list[list[str]]:
    """The cells of the Markdown table whose header row is `headers`, headers first."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if _cells(line) == headers)
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return [rows[0], *rows[2:]]  # without the alignment rule


def test_every_approach_of_every_sink_runs_and_lands_every_row(
    tmp_path: Path, work: Path, workers: Workers
) -> None:
    for sink in SINKS.values():  # a server-backed sink needs its server (started by the runner)
        if reason := sink.unavailable():
            unavailable(reason)
    out = tmp_path / "results.md"
    argv = ["--rows", str(ROWS), "--naive-cap", str(NAIVE_CAP), *SMOKE]
    assert main([*argv, "--work", str(work), "--out", str(out)], workers) == 0

    data = json.loads(out.with_suffix(".json").read_text())
    expected = {(name, kind) for name, sink in SINKS.items() for kind in sink.approaches}
    assert {(m["sink"], m["kind"]) for m in data["throughput"]} == expected
    for m in data["throughput"]:
        approach = SINKS[m["sink"]].approaches[m["kind"]]
        rows = min(NAIVE_CAP, approach.cap or NAIVE_CAP) if approach.per_row else ROWS
        assert m["error"] is None, (m["sink"], m["kind"], m["error"])
        assert (m["rows"], m["rows_read_back"], m["capped"]) == (rows, rows, rows < ROWS)
        assert m["peak_rss_mb"] > 0 and m["start_rss_mb"] > 0 and m["seconds"] is not None
        assert m["label"] == approach.label and m["dagster"] == approach.dagster
        if approach.dagster:  # the run apart from the manager's own write and Dagster's cost
            assert 0 < m["write_seconds"] < m["seconds"], m
            assert m["empty_run_seconds"] > 0, m
        else:
            assert m["write_seconds"] is None and m["empty_run_seconds"] is None, m
        if not SINKS[m["sink"]].servers:  # a server sink's rows are on the server
            assert m["out_bytes"] > 0
        else:
            assert m["out_bytes"] is None
    assert data["machine"]["cores"] and data["versions"]["dagster"]
    assert data["inputs"][0]["rows"] == ROWS and data["shared_workers"]
    idle = data["idle"]
    assert 0 < idle["plain_peak_rss_mb"] < idle["dagster_peak_rss_mb"]

    markdown = out.read_text()
    table = _table(markdown, THROUGHPUT_HEADERS)
    assert {(r[0], r[1]) for r in table[1:]} == expected
    assert all(len(r) == len(THROUGHPUT_HEADERS) and all(r) for r in table[1:])
    # the ratio table names every baseline of a sink by its code, against ours (or official)
    ratios = _table(markdown, RATIO_HEADERS)
    labels = {(m["sink"], m["kind"]): m["label"] for m in data["throughput"]}
    subjects = {sink: "ours" if (sink, "ours") in labels else "official" for sink, _ in labels}
    baselines = {(s, k) for s, k in labels if k != subjects[s]}
    assert {(r[0], r[2].rstrip("*")) for r in ratios[1:]} == baselines
    for row in ratios[1:]:
        assert row[1] == subjects[row[0]] and row[3] == labels[(row[0], row[2].rstrip("*"))]
        # in shared workers a rise can be 0 (a worker's high-water mark is behind it): no ratio
        assert all(cell.endswith("x") for cell in row[4:7]) and row[7], row
    assert not list((work / "runs").iterdir()), "outputs are removed after each run"


@pytest.mark.parametrize(("sink", "kind"), [("csv", "floor"), ("json", "naive")])
def test_a_plain_approach_runs_in_a_process_without_dagster(
    tmp_path: Path, work: Path, sink: str, kind: str
) -> None:
    source = inputs.prepare(work / "cache", ROWS, log=lambda line: None)
    result, out = tmp_path / "result.json", tmp_path / "out"
    command = [sys.executable, "-m", "honey_duck_dev.benchmarks.one", "--sink", sink]
    command += ["--approach", kind, str(source.path), str(out), str(result)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    measured = json.loads(result.read_text())
    assert measured.get("error") is None and measured["rows_read_back"] == ROWS
    assert measured["dagster_loaded"] is False
    assert measured["imported_while_timed"] == [], "its imports are declared, so not timed"
    assert "warmup_seconds" not in measured and measured["start_rss_mb"] > 0


def test_every_module_is_a_sink_word_and_names_its_entries_after_it() -> None:
    words = [i.name for i in pkgutil.iter_modules(approaches.__path__) if i.name[0] != "_"]
    assert set(words) <= set(honey_duck_sinks.SINKS), "a module's name is its sink's word"
    for name in [*SINKS, *CHECKS]:
        assert any(name == w or name.startswith(f"{w}_") for w in words), name
    assert {"csv_monthly", "json_monthly", "parquet_monthly"} <= set(SINKS)
    assert all(CHECKS[name].sink in SINKS for name in CHECKS)


def test_memory_mode_reports_each_size_side_by_side(
    tmp_path: Path, work: Path, workers: Workers
) -> None:
    out = tmp_path / "memory.md"
    # Two tiny sizes stand in for 1M and 10M: the same code path, side by side.
    argv = ["--memory", "--rows", "500,1k", "--memory-sinks", "csv", *SMOKE]
    argv += ["--approaches", "ours,collect"]  # the floor is the throughput test's
    assert main([*argv, "--work", str(work), "--out", str(out)], workers) == 0

    data = json.loads(out.with_suffix(".json").read_text())
    runs = {(m["kind"], m["rows"]): m for m in data["memory"]}
    assert set(runs) == {(k, n) for k in ("ours", "collect") for n in (500, 1000)}
    assert all(m["rows_read_back"] == m["rows"] for m in runs.values())
    table = _table(out.read_text(), ["sink", "approach", "code", *_memory_columns(500, 1000)])
    assert [r[1] for r in table[1:]] == ["ours", "collect"]
    assert all(len(r) == 3 + 2 * 2 and all(r) for r in table[1:])


def _memory_columns(*sizes: int) -> list[str]:
    return [f"{n:,} rows: {what}" for n in sizes for what in ("peak RSS MB (rise)", "seconds")]


def test_help_documents_every_option() -> None:
    help_text = parser().format_help()
    for action in parser()._actions:
        assert action.help, action.option_strings
        assert all(option in help_text for option in action.option_strings)
    assert "monthly stands for csv_monthly,json_monthly,parquet_monthly" in " ".join(
        help_text.split()
    )


def test_a_sink_group_stands_for_its_sinks() -> None:
    args = parser().parse_args(["--sinks", "monthly,csv", "--approaches", "floor,psql"])
    assert args.sinks == ["csv_monthly", "json_monthly", "parquet_monthly", "csv"]
    assert args.approaches == ["floor", "psql"]
    with pytest.raises(SystemExit):
        parser().parse_args(["--sinks", "nosuch"])


def test_row_counts_and_caps() -> None:
    assert [row_count(t) for t in ("2000", "2_000", "200k", "10M")] == [
        2_000,
        2_000,
        200_000,
        10_000_000,
    ]
    per_row = Approach("per row", naive_csv, per_row=True)
    assert effective_cap(per_row, 200_000) == 200_000
    capped = Approach("per row", naive_csv, cap=10_000, per_row=True)
    assert effective_cap(capped, 200_000) == 10_000
    assert effective_cap(Approach("whole", naive_csv), 200_000) is None
    assert effective_cap(Approach("whole", naive_csv, cap=5_000), 200_000) == 5_000


def test_checks_mode_reports_check_over_write_per_target(
    tmp_path: Path, work: Path, workers: Workers
) -> None:
    out = tmp_path / "checks.md"
    argv = ["--checks", "--rows", "2k", "--check-sinks", "csv,parquet", *SMOKE]
    assert main([*argv, "--work", str(work), "--out", str(out)], workers) == 0

    data = json.loads(out.with_suffix(".json").read_text())
    found = {m["name"]: m for m in data["checks"]}
    assert set(found) == {"csv", "parquet"}
    for m in found.values():
        assert m["error"] is None and m["passed"], m
        assert m["rows_written"] == m["rows_checked"] == 2_000
        assert m["check_over_write"] == m["check"]["seconds"] / m["write"]["seconds"]
        assert m["check"]["anon_rise_mb"] is not None and m["write"]["peak_rss_mb"] > 0
    table = _table(out.read_text(), CHECK_HEADERS)
    assert [r[0] for r in table[1:]] == ["csv", "parquet"]
    ratio = table[0].index("check ÷ write")
    assert all(float(r[ratio]) > 0 for r in table[1:])
    assert "check ÷ write: " in out.read_text()


def test_benchmarks_md_lists_every_approach_with_the_code_it_runs() -> None:
    listed = catalogue(DEFAULT_NAIVE_CAP)
    assert listed.count("\n") == 1 + sum(
        len(sink.approaches) + (sink.collect is not None) for sink in SINKS.values()
    )
    assert listed in BENCHMARKS_MD.read_text(), (
        "BENCHMARKS.md's table of approaches differs from the code: paste the output of"
        " `python3 tasks.py bench --list` into it"
    )
    assert main(["--list"]) == 0
