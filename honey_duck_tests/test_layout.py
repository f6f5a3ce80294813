"""The words agree, and README's "Adding a destination" holds.

Every destination is named by one word: its sink module, its sink test, its benchmark entry,
the harness servers its `dev` environment needs, their compose services, its concurrency pool
and its `dev` variables. The first test checks that every registry names the same words; the
second adds a throwaway destination to a copy of the repository, in exactly the files the
README lists, and checks that the code location, its reconciliation check, the docs and these
tests take it from there without a change to any shared Python file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from honey_duck import sinks
from honey_duck.environments import REPO_ROOT
from honey_duck.sinks import SINKS
from honey_duck_dev.services import registry
from honey_duck_tests import servers
from honey_duck_tests.servers import unavailable

DAGSTER_SERVICES = {"dagster-code", "dagster-webserver", "dagster-daemon"}  # compose, not sinks
APPROACHES = "honey_duck_dev.benchmarks.approaches"


def benchmark_words() -> set[str]:
    """The sinks the benchmarks measure: one module `approaches/<word>.py` each."""
    approaches = importlib.import_module(APPROACHES)
    names = {i.name for i in pkgutil.iter_modules(approaches.__path__)}
    return {name for name in names if not name.startswith("_")}


def compose_services() -> set[str]:
    return set(yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"])


def listed_pools() -> set[str]:
    """The pools the `# pools:` line of deploy/prod/dagster.yaml names."""
    text = (REPO_ROOT / "deploy" / "prod" / "dagster.yaml").read_text()
    (line,) = re.findall(r"^# pools: (.*)$", text, flags=re.MULTILINE)
    return {word.strip() for word in line.split(",")}


def env_example(path: Path) -> dict[str, str]:
    """The variables an `.env` example sets, commented-out lines too, with their values."""
    found = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.lstrip("# ").partition("=")
        if sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            found[name] = value
    return found


def test_the_words_agree() -> None:
    words = set(SINKS)
    tests = {p.stem.removeprefix("test_") for p in (REPO_ROOT / "honey_duck_tests" / "sinks").glob(
        "test_*.py"
    )}  # fmt: skip
    assert tests == words, f"sink tests without a sink or sinks without one: {tests ^ words}"

    measured = benchmark_words()
    assert measured == words, f"benchmark entries in {APPROACHES} and sinks: {measured ^ words}"

    served = set(registry.SERVICES)
    needed = {service for sink in SINKS.values() for service in sink.dev_services}
    assert needed <= served, f"DEV_SERVICES names no harness server: {sorted(needed - served)}"
    assert served <= needed, f"harness servers no sink needs in dev: {sorted(served - needed)}"
    assert {f"{word}_server" for word in served} <= set(vars(servers))
    assert compose_services() - DAGSTER_SERVICES == served, (
        "compose's servers are not the harness's"
    )

    pools = {sink.pool for sink in SINKS.values()} - {None}
    assert pools, "no sink uses a pool: the pool checks below would prove nothing"
    assert all(SINKS[pool].pool == pool for pool in pools), "a pool is named by its sink's word"
    assert listed_pools() == pools, "deploy/prod/dagster.yaml's `# pools:` line"

    dev = env_example(REPO_ROOT / "deploy" / "dev" / ".env.example")
    assert dev.pop("HONEY_DUCK_ENV") == "dev"
    assert dev == sinks.dev_settings(), "deploy/dev/.env.example is not every dev default"


# ---------------------------------------------------------------------------------------------
# The proof of "Adding a destination"
# ---------------------------------------------------------------------------------------------

WORD = "scratchpad"
# A second CSV destination on the file family: its own word, group, folder and IO manager.
SINK_MODULE = '''"""Scratchpad: CSV files of its own, beside the csv sink's (a test's throwaway)."""

from honey_duck.sinks._files import DEV_SERVICES, SETTINGS, file_environments
from honey_duck.sinks._group import sink_assets

TESTED_AGAINST = "local disk; read back with DuckDB's `read_csv`"

assets = sink_assets("scratchpad", kinds={"csv", "polars"})
local, dev, prod = file_environments("scratchpad", fmt="csv")

__all__ = ["DEV_SERVICES", "SETTINGS", "TESTED_AGAINST", "assets", "dev", "local", "prod"]
'''
SINK_TEST = '''"""The scratchpad group as the main command lands it, read back with DuckDB."""

from pathlib import Path

import duckdb
import polars as pl

from honey_duck_tests.sinks.readback import assert_files_land, assert_reconciled


def read(path: Path) -> pl.DataFrame:
    return duckdb.sql(f"select * from read_csv('{path}')").pl()


def test_scratchpad_tables_and_partitions_equal_the_pipeline(local_run) -> None:
    assert_files_land(local_run, "scratchpad", "csv", read)
    assert_reconciled(local_run, "scratchpad")
'''
# Its benchmark entry: measured as the csv sink is.
BENCHMARK_MODULE = '''"""Scratchpad: measured as the csv sink is."""

from honey_duck_dev.benchmarks.approaches import csv

SINKS = {"scratchpad": csv.SINKS["csv"]}
'''
# Runs in the copy: the new group, its IO manager and checks, then it lands with its checks.
LAND = """
import json, sys
from pathlib import Path

