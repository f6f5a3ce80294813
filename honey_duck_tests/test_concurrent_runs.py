"""Two `materialize` commands on one home at once: both succeed, and what landed is whole."""

import subprocess
import sys
from pathlib import Path

import duckdb

_MATERIALIZE = """
import sys
from honey_duck import cli, environments

env = environments.environment("local", home=sys.argv[1])
ok, _ = cli.materialize(env)
sys.exit(0 if ok else 1)
"""


def test_two_materializations_of_one_home_at_once_both_succeed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _MATERIALIZE, str(home)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    failed = [out[-3000:] for run, out in zip(runs, outputs, strict=True) if run.returncode]
    assert not failed, "\n----\n".join(failed)
    for sink in ("postgres", "redshift"):
        with duckdb.connect(str(home / f"{sink}_local.duckdb"), read_only=True) as connection:
            counts = connection.sql(f"SELECT count(*) FROM {sink}.sales_monthly").fetchone()
        assert counts is not None and counts[0] > 0
