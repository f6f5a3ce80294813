"""Redshift's staging on S3: a load's rows as Parquet files of bounded size under a fresh prefix,
deleted after the load whether it succeeds or fails; a killed writer's files swept once stale."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import polars as pl
from pydantic import Field

from honey_duck.connections import S3Config
from honey_duck.targets.sql.session import arrow_batches

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX = re.compile(r"^[\w./-]*$")


class RedshiftStaging(dg.Config):
    """Where a Redshift load stages its rows, and who may read them there."""

    iam_role: str = Field(default="", description="IAM role ARN that COPY reads S3 with.")
    bucket: str = Field(default="", description="Bucket for staged Parquet files.")
    prefix: str = Field(default="honey_duck/staging", description="Key prefix for staging.")
    s3: S3Config = Field(
        default_factory=S3Config, description="Endpoint and keys of the staging bucket."
    )
    max_file_rows: int = Field(default=1_000_000, description="Rows per staged Parquet file.")
    stale_after_hours: float = Field(
        default=6.0,
        description="Staged files older than this (left by a killed writer) are deleted at the"
        " start of each load.",
    )


@dataclass(frozen=True)
class Staged:
    """One load's staged files: the fresh prefix they share and their keys."""

    prefix: str
    keys: list[str]


class Staging:
    """The staging bucket as one target uses it: stage, unstage, sweep."""

    def __init__(self, config: RedshiftStaging, batch_rows: int, needs_role: bool) -> None:
        self.config, self.batch_rows, self.needs_role = config, batch_rows, needs_role

    def check_names(self) -> None:
        """Refuse a bucket, prefix or role that could not be spliced into COPY safely."""
        config = self.config
        if not BUCKET.match(config.bucket) or not PREFIX.match(config.prefix):
            raise ValueError(
                f"staging bucket {config.bucket!r} or its prefix is not a plain S3 name"
            )
        if self.needs_role and not ROLE_ARN.match(config.iam_role):
            raise ValueError(
                "iam_role must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )

    def uri(self, key: str) -> str:
        return f"s3://{self.config.bucket}/{key}"

    def stage(self, frame: pl.LazyFrame) -> Staged:
        """Write `frame` as Parquet files of at most `max_file_rows` rows under a new prefix.

        pyarrow's dataset writer streams the batches and closes each file at the row bound;
        when the frame fails half-way, what it wrote under the prefix is deleted again.
        """
        import pyarrow.dataset as ds

        self.check_names()
        config = self.config
        prefix = f"{config.prefix.strip('/')}/{uuid.uuid4().hex}/"
        rows = max(1, min(self.batch_rows, config.max_file_rows))
        written: list[str] = []
        try:
            ds.write_dataset(
                arrow_batches(frame, rows),
                f"{config.bucket}/{prefix}".rstrip("/"),
                format="parquet",
                filesystem=self._filesystem(),
                basename_template="part-{i}.parquet",
                max_rows_per_file=config.max_file_rows,
                max_rows_per_group=rows,
                existing_data_behavior="overwrite_or_ignore",  # the prefix is new: no listing
                file_visitor=lambda file: written.append(file.path),
                use_threads=False,
                # without it the writer reorders batches even on one thread (7 of 30 stages of
                # 200 one-row batches came back shuffled): a round trip must keep the order
                preserve_order=True,
                create_dir=False,  # S3 has no folders: no empty marker objects to leave behind
            )
        except BaseException:
            with suppress(Exception):  # the staging error is the one to report
                self.unstage(self._listed(prefix))
            raise
        keys = [path.removeprefix(f"{config.bucket}/") for path in written]
        return Staged(prefix, sorted(keys, key=_part_number))

    def unstage(self, keys: Sequence[str]) -> None:
        """Delete staged files, 1,000 per request (S3's limit); raise if any stays."""
        s3 = self.config.s3.client()
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            answer = s3.delete_objects(Bucket=self.config.bucket, Delete={"Objects": chunk})
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"could not delete {len(errors)} staged file(s) in s3://{self.config.bucket},"
                    f" e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')};"
                    " delete them by hand or with a lifecycle rule on the staging prefix"
                )

    def sweep(self, now: datetime | None = None) -> list[str]:
        """Delete what killed writers left: staged files, and uploads of a file never
        finished, older than `stale_after_hours`; their keys.

        Only keys in staging's own layout (`<prefix>/<32 hex>/part-<n>.parquet`) are touched,
        so a prefix shared with other files loses nothing else.
        """
        self.check_names()
        base = self.config.prefix.strip("/")
        layout = re.compile(rf"^{re.escape(base)}/[0-9a-f]{{32}}/part-\d+\.parquet$")
        cutoff = (now or datetime.now(UTC)) - timedelta(hours=self.config.stale_after_hours)
        stale = [
            item["Key"]
            for item in self._objects(f"{base}/")
            if item["LastModified"] < cutoff and layout.match(item["Key"])
        ]
        if stale:
            self.unstage(stale)
        # a writer killed mid-upload leaves a multipart upload that no listing shows
        s3 = self.config.s3.client()
        pages = s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.config.bucket, Prefix=f"{base}/"
        )
        for upload in (u for page in pages for u in page.get("Uploads", [])):
            if upload["Initiated"] < cutoff and layout.match(upload["Key"]):
                s3.abort_multipart_upload(
                    Bucket=self.config.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                stale.append(upload["Key"])
        return stale

    def _listed(self, prefix: str) -> list[str]:
        return [item["Key"] for item in self._objects(prefix)]

    def _objects(self, prefix: str) -> list[dict[str, Any]]:
        pages = (
            self.config.s3.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.config.bucket, Prefix=prefix)
        )
        return [item for page in pages for item in page.get("Contents", [])]

    def _filesystem(self) -> Any:
        """pyarrow's S3 filesystem with the staging bucket's endpoint and keys (else the AWS
        SDK's own chain)."""
        from pyarrow import fs

        s3 = self.config.s3
        options: dict[str, Any] = {"region": s3.region} if s3.region else {}
        if s3.endpoint_url:
            parts = urlsplit(s3.endpoint_url)
            options.update(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
        if s3.access_key_id:
            options.update(access_key=s3.access_key_id, secret_key=s3.secret_access_key)
        return fs.S3FileSystem(**options)


def _part_number(key: str) -> int:
    return int(key.rsplit("part-", 1)[1].removesuffix(".parquet"))
