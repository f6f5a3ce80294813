"""Shared fixtures: the whole `local` environment materialized into a temporary home, twice."""

import warnings
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from honey_duck import cli, environments
from honey_duck.environments import Environment

pytest_plugins = ["honey_duck_tests.servers"]


@dataclass(frozen=True)
class LocalRun:
    """The `local` environment after two full materializations, as the README's command runs."""

    env: Environment
    landed: dict[dg.AssetKey, cli.Landed]
    first: dict[str, bytes]  # every output file's bytes after the first run, by relative path

    def storage(self, table: str) -> pl.DataFrame:
        """A transform output as the pipeline stored it: what every sink should hold."""
        path = self.env.home / "storage" / table
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path.with_suffix(".parquet")]
        return pl.concat([pl.read_parquet(f) for f in files])


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    env = environments.environment("local", home=tmp_path_factory.mktemp("home"))
    ok, _ = cli.materialize(env)
    assert ok, "the first materialization of the local environment failed"
    first = _snapshot(env.home / "output")
    ok, landed = cli.materialize(env)
    assert ok, "the second materialization (replace must be idempotent) failed"
    return LocalRun(env, landed, first)
