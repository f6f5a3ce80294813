"""The file sink under crashes and concurrency: killed writers, writers racing, unfinished ranges,
leftovers on local disk and on a real S3 server (SeaweedFS), and upserts that keep columns."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from upath import UPath

from honey_duck.seam import SinkError
from honey_duck.seam.records import FolderRecords, RecordedSchema, SchemaRecord
from honey_duck.targets.files import FileIOManager
from honey_duck.targets.files import store as filestore
from honey_duck_tests.contract.runs import error_of, run
from honey_duck_tests.targets.files.writer import MONTHLY, frame

FORMATS = ["json", "csv", "excel", "feather", "parquet"]
EXT = {"json": "json", "csv": "csv", "excel": "xlsx", "feather": "feather", "parquet": "parquet"}


def writer(base: str, fmt: str, *args: str, s3=None) -> subprocess.Popen[bytes]:
    """Start a writer process (see honey_duck_tests/targets/files/writer.py)."""
    extra = ["--s3", f"{s3.endpoint_url},{s3.access_key},{s3.secret_key}"] if s3 else []
    command = [
        sys.executable,
        "-m",
        "honey_duck_tests.targets.files.writer",
        base,
        fmt,
        *args,
        *extra,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read(io: FileIOManager, partition_keys: list[str] | None = None) -> pl.DataFrame:
    """What `load_input` returns for `t/table` (all of the given partitions)."""
    if partition_keys is None:
        context = dg.build_input_context(
            asset_key=dg.AssetKey(["t", "table"]),
            dagster_type=dg.PythonObjectDagsterType(pl.DataFrame),
        )
    else:
        context = dg.build_input_context(
            asset_key=dg.AssetKey(["t", "table"]),
            dagster_type=dg.PythonObjectDagsterType(pl.DataFrame),
            asset_partitions_def=MONTHLY,
            asset_partition_key_range=dg.PartitionKeyRange(partition_keys[0], partition_keys[-1]),
        )
    return io.load_input(context)


def test_a_writer_killed_mid_write_leaves_staging_the_next_write_reclaims(tmp_path: Path) -> None:
    base = str(tmp_path / "out")
    folder = tmp_path / "out" / "t"
    victim = writer(base, "csv", "--rows", "30000000", "--label", "big")
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".tmp") for p in folder.glob(".table.csv.*")):
        assert victim.poll() is None, victim.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the writer never started staging"
        time.sleep(0.05)
    time.sleep(0.3)  # well into the staged file
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    leftovers = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert leftovers and any(f.stat().st_size for f in leftovers[0].iterdir())

    io = FileIOManager(format="csv", base_path=base)
    assert run(io, lambda: frame(10, "next", 1)).success
    assert sorted(p.name for p in folder.iterdir()) == ["table.csv", "table.csv.schema"]
    assert read(io)["v"].to_list() == [f"next{i}" for i in range(10)]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_concurrent_writers_of_one_file_take_turns(tmp_path: Path, fmt: str) -> None:
    """Two processes replace one file 8 times each; every write lands whole, pairs never tear."""
    base = str(tmp_path / "out")
    sizes = {"a": "300", "b": "4000"}  # different sizes: a torn pair shows at once
    writers = [
        writer(base, fmt, "--rows", rows, "--label", label, "--repeat", "8")
        for label, rows in sizes.items()
    ]
    for process in writers:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()
    landed = read(FileIOManager(format=fmt, base_path=base))
    label = landed["v"][0][0]
    assert_frame_equal(landed, frame(int(sizes[label]), label, 1).collect())


@pytest.mark.parametrize("fmt", FORMATS)
def test_upsert_under_evolve_keeps_stored_values_of_columns_the_data_lacks(
    tmp_path: Path, fmt: str
) -> None:
    upsert = {"write_mode": "upsert", "upsert_keys": ["id"]}
    evolve = {**upsert, "schema_policy": "evolve"}
    first = pl.DataFrame({"id": [1, 2], "v": ["a", "b"], "note": ["keep", "me"]})
    second = pl.DataFrame({"id": [2, 3], "v": ["B", "c"]})
    for base in (str(tmp_path / "out"), f"memory://{tmp_path.name}/{fmt}"):
        io = FileIOManager(format=fmt, base_path=base)
        assert run(io, lambda: first, metadata=upsert).success
        result = run(io, lambda: second, metadata=evolve)
        assert result.success, error_of(result)
        back = read(io).sort("id")
        assert back.rows() == [(1, "a", "keep"), (2, "B", "me"), (3, "c", None)], base


def _range_killed_mid_publish(base: str, fmt: str, s3=None) -> FileIOManager:
    """Write Jan..Apr, then kill a second range write after its 3rd published file."""
    assert writer(base, fmt, "--months", "4", "--label", "old", s3=s3).wait() == 0
    # each partition publishes its data file, then its sidecar: 3 = Jan whole, Feb's data
    victim = writer(base, fmt, "--months", "4", "--label", "new", "--die-after-publishes", "3",
                    s3=s3)  # fmt: skip
    assert victim.wait() == -signal.SIGKILL
    s3_config = None
    if s3 is not None:
        s3_config = s3.config()
    return FileIOManager(format=fmt, base_path=base, s3=s3_config)


MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]


def _check_refused_then_repaired(io: FileIOManager, base: str, fmt: str, s3=None) -> None:
    with pytest.raises(SinkError) as raised:
        read(io, MONTHS)
    assert "has not finished" in str(raised.value) and "materialize those partitions" in str(
        raised.value
    )
    assert writer(base, fmt, "--months", "4", "--label", "again", s3=s3).wait() == 0
    back = read(io, MONTHS)
    assert set(back["v"].str.head(5)) == {"again"}
    assert back.height == 1000


def test_a_range_killed_mid_publish_on_local_disk_is_refused_on_read(tmp_path: Path) -> None:
    base = str(tmp_path / "out")
    io = _range_killed_mid_publish(base, "csv")
    _check_refused_then_repaired(io, base, "csv")
    assert not list((tmp_path / "out" / "t" / "table").glob(".publishing.*"))


def test_a_range_killed_mid_publish_on_s3_is_refused_on_read(s3_server) -> None:
    bucket = s3_server.create_bucket("range")
    base = f"s3://{bucket}/out"
    io = _range_killed_mid_publish(base, "json", s3=s3_server)
    _check_refused_then_repaired(io, base, "json", s3=s3_server)
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if "/.publishing." in k]


def test_leftovers_of_dead_writers_on_s3_are_reclaimed(s3_server, tmp_path: Path) -> None:
    """An incomplete multipart upload and a local staging copy of a killed S3 write."""
    bucket = s3_server.create_bucket("leftovers")
    client = s3_server.client()
    upload = client.create_multipart_upload(Bucket=bucket, Key="out/t/table.csv")
    client.upload_part(
        Bucket=bucket, Key="out/t/table.csv", UploadId=upload["UploadId"], PartNumber=1,
        Body=b"x" * 1024,
    )  # fmt: skip
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a PID that no longer runs
    filestore.SCRATCH.mkdir(parents=True, exist_ok=True)
    stale = filestore.SCRATCH / f"stage.{filestore.HOST}.{dead.pid}.0badc0de.tmp"
    stale.mkdir(exist_ok=True)
    (stale / "table.csv").write_bytes(b"y" * 4096)
    alive = filestore.SCRATCH / f"stage.{filestore.HOST}.{os.getpid()}.0000beef.tmp"
    alive.mkdir(exist_ok=True)

    config = s3_server.config()
    io = FileIOManager(
        format="csv", base_path=f"s3://{bucket}/out", s3=config, stale_after_hours=0.0
    )
    try:
        assert run(io, lambda: frame(5, "x", 1)).success
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads") or []
        assert not uploads
        assert not stale.exists()
        assert alive.exists()  # a live writer's staging is never touched
    finally:
        alive.rmdir()
    assert read(io)["v"].to_list() == [f"x{i}" for i in range(5)]


def test_schema_records_round_trip_in_any_folder(tmp_path: Path) -> None:
    schema = pl.Schema(
        {"id": pl.Int8, "at": pl.Datetime("ns", "Asia/Kolkata"), "x": pl.Decimal(9, 3)}
    )
    for folder in (UPath(tmp_path / "records"), UPath(f"memory://{tmp_path.name}/records")):
        records = FolderRecords(folder)
        assert records.load("orders/2024") is None
        records.save("orders/2024", SchemaRecord(schema, ("id",)))
        back = records.load("orders/2024")
        assert back is not None and back.schema == schema and back.keys == ("id",)
        assert back.written  # stamped on save
    assert [p.name for p in (tmp_path / "records").iterdir()] == ["orders%2F2024.schema.json"]


def test_a_session_serves_its_stored_schema_from_its_records(tmp_path: Path) -> None:
    """RecordedSchema: the stored_schema of a target without a catalog, written once."""

    class Session(RecordedSchema):
        records = FolderRecords(UPath(tmp_path / "records"))

        def record_name(self, location: str) -> str:
            return f"topic/{location}"

    session = Session()
    assert session.stored_schema("sales") is None  # nothing written: no schema to compare
    session.save_schema("sales", {"id": pl.UInt16, "v": pl.List(pl.String)}, ("id",))
    assert session.stored_schema("sales") == pl.Schema({"id": pl.UInt16, "v": pl.List(pl.String)})
    assert session.records.load("topic/sales").keys == ("id",)  # type: ignore[union-attr]


@pytest.mark.parametrize("fmt", ["parquet", "feather", "csv"])
def test_s3_reads_stream_parquet_and_feather_and_copy_the_text_formats(s3_server, fmt: str) -> None:
    """Parquet and Feather are read on S3 in ranges by polars (no local copy); CSV and JSON
    are copied to disk first, because polars' remote readers would hold them in memory."""
    bucket = s3_server.create_bucket("reads")
    config = s3_server.config()
    io = FileIOManager(format=fmt, base_path=f"s3://{bucket}/out", s3=config)
    data = frame(20_000, "r", 1).collect()
    assert run(io, lambda: data).success
    filestore.SCRATCH.mkdir(parents=True, exist_ok=True)
    before = set(filestore.SCRATCH.iterdir())
    lazy = io.load_input(
        dg.build_input_context(
            asset_key=dg.AssetKey(["t", "table"]),
            dagster_type=dg.PythonObjectDagsterType(pl.LazyFrame),
        )
    )
    assert isinstance(lazy, pl.LazyFrame)
    copies = set(filestore.SCRATCH.iterdir()) - before
    assert bool(copies) == (fmt == "csv"), copies
    assert_frame_equal(lazy.collect(), data)


def test_a_long_lived_process_removes_its_own_old_scratch_copies(tmp_path: Path) -> None:
    """A code server reads remote CSVs for days: its copies older than stale_after go too."""
    filestore.SCRATCH.mkdir(parents=True, exist_ok=True)
    own = f"copy.{filestore.HOST}.{os.getpid()}"
    old = filestore.SCRATCH / f"{own}.0ld0ld00.csv"
    fresh = filestore.SCRATCH / f"{own}.fe5h0000.csv"
    for path in (old, fresh):
        path.write_text("id\n1\n")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    remote = UPath(f"memory://{tmp_path.name}/remote.csv")
    remote.write_text("id\n2\n")
    copy = filestore.Store(stale_after=3600).local_copy(remote)
    try:
        assert not old.exists() and fresh.exists()
        assert Path(copy).read_text() == "id\n2\n"
    finally:
        fresh.unlink(missing_ok=True)
        Path(copy).unlink(missing_ok=True)
