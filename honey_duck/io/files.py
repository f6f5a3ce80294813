"""The file sink: JSON, CSV, Excel, Feather or Parquet files on local disk or object storage."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg
import polars as pl
from pydantic import Field, PrivateAttr
from upath import UPath

from honey_duck.io import core
from honey_duck.io.formats import (
    EXCEL_MAX_ROWS,
    FORMATS,
    SHEET_NAME_UNITS,
    ExcelFormat,
    FileFormat,
    utf16_prefix,
)

SCHEMA_SUFFIX = ".schema"  # JSON inside; a name folder readers filtering by extension skip


def _is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


@dataclass(frozen=True)
class _Object:
    """One file to write: where, whose siblings share its schema, its rows, and their count."""

    path: UPath
    siblings: UPath | None
    frame: pl.LazyFrame
    rows: int


_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})


def _sheet_title(stem: str) -> str:
    """An Excel sheet name from a file stem: at most 31 characters, none of []:*?/\\."""
    return utf16_prefix(stem.translate(_SHEET_FORBIDDEN).strip("'"), SHEET_NAME_UNITS) or "Sheet"


class FileIOManager(dg.ConfigurableIOManager):
    """Writes polars frames as files, atomically: readers see the old file or the new one."""

    format: Literal["json", "csv", "excel", "feather", "parquet"] = Field(
        description="File format: json (newline-delimited), csv, excel, feather or parquet."
    )
    base_path: str = Field(
        description="Folder or URL (s3://, gs://, memory://...) under which asset files land."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for object storage (endpoint, ...).",
    )
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint, for object storage that is not AWS."
    )
    access_key_id: str | None = Field(default=None, description="Object storage key; dg.EnvVar.")
    secret_access_key: str | None = Field(
        default=None, description="Object storage secret; use dg.EnvVar."
    )
    schema_policy: Literal["strict", "evolve"] = Field(
        default="strict",
        description="What to do when the schema differs from the stored one.",
    )
    batch_rows: int = Field(default=core.DEFAULT_BATCH_ROWS, description="Rows per write batch.")
    max_sheet_rows: int = Field(
        default=EXCEL_MAX_ROWS,
        description="Excel only: rows per sheet, header included.",
    )

    _scratch: str | None = PrivateAttr(default=None)

    # -- locations ------------------------------------------------------------------------

    @property
    def _format(self) -> FileFormat:
        fmt = FORMATS[self.format]
        return ExcelFormat(max_sheet_rows=self.max_sheet_rows) if fmt is ExcelFormat else fmt()

    def _root(self) -> UPath:
        options = dict(self.storage_options)
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.access_key_id:
            options.update(key=self.access_key_id, secret=self.secret_access_key)
        return UPath(self.base_path, **options)

    def _asset_path(self, key: dg.AssetKey) -> UPath:
        return self._root().joinpath(*key.path)

    def _object_path(self, key: dg.AssetKey, part: core.Part | None) -> UPath:
        """`asset.ext`, `asset/<partition>.ext`, or `asset/<dim>=<key>/.../<dim>=<key>.ext`."""
        ext = self._format.ext
        if part is None:
            base = self._asset_path(key)
            return base.with_name(f"{base.name}.{ext}")
        if part.dimensions:  # multi-partitions: one folder level per dimension, sorted by name
            names = [f"{d}={_safe(k)}" for d, k in sorted(part.dimensions.items())]
            return self._asset_path(key).joinpath(*names[:-1], f"{names[-1]}.{ext}")
        return self._asset_path(key) / f"{_safe(part.key)}.{ext}"

    def _local_copy(self, path: UPath) -> str:
        """A local file holding `path`'s bytes (the path itself when already local)."""
        if _is_local(path):
            return path.path
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="honey_duck_files_")
            atexit.register(shutil.rmtree, self._scratch, True)
        local = os.path.join(self._scratch, f"{uuid.uuid4().hex}.{self._format.ext}")
        path.fs.get_file(path.path, local)
        return local

    # -- schema ---------------------------------------------------------------------------

    def _stored_schema(self, path: UPath, *, for_write: bool = False) -> pl.Schema | None:
        """The schema stored with `path` (None when there is no file or no sidecar).

        A sidecar records the size of the file it describes. A mismatch means a write died
        between publishing the file and its sidecar: readers get a clear error, and a write
        treats the schema as unknown so that a replace repairs the pair.
        """
        if not path.exists():
            return None
        if not self._format.sidecar_schema:
            return self._format.schema_of(self._local_copy(path))
        sidecar = path.with_name(path.name + SCHEMA_SUFFIX)
        if not sidecar.exists():
            return None
        doc = json.loads(sidecar.read_text())
        size = doc.get("data_bytes")
        if size is not None and size != path.stat().st_size:
            if for_write:
                return None
            raise ValueError(
                f"{sidecar.name} describes a {size}-byte file but {path.name} has"
                f" {path.stat().st_size} bytes (a write was interrupted between the two);"
                " materialize the asset again with write_mode `replace` to repair it"
            )
        return core.schema_from_json(doc)

    def _reference_schema(self, path: UPath, siblings: UPath | None) -> pl.Schema | None:
        """The schema to compare against: this file's, or a sibling partition's when it is new."""
        stored = self._stored_schema(path, for_write=True)
        if stored is None and siblings is not None and siblings.exists():
            ext = f".{self._format.ext}"
            files = sorted(
                p
                for p in siblings.rglob(f"*{ext}")
                if p.name.endswith(ext)
                # not another write's staging folder (`.<name>.<id>.tmp/`)
                and "/." not in p.path[len(siblings.path) :]
            )
            if files:
                stored = self._stored_schema(files[-1], for_write=True)
        return stored

    # -- writing --------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        if obj is None:
            return
        asset = context.asset_key.to_user_string()
        partition = None
        try:
            settings = core.WriteSettings.from_context(context, self.schema_policy)
            partitions = core.slice_from_context(context, settings.partition_expr)
            partition = partitions.label() if partitions else None
            frame = core.as_lazy(obj)
            incoming = frame.collect_schema()
            core.check_types(incoming, self._format.unsupported)
            with core.stopwatch() as watch:
                checked = core.validate(frame, settings, partitions)
                if partitions is None:
                    path = self._object_path(context.asset_key, None)
                    objects = [_Object(path, None, frame, checked.rows)]
                else:
                    siblings = self._asset_path(context.asset_key)
                    objects = [
                        _Object(
                            self._object_path(context.asset_key, part),
                            siblings,
                            frame.filter(part.predicate(incoming)),
                            checked.rows_by_part[part.key],
                        )
                        for part in partitions.parts
                    ]
                rows, schema = self._write_all(objects, incoming, settings)
        except Exception as exc:
            raise core.SinkError(self.format, asset, str(exc), partition) from exc
        target = self._asset_path(context.asset_key)
        context.add_output_metadata(
            core.output_metadata(
                table=".".join(context.asset_key.path),
                uri=str(path if partitions is None else target),
                storage_kind=self.format,
                schema=schema,
                rows=rows,
                settings=settings,
                seconds=watch.seconds,
                partitions=partitions,
                rows_written=checked.rows,
            )
        )

    def _write_all(
        self, objects: list[_Object], incoming: pl.Schema, settings: core.WriteSettings
    ) -> tuple[int, pl.Schema]:
        """Write every object, all or nothing as far as files allow.

        Every schema is checked before anything is written, every object is staged next, and
        only then are they published, one rename (or put) each: a failure before the last
        stage leaves every previous file as it was.
        """
        targets = [
            pl.Schema(
                core.check_schema(
                    self._reference_schema(o.path, o.siblings),
                    incoming,
                    settings.schema_policy,
                    f"`{o.path}`",
                )
            )
            for o in objects
        ]
        rows = 0
        with ExitStack() as stack:
            staged = []
            for obj, target in zip(objects, targets, strict=True):
                folder = stack.enter_context(self._staging_folder(obj.path))
                files, count = self._stage(folder, obj, target, settings)
                staged.append(files)
                rows += count
            for obj, files in zip(objects, staged, strict=True):
                for local, final in files:
                    self._publish(local, final(obj.path))
        return rows, targets[-1] if targets else incoming

    def _stage(
        self, folder: str, obj: _Object, target: pl.Schema, settings: core.WriteSettings
    ) -> tuple[list[tuple[str, Any]], int]:
        """Write one object's new content into `folder`; the files to publish and the rows."""
        existing = None
        if settings.mode is not core.WriteMode.REPLACE and obj.path.exists():
            existing = core.conform(self._scan(obj.path, self._stored_schema(obj.path)), target)
        content = core.combine(existing, core.conform(obj.frame, target), settings)
        staged = os.path.join(folder, obj.path.name)
        rows = self._format.write(
            content, staged, batch_rows=self.batch_rows, title=_sheet_title(obj.path.stem)
        )
        if rows is None:
            if existing is None:  # a replace writes exactly the validated rows
                rows = obj.rows
            else:  # append and upsert merge with what was there: count what the file holds
                rows = self._format.scan(staged, target).select(pl.len()).collect().item()
        files: list[tuple[str, Any]] = []
        if self._format.sidecar_schema:
            doc = {**core.schema_to_json(target), "data_bytes": os.path.getsize(staged)}
            with open(staged + SCHEMA_SUFFIX, "w") as out:
                json.dump(doc, out, indent=1)
            # Published before its data file: after a crash between the two, `data_bytes`
            # tells the new sidecar from the old file; a first write leaves no data file.
            files.append(
                (staged + SCHEMA_SUFFIX, lambda final: final.with_name(final.name + SCHEMA_SUFFIX))
            )
        files.append((staged, lambda final: final))
        return files, rows

    @contextmanager
    def _staging_folder(self, final: UPath) -> Iterator[str]:
        """A private folder to write into, on the same filesystem as `final` when it is local.

        The whole folder is removed afterwards, used or not: a writer thread that outlives a
        failed write (polars sinks stream in the background) cannot leave a file behind.
        """
        if _is_local(final):
            final.parent.mkdir(parents=True, exist_ok=True)
            folder = os.path.join(final.parent.path, f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
            os.mkdir(folder)
        else:
            folder = tempfile.mkdtemp(prefix="honey_duck_stage_")
        try:
            yield folder
        finally:
            for _ in range(20):
                shutil.rmtree(folder, ignore_errors=True)
                if not os.path.exists(folder):
                    break
                time.sleep(0.05)

    @staticmethod
    def _publish(staged: str, final: UPath) -> None:
        if _is_local(final):
            os.replace(staged, final.path)  # atomic on one filesystem
        else:
            final.fs.put_file(staged, final.path)  # an object PUT is atomic for readers

    # -- reading --------------------------------------------------------------------------

    def _scan(self, path: UPath, schema: pl.Schema | None) -> pl.LazyFrame:
        return self._format.scan(self._local_copy(path), schema)

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        key = context.asset_key
        asset = key.to_user_string()
        partitions = None
        try:
            if context.has_asset_partitions:
                partitions = core.parts_for(
                    context.asset_partitions_def, context.asset_partition_keys
                )
                paths = [self._object_path(key, p) for p in partitions.parts]
            else:
                paths = [self._object_path(key, None)]
            missing = [str(p) for p in paths if not p.exists()]
            if missing:
                raise FileNotFoundError(
                    f"{len(missing)} file(s) not found, e.g. {missing[0]}; materialize it first"
                )
            frames = [self._scan(p, self._stored_schema(p)) for p in paths]
            frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
            columns = core.input_columns(context)
            if columns:
                frame = frame.select(columns)
        except Exception as exc:
            label = partitions.label() if partitions else None
            raise core.SinkError(self.format, asset, f"cannot read: {exc}", label) from exc
        return frame if core.is_lazy_annotation(context) else frame.collect()


def _safe(key: str) -> str:
    """A partition key as a file name; keys that would escape their folder are refused."""
    if not key or key in (".", "..") or any(c in key for c in "/\\\0") or key.startswith("."):
        raise ValueError(f"partition key {key!r} cannot name a file (no '/', '\\', or leading '.')")
    return key
