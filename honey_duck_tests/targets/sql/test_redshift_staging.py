"""Redshift's staging against a real S3 server: what a failure half-way, or a killed writer,
leaves in the bucket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from honey_duck import seam
from honey_duck.connections import S3Config
from honey_duck.targets.redshift import RedshiftStaging
from honey_duck.targets.redshift.staging import Staging


@pytest.fixture
def staging(s3_server: Any) -> tuple[Staging, Any, str]:
    bucket = s3_server.create_bucket("staging")
    s3 = S3Config(
        endpoint_url=s3_server.endpoint_url,
        region=s3_server.region,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
    )
    config = RedshiftStaging(bucket=bucket, s3=s3, max_file_rows=1_000)
    return Staging(config, batch_rows=500, needs_role=False), s3_server.client(), bucket


def _keys(client: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_frame_failing_half_way_leaves_no_staged_file(staging) -> None:
    """A file is in the bucket when the frame fails on its fifth batch: it goes again, and so
    does the one still being written."""
    stager, client, bucket = staging
    seen_at_failure: list[str] = []

    def batches(batch_size: int | None) -> Iterator[pl.DataFrame]:
        for number in range(8):
            if number == 4:  # wait (bounded) for the first file, its 1,000 rows written
                deadline = time.monotonic() + 30
                while not _keys(client, bucket) and time.monotonic() < deadline:
                    time.sleep(0.05)
                seen_at_failure.extend(_keys(client, bucket))
                raise RuntimeError("the asset's rows failed half-way")
            yield pl.DataFrame({"id": range(number * 500, (number + 1) * 500)})

    frame = seam.scan_frames(batches, pl.Schema({"id": pl.Int64}))
    with pytest.raises(Exception, match="failed half-way"):
        stager.stage(frame)
    assert len(seen_at_failure) >= 1, seen_at_failure
    assert _keys(client, bucket) == []


def test_an_upload_a_killed_writer_left_open_is_aborted_once_stale(staging) -> None:
    """A writer killed while uploading a large file leaves a multipart upload no listing of the
    bucket shows: the sweep aborts it once stale, and leaves others' uploads alone."""
    stager, client, bucket = staging
    ours = "honey_duck/staging/0123456789abcdef0123456789abcdef/part-3.parquet"
    foreign = "honey_duck/staging/notes/big.bin"
    for key in (ours, foreign):
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)
        client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 10
        )
    assert stager.sweep() == []  # fresh: the writer may still be uploading
    later = datetime.now(UTC) + timedelta(hours=6, minutes=1)
    assert stager.sweep(now=later) == [ours]
    open_uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in open_uploads] == [foreign]


def test_staged_rows_keep_their_order(staging) -> None:
    """pyarrow's dataset writer reorders small batches unless told to keep their order: a
    round trip then read rows back in another order than the asset's (7 of 30 stages of 200
    one-row batches did, seen with pyarrow 25)."""
    stager, client, _ = staging
    one_row_batches = Staging(stager.config, batch_rows=1, needs_role=False)
    for _ in range(10):
        staged = one_row_batches.stage(pl.LazyFrame({"id": range(200)}))
        body = client.get_object(Bucket=stager.config.bucket, Key=staged.keys[0])["Body"].read()
        one_row_batches.unstage(staged.keys)
        assert pq.read_table(pa.BufferReader(body))["id"].to_pylist() == list(range(200))
