"""The headless command's closing lines tell the truth after a failure."""

from pathlib import Path

import dagster as dg
import pytest

from honey_duck import cli, environments


def test_a_failed_run_names_what_failed_and_what_never_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "no_inputs"
    empty.mkdir()
    env = environments.environment("local", home=tmp_path / "home", input_dir=empty)
    ok, landed = cli.materialize(env, ["json"])
    assert not ok
    sources = {"artists", "artworks", "sales"}
    statuses = {k.to_user_string(): e.status for k, e in landed.items()}
    assert {statuses[s] for s in sources} == {"FAILED"}
    assert statuses["json/sales_enriched"] == "skipped"
    assert statuses["json/sales_monthly"] == "not run"  # its range run never started
    assert not any(e.runs for e in landed.values())

    line = cli.outcome(landed, 1.0)
    assert line.startswith("0 assets materialized in 1.0s; FAILED: artists, artworks, sales;")
    assert f"{len(landed) - 3} more not materialized because of it" in line
    table = cli.summary(landed)
    assert "json/sales_enriched" in table and "skipped" in table
    assert "run 1 failed" in capsys.readouterr().err


def test_a_clean_run_reports_every_asset_landed() -> None:
    landed = {dg.AssetKey(["json", "t"]): cli.Landed(group="json", rows=3, runs={"r"})}
    assert cli.outcome(landed, 2.5) == "1 assets materialized in 2.5s"
