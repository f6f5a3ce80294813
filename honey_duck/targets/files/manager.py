"""The file sink's IO manager: JSON, CSV, Excel, Feather or Parquet files on local disk or
object storage, on the sink seam (`honey_duck.seam`).

The flow decides and checks; `target` knows where each asset's files live, `session` how a
write stages and publishes them (through `store`) and `formats` how each format writes and
reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from upath import UPath

from honey_duck.connections import S3Config
from honey_duck.seam import SinkIOManager, Target
from honey_duck.targets.files.formats import EXCEL_MAX_ROWS, FORMATS, ExcelFormat
from honey_duck.targets.files.store import Store
from honey_duck.targets.files.target import FileTarget

REMOTE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az")


class FileIOManager(SinkIOManager):
    """Writes polars frames as files, atomically: readers see the old file or the new one.

    Usage::

        defs = dg.Definitions(
            assets=[sales_enriched_csv],
            resources={"csv_io_manager": FileIOManager(format="csv", base_path="data/output")},
        )

    Each asset lands at `<base_path>/<key path>.<ext>`, a partitioned one as one file per
    partition under `<base_path>/<key path>/`; JSON, CSV and Excel files get a schema sidecar
    (`<file>.schema`) that types them when they are read back.
    """

    format: Literal["json", "csv", "excel", "feather", "parquet"] = Field(
        description="File format: json (newline-delimited), csv, excel, feather or parquet."
    )
    base_path: str = Field(
        description="Folder or URL (s3://, gs://, memory://...) under which asset files land."
    )
    sink: str | None = Field(
        default=None,
        description="The sink's word in errors and metadata (default: the format's name).",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for object storage."
    )
    s3: S3Config | None = Field(
        default=None, description="Endpoint and credentials when base_path is an s3:// URL."
    )
    max_sheet_rows: int = Field(
        default=EXCEL_MAX_ROWS, description="Excel only: rows per sheet, header included."
    )
    stale_after_hours: float = Field(
        default=6.0,
        description="Leftovers of a writer on another host (or an upload) older than this are"
        " reclaimed by the next write.",
    )

    @classmethod
    def target_class(cls) -> type[Target]:
        return FileTarget

    def word(self) -> str:
        return self.sink or self.format

    def target(self) -> FileTarget:
        fmt = FORMATS[self.format]
        options = {**self.storage_options, **(self.s3.fsspec_options() if self.s3 else {})}
        if self.base_path.split("://")[0] in REMOTE_PROTOCOLS:
            # other processes write there too: a cached listing would name files (and ETags)
            # that are gone, so always ask the server
            options.setdefault("use_listings_cache", False)
        return FileTarget(
            word=self.word(),
            fmt=ExcelFormat(max_sheet_rows=self.max_sheet_rows) if fmt is ExcelFormat else fmt(),
            root=UPath(self.base_path, **options),
            store=Store(stale_after=self.stale_after_hours * 3600),
            secrets=self.s3.secrets() if self.s3 else [],
            scan_options=self.s3.polars_options() if self.s3 else None,
        )
