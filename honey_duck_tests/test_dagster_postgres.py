"""Dagster's instance on PostgreSQL: deploy/prod/dagster.yaml under a real `dagster` process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from honey_duck.environments import REPO_ROOT
from honey_duck_dev.services.lifecycle import HOST, free_port

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
def dagster_db(postgres_url: str) -> Iterator[Database]:
    """A fresh database for Dagster's tables on the test server, dropped afterwards."""
    params = conninfo_to_dict(postgres_url)
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
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
        with psycopg.connect(postgres_url, autocommit=True) as conn:
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