import honey_duck
from honey_duck import cli, environments
from honey_duck.definitions import build

assert Path(honey_duck.__file__).is_relative_to(Path.cwd()), honey_duck.__file__
env = environments.environment("local", home=sys.argv[1])
defs = build(env)
graph = defs.resolve_asset_graph()
ok, landed = cli.materialize(env, [sys.argv[2]])
print(json.dumps({
    "ok": ok,
    "group": sorted(k.to_user_string() for k in graph.get_all_asset_keys()
                    if graph.get(k).group_name == sys.argv[2]),
    "manager": type(defs.resources[sys.argv[2] + "_io_manager"]).__name__,
    "checks": sorted(c.asset_key.to_user_string() + ":" + c.name for c in graph.asset_check_keys
                     if c.asset_key.path[0] == sys.argv[2]),
    "landed": {k.to_user_string(): [e.rows, e.checks_passed, len(e.checks_failed)]
               for k, e in landed.items() if k.path[0] == sys.argv[2]},
}))
"""
# The tests that must take a new destination without being told about it.
CHECKS_IN_COPY = [
    "honey_duck_tests/test_layout.py::test_the_words_agree",
    "honey_duck_tests/test_docs.py::test_readme_tables_are_what_the_code_declares",
    "honey_duck_tests/test_definitions.py::test_every_environment_has_the_same_assets_and_groups",
    "honey_duck_tests/test_definitions.py::test_every_sink_has_its_io_manager_under_its_own_word",
    "honey_duck_tests/test_definitions.py::"
    "test_every_destination_has_a_test_file_that_reads_back_what_landed",
]


def readme_files() -> dict[str, str]:
    """README's "Adding a destination" list: each path (with `<word>`) and when it is needed."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Adding a destination\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in block.splitlines())


def tracked_files() -> list[str]:
    """The repository's files as git knows them (new ones too), not .venv or what runs wrote."""
    git = shutil.which("git")
    if git is None:
        unavailable("git is not installed: the repository cannot be listed")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode()  # fmt: skip
    return [path for path in listed.split("\0") if path and (REPO_ROOT / path).is_file()]


def digests(root: Path, paths: list[str]) -> dict[str, str]:
    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in paths}


def run_in(copy: Path, *command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HONEY_DUCK_", "DAGSTER_"))}
    env["PYTHONPATH"] = str(copy)  # the copy's packages, not the editable install's
    return subprocess.run(
        [sys.executable, *command], cwd=copy, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_a_new_destination_is_new_files_and_no_shared_python_edit(tmp_path: Path) -> None:
    listed = readme_files()
    always = {path for path, when in listed.items() if when.startswith("always")}
    bench_module = f"{APPROACHES.replace('.', '/')}/<word>.py"
    assert {"honey_duck/sinks/<word>.py", "honey_duck_tests/sinks/test_<word>.py", bench_module,
            "README.md"} == always, always  # fmt: skip

    paths = tracked_files()
    copy = tmp_path / "repo"
    for path in paths:
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, copy / path)
    before = digests(copy, paths)

    (copy / f"honey_duck/sinks/{WORD}.py").write_text(SINK_MODULE)
    (copy / f"honey_duck_tests/sinks/test_{WORD}.py").write_text(SINK_TEST)
    approaches = copy / APPROACHES.replace(".", "/")
    (approaches / f"{WORD}.py").write_text(BENCHMARK_MODULE)
    docs = run_in(copy, "-m", "honey_duck_dev.docs", timeout=120)
    assert docs.returncode == 0, docs.stdout + docs.stderr

    landed = run_in(copy, "-c", LAND, str(tmp_path / "home"), WORD, timeout=300)
    assert landed.returncode == 0, landed.stderr[-3000:]
    found = json.loads(landed.stdout.splitlines()[-1])
    tables = [f"{WORD}/{t}" for t in ("artworks_summary", "sales_enriched", "sales_monthly")]
    assert found["ok"] and found["group"] == tables and found["manager"] == "FileIOManager"
    assert found["checks"] == [f"{t}:reconciles_with_source" for t in tables]
    for table, (rows, passed, failed) in found["landed"].items():
        assert rows and passed >= 1 and not failed, (table, found["landed"][table])
    assert (tmp_path / "home" / "output" / WORD / "sales_enriched.csv").is_file()

    checked = run_in(copy, "-m", "pytest", "-q", *CHECKS_IN_COPY, timeout=300)
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert "skipped" not in checked.stdout.splitlines()[-1], checked.stdout[-2000:]

    changed = {p for p, digest in digests(copy, paths).items() if before[p] != digest}
    python = {p for p in changed if p.endswith(".py")}
    assert not python, f"a new destination had to change {sorted(python)}"
    assert changed - python == {"README.md"}, "only `python3 tasks.py docs` changes README.md"
    added = {str(p.relative_to(copy)) for p in copy.rglob("*.py")} - set(paths)
    added = {p for p in added if "__pycache__" not in p}
    wanted = {p.replace("<word>", WORD) for p in always if p.endswith(".py")}
    assert added == wanted, added
