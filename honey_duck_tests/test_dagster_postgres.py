"""Dagster's instance on PostgreSQL: deploy/prod/dagster.yaml under a real `dagster` process."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote
from urllib.request import urlopen

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from honey_duck.environments import REPO_ROOT
from honey_duck_dev.services.lifecycle import HOST, free_port, port_open

DAGSTER_YAML = REPO_ROOT / "deploy" / "prod" / "dagster.yaml"
# one process is enough to prove where the instance stores things, and three times faster
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})
# trust auth ignores it; the characters would break an unquoted URL
SENTINEL_PASSWORD = f"p@ss:w/rd%{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Database:
    """One PostgreSQL database and the login that reaches it."""

    host: str
    port: str
    user: str
    password: str
    name: str

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.name
        )


@pytest.fixture
def dagster_db(postgres_server: str) -> Iterator[Database]:
    """A fresh database for Dagster's tables on the test server, dropped afterwards."""
    params = conninfo_to_dict(postgres_server)
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield Database(
            host=str(params.get("host") or HOST),
            port=str(params.get("port") or 5432),
            user=str(params.get("user") or "postgres"),
            password=str(params.get("password") or SENTINEL_PASSWORD),
            name=name,
        )
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    return home


def materialize(home: Path, db: Database, timeout: float = 120) -> tuple[int, str]:
    """`dagster asset materialize --select artists` against the instance in `home`."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "HONEY_DUCK_ENV": "local",
        "HONEY_DUCK_HOME": str(home.parent / "honey_duck_home"),
        "DAGSTER_PG_HOST": db.host,
        "DAGSTER_PG_PORT": db.port,
        "DAGSTER_PG_USER": db.user,
        "DAGSTER_PG_PASSWORD": db.password,
        "DAGSTER_PG_DB": db.name,
    }
    command = [sys.executable, "-m", "dagster", "asset", "materialize"]
    command += ["-m", "honey_duck.definitions", "--select", "artists", "--config-json", IN_PROCESS]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output


def assert_secret_kept(password: str, *texts: str) -> None:
    for text in texts:
        assert password not in text and quote(password) not in text, "the password leaked"


def test_a_run_and_its_events_land_in_postgres(dagster_db: Database, tmp_path: Path) -> None:
    home = dagster_home(tmp_path)
    returncode, output = materialize(home, dagster_db)
    assert returncode == 0, output[-3000:]

    with dagster_db.connect() as conn:
        runs = conn.execute("select run_id, status from runs").fetchall()
        assert [status for _, status in runs] == ["SUCCESS"]
        run_id = runs[0][0]
        events = conn.execute(
            "select dagster_event_type, asset_key from event_logs"
            " where run_id = %s and dagster_event_type is not null",
            [run_id],
        ).fetchall()
        assert ("ASSET_MATERIALIZATION", '["artists"]') in events
        assert ("PIPELINE_SUCCESS", None) in events
        stored = conn.execute("select string_agg(event, '') from event_logs").fetchone()
        tables = {row[0] for row in conn.execute("select tablename from pg_tables")}
    assert {"runs", "event_logs", "jobs", "instigators", "job_ticks"} <= tables  # schedules too
    assert not list(home.rglob("*.db")), "part of the instance fell back to SQLite"
    files = [p.read_text(errors="replace") for p in home.rglob("*") if p.is_file()]
    assert_secret_kept(dagster_db.password, output, stored[0] if stored else "", *files)


def test_a_refused_connection_names_no_password(tmp_path: Path) -> None:
    nowhere = Database(HOST, str(free_port()), "postgres", SENTINEL_PASSWORD, "dagster")
    returncode, output = materialize(dagster_home(tmp_path), nowhere)
    assert returncode != 0
    assert "DB connection" in output, output[-3000:]
    assert_secret_kept(SENTINEL_PASSWORD, output)


def _start(command: list[str], env: dict[str, str], log: IO[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait_for(check, what: str, timeout: float, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in processes if p.poll() is not None]
        if dead:
            raise AssertionError(f"{dead[0].args[:3]} exited while waiting for {what}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not come up in {timeout:.0f} s")


def test_the_production_pieces_queue_and_run_a_job_launched_over_graphql(
    dagster_db: Database, tmp_path: Path
) -> None:
    """A gRPC code server for the location, the webserver and the daemon, all on the
    PostgreSQL instance of deploy/prod/dagster.yaml: a run submitted through the GraphQL API
    is queued, dequeued by the daemon's run coordinator, run, and recorded in PostgreSQL."""
    from dagster_graphql import DagsterGraphQLClient

    home = dagster_home(tmp_path)
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - grpc_server:\n"
        f"      host: {HOST}\n      port: {grpc_port}\n      location_name: honey_duck\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HONEY_DUCK_")},
        "DAGSTER_HOME": str(home),
        "HONEY_DUCK_ENV": "local",
        "HONEY_DUCK_HOME": str(tmp_path / "honey_duck_home"),
        "DAGSTER_PG_HOST": dagster_db.host,
        "DAGSTER_PG_PORT": dagster_db.port,
        "DAGSTER_PG_USER": dagster_db.user,
        "DAGSTER_PG_PASSWORD": dagster_db.password,
        "DAGSTER_PG_DB": dagster_db.name,
    }
    bin_dir = Path(sys.executable).parent
    commands = {
        "code server": [str(bin_dir / "dagster"), "api", "grpc", "-m", "honey_duck.definitions",
                        "-h", HOST, "-p", str(grpc_port)],
        "webserver": [str(bin_dir / "dagster-webserver"), "-w", str(workspace), "-h", HOST,
                      "-p", str(web_port)],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)],
    }  # fmt: skip
    logs = {name: (tmp_path / f"{name.replace(' ', '_')}.log").open("w") for name in commands}
    processes: list[subprocess.Popen] = []
    try:
        processes.append(_start(commands["code server"], env, logs["code server"]))
        _wait_for(lambda: port_open(grpc_port), "the code server", 120, processes)
        processes.append(_start(commands["webserver"], env, logs["webserver"]))
        processes.append(_start(commands["daemon"], env, logs["daemon"]))
        client = DagsterGraphQLClient(HOST, port_number=web_port, timeout=30)
        _wait_for(lambda: urlopen(f"http://{HOST}:{web_port}/server_info").status == 200,
                  "the webserver", 120, processes)  # fmt: skip
        ui = client._execute(UI_QUERY)  # what the UI's asset page shows, as the UI asks for it
        run_id = client.submit_job_execution(
            "csv_tables", repository_location_name="honey_duck",
            repository_name="__repository__",
        )  # fmt: skip
        _wait_for(
            lambda: client.get_run_status(run_id).value in ("SUCCESS", "FAILURE", "CANCELED"),
            "the run to finish", 240, processes,
        )  # fmt: skip
        status = client.get_run_status(run_id).value
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs.values():
            log.close()
    output = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
    assert status == "SUCCESS", output[-4000:]

    with dagster_db.connect() as conn:
        events = [
            row[0]
            for row in conn.execute(
                "select dagster_event_type from event_logs where run_id = %s"
                " and dagster_event_type is not null order by id",
                [run_id],
            ).fetchall()
        ]
        stored = conn.execute("select status from runs where run_id = %s", [run_id]).fetchone()
    assert stored == ("SUCCESS",)
    # queued by the webserver, taken off the queue by the daemon, then run
    assert events.index("PIPELINE_ENQUEUED") < events.index("PIPELINE_STARTING")
    assert events.index("PIPELINE_STARTING") < events.index("PIPELINE_START")
    daemon = (tmp_path / "daemon.log").read_text(errors="replace")
    assert re.search(r"QueuedRunCoordinatorDaemon - \S*INFO\S* - Launched 1 runs", daemon), daemon[
        -3000:
    ]
    assert "ASSET_MATERIALIZATION" in events
    assert (tmp_path / "honey_duck_home" / "output" / "csv" / "artworks_summary.csv").is_file()
    assert_secret_kept(dagster_db.password, output)

    # the asset page tells the truth of this (local) environment
    (node,) = ui["assetNodes"]
    assert set(node["kinds"]) == {"duckdb", "polars"}  # a stand-in, not a Postgres badge
    assert "postgres_local.duckdb" in node["description"]
    entries = {e["label"]: e for e in node["metadataEntries"]}
    assert entries["dagster/table_name"]["text"] == "postgres.sales_enriched"
    assert entries["dagster/uri"]["text"].startswith("duckdb://")
    columns = entries["dagster/column_schema"]["schema"]["columns"]
    assert columns and all(c["description"] for c in columns)  # the column meanings


