"""Dagster's own `dg` CLI, run as the README says: from the repository root, in .venv."""

import os
import subprocess
import sys
from pathlib import Path

from honey_duck import environments

BIN = Path(sys.executable).parent


def dg(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HONEY_DUCK_", "DAGSTER_"))},
        "VIRTUAL_ENV": str(BIN.parent),  # as after `source .venv/bin/activate`
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        environments.HOME_VAR: str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
    }
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(BIN / "dg"), *args],
        cwd=environments.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dg_checks_the_definitions_and_launches_a_destination_job(tmp_path: Path) -> None:
    checked = dg("check", "defs", home=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    launched = dg("launch", "--job", "csv_tables", home=tmp_path)
    output = launched.stdout + launched.stderr
    assert launched.returncode == 0, output[-3000:]
    assert (tmp_path / "output" / "csv" / "artworks_summary.csv").is_file()
    assert "BetaWarning" not in output and "SupersessionWarning" not in output
