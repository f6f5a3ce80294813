"""The benchmark runner at a tiny size: every approach runs and lands every row (no timings).

The runs use `--shared-workers`: two long-lived workers import Dagster and warm up once, instead
of a fresh process per measurement (seconds apiece); every approach's code still runs end to end.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from honey_duck_dev.benchmarks.__main__ import main, parser, row_count
from honey_duck_dev.benchmarks.approaches import SINKS, Approach, naive_csv
from honey_duck_dev.benchmarks.report import CHECK_HEADERS, THROUGHPUT_HEADERS
from honey_duck_dev.benchmarks.runner import Workers, effective_cap
from honey_duck_tests.servers import unavailable

ROWS, NAIVE_CAP = 1_000, 300
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


def _table(markdown: str, first_header: str) -> list[list[str]]:
    """The cells of the Markdown table whose header row starts with `first_header`."""
    lines = markdown.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"| {first_header} |")))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
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
        rows = NAIVE_CAP if m["kind"] == "naive" else ROWS
        assert m["error"] is None, (m["sink"], m["kind"], m["error"])
        assert (m["rows"], m["rows_read_back"], m["capped"]) == (rows, rows, rows < ROWS)
        assert m["peak_rss_mb"] > 0 and m["seconds"] is not None
        if SINKS[m["sink"]].server is None:  # a server sink's rows are on the server
            assert m["out_bytes"] > 0
        else:
            assert m["out_bytes"] is None
    assert data["machine"]["cores"] and data["versions"]["dagster"]
    assert data["inputs"][0]["rows"] == ROWS and data["shared_workers"]

    table = _table(out.read_text(), "sink")
    assert table[0] == THROUGHPUT_HEADERS
    assert {(r[0], r[1]) for r in table[1:]} == expected
    assert all(len(r) == len(THROUGHPUT_HEADERS) and all(r) for r in table[1:])
    assert not list((work / "runs").iterdir()), "outputs are removed after each run"


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
    table = _table(out.read_text(), "sink")
    assert [r[1] for r in table[1:]] == ["ours", "collect"]
    assert all(len(r) == 3 + 2 * 2 and all(r) for r in table[1:])


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
    naive = Approach("per row", naive_csv)
    assert effective_cap("naive", naive, 200_000) == 200_000
    assert effective_cap("naive", Approach("per row", naive_csv, cap=10_000), 200_000) == 10_000
    assert effective_cap("floor", naive, 200_000) is None


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
    table = _table(out.read_text(), "target")
    assert table[0] == CHECK_HEADERS
    assert [r[0] for r in table[1:]] == ["csv", "parquet"]
    ratio = table[0].index("check ÷ write")
    assert all(float(r[ratio]) > 0 for r in table[1:])
    assert "check ÷ write: " in out.read_text()