UI_QUERY = """
query {
  assetNodes(assetKeys: [{path: ["postgres", "sales_enriched"]}]) {
    kinds
    description
    metadataEntries {
      label
      ... on TextMetadataEntry { text }
      ... on TableSchemaMetadataEntry { schema { columns { name description } } }
    }
  }
}
"""


def test_the_server_backed_destinations_share_a_capped_pool_per_server(tmp_path: Path) -> None:
    import yaml

    from honey_duck import definitions, environments
    from honey_duck.sinks import SINKS

    config = yaml.safe_load(DAGSTER_YAML.read_text())
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"] == {"default_limit": 2, "granularity": "op"}
    defs = definitions.build(environments.environment("local", home=tmp_path))
    graph = defs.resolve_asset_graph()
    pools = {}
    for key in graph.get_all_asset_keys():
        (op,) = graph.get(key).assets_def.node_def.iterate_op_defs()
        pools[key.to_user_string()] = op.pool
    capped = {word: sink.pool for word, sink in SINKS.items() if sink.pool is not None}
    assert capped, "no sink declares a pool"
    for word, sink in SINKS.items():
        for table in ("sales_enriched", "artworks_summary", "sales_monthly"):
            assert pools[f"{word}/{table}"] == sink.pool, f"{word}/{table}"
    assert all(pool == word for word, pool in capped.items())  # a server's pool is its word
    assert SINKS["csv"].pool is None  # files need no cap
