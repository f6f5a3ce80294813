"""The headless command's closing lines tell the truth after a failure."""

import os
import socket
import time
from pathlib import Path

import dagster as dg
import pytest

from honey_duck import cli, definitions, environments, preflight, sinks


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


def test_a_failed_reconciliation_is_listed_with_its_reason_and_fails_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check that finds a difference does not stop the run, but the command says so and
    exits 1: here the feather target's type table is made to disagree with its reader."""
    import polars as pl

    from honey_duck.seam import Landing
    from honey_duck.targets.files.target import FileTarget

    def wrong(self: FileTarget, dtype: pl.DataType) -> Landing:
        return Landing(pl.Float32() if dtype == pl.Float64 else dtype)

    monkeypatch.setenv(environments.HOME_VAR, str(tmp_path / "home"))
    monkeypatch.setattr(FileTarget, "landing", wrong)
    assert cli.main(["materialize", "--group", "feather"]) == 1
    out = capsys.readouterr().out
    assert "checks that FAILED:" in out
    assert (
        "feather/sales_enriched:reconciles_with_source: `feather.sales_enriched` differs from"
        " the asset: column `sale_price_usd` reads back as Float64, where the type table says"
        " Float32"
    ) in out
    assert "FAILED 1" in out  # the summary's checks cell
    line = out.strip().splitlines()[-1]
    assert "; checks: 10 passed, 3 FAILED" in line, line


def test_a_clean_run_reports_every_asset_landed() -> None:
    landed = {dg.AssetKey(["json", "t"]): cli.Landed(group="json", rows=3, runs={"r"})}
    assert cli.outcome(landed, 2.5) == "1 assets materialized in 2.5s"


def _names(path: Path) -> dict[str, str]:
    """The variables an `.env` example sets (commented-out lines too), with their values."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.lstrip("# ")
        name, sep, value = line.partition("=")
        if sep and name.isupper() and " " not in name:
            pairs[name] = value
    return pairs


def test_prod_without_variables_is_one_sentence_naming_those_the_groups_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("HONEY_DUCK_"):
            monkeypatch.delenv(name)
    env = environments.environment("prod", home=tmp_path)
    with pytest.raises(ValueError) as raised:
        cli.materialize(env, ["json"])
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("the 'prod' environment needs variables that are not set:")
    for name in ("HONEY_DUCK_FILES_URL", "HONEY_DUCK_INPUT_URL", "HONEY_DUCK_STORAGE_URL"):
        assert name in message
    assert "POSTGRES" not in message and "REDSHIFT" not in message  # not the json group's
    assert "deploy/prod/.env.example" in message


def test_the_env_examples_name_every_variable_the_environments_read(tmp_path: Path) -> None:
    prod = definitions.build(environments.environment("prod", home=tmp_path))
    read = {n for r in (prod.resources or {}).values() for n in preflight.env_vars(r)}
    example = _names(environments.REPO_ROOT / "deploy" / "prod" / ".env.example")
    assert read <= set(example), f"deploy/prod/.env.example lacks {sorted(read - set(example))}"
    assert set(example) - read == {"HONEY_DUCK_ENV"}, "it lists variables nothing reads"
    dev = _names(environments.REPO_ROOT / "deploy" / "dev" / ".env.example")
    assert dev.pop("HONEY_DUCK_ENV") == "dev"
    assert dev == dict(sinks.dev_settings())  # every dev setting, with its default


def test_dev_with_a_server_down_fails_at_once_saying_how_to_start_it(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres:hunter2@127.0.0.1:{port}/postgres"
    env = environments.environment("dev", home=tmp_path, variables={sinks.postgres.URL.name: url})
    started = time.perf_counter()
    with pytest.raises(ValueError) as raised:
        cli.materialize(env, ["postgres"])
    assert time.perf_counter() - started < 30  # no minute of retries first
    message = str(raised.value)
    assert f"nothing listens on 127.0.0.1:{port} (HONEY_DUCK_POSTGRES_URL, for postgres)" in (
        message
    )
    assert "`python3 tasks.py services`" in message
    assert "hunter2" not in message


def test_an_unknown_environment_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HONEY_DUCK_ENV", "nosuch")
    assert cli.main(["materialize"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("honey-duck: unknown honey_duck environment 'nosuch'")
    assert "\n" not in err


def test_the_runs_are_recorded_where_the_ui_of_the_home_reads_them(local_run) -> None:
    from dagster._core.instance.ref import InstanceRef

    ref = InstanceRef.from_dir(str(local_run.env.home / "dagster_home"))
    with dg.DagsterInstance.from_ref(ref) as instance:
        for key in ("json/sales_enriched", "postgres/artworks_summary", "sales"):
            event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
            assert event is not None, f"{key} has no recorded materialization"
        monthly = dg.AssetKey.from_user_string("csv/sales_monthly")
        assert len(instance.get_materialized_partitions(monthly)) == 24
        assert len(instance.get_runs()) >= 4  # two materializations, each of several runs


def test_the_summary_names_duckdb_tables_and_counts_parquet_rows(local_run) -> None:
    landed = {k.to_user_string(): e for k, e in local_run.landed.items()}
    duck = landed["duckdb/sales_enriched"]
    assert duck.where == f"{local_run.env.home}/honey_duck.duckdb :: duckdb.sales_enriched"
    sales = local_run.storage("sales_enriched").height
    for table in ("sales_enriched", "sales_monthly"):
        assert landed[f"parquet/{table}"].rows == sales, table  # counted from the files
    assert landed["parquet/artworks_summary"].rows == local_run.storage("artworks_summary").height
