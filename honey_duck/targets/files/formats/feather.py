"""Feather (Arrow IPC v2): the schema travels inside the file, so no sidecar is needed."""

from __future__ import annotations

import polars as pl

from honey_duck.targets.files.formats.base import Destination, FileFormat, FileRecord, Written


class FeatherFormat(FileFormat):
    """Arrow IPC (Feather v2), zstd-compressed: every polars type but Python objects."""

    name, ext = "feather", "feather"
    sidecar_schema = False
    routes = True
    scans_remote = True

    def unsupported(self, dtype: pl.DataType) -> str | None:
        return "cannot store Python objects" if dtype == pl.Object else None

    def write(self, frame: pl.LazyFrame, path: Destination, *, batch_rows: int) -> Written:
        frame.sink_ipc(path, compression="zstd")
        return Written()

    def scan(
        self,
        path: str,
        record: FileRecord | None,
        storage_options: dict[str, str] | None = None,
    ) -> pl.LazyFrame:
        return pl.scan_ipc(path, storage_options=storage_options)
