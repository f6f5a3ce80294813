"""The file sink: JSON, CSV, Excel, Feather or Parquet files on local disk or object storage.

A target on the sink seam (`honey_duck.seam`): the flow decides and checks, this module
knows where each asset's files live, how a write stages and publishes them (`store`) and how
each format writes and reads (`formats`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg
import polars as pl
from pydantic import Field
from upath import UPath

from honey_duck import seam
from honey_duck.connections import S3Config
from honey_duck.seam import Landing, Session, SinkIOManager, Target, Write
from honey_duck.seam.records import SchemaRecord
from honey_duck.targets.files.formats import (
    EXCEL_MAX_ROWS,
    FORMATS,
    SHEET_NAME_UNITS,
    ExcelFormat,
    FileFormat,
    utf16_prefix,
)
from honey_duck.targets.files.store import Identity, Store, identity, is_local

REMOTE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az")
SCHEMA_SUFFIX = ".schema"  # JSON inside; a name folder readers filtering by extension skip
_ROUTE = "__honey_duck_partition"  # the column a one-pass partitioned write routes rows by
_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})


class FileIOManager(SinkIOManager):
    """Writes polars frames as files, atomically: readers see the old file or the new one."""

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


class FileTarget(Target):
    """Files of one format under one root: one file per asset, or one per partition."""

    def __init__(
        self,
        word: str,
        fmt: FileFormat,
        root: UPath,
        store: Store,
        secrets: Sequence[str | None] = (),
        scan_options: dict[str, str] | None = None,
    ) -> None:
        self.word, self.fmt, self.root, self.store = word, fmt, root, store
        self._secrets = list(secrets)
        self.scan_options = scan_options  # polars' object-store settings, when on S3

    def unsupported(self, dtype: pl.DataType) -> str | None:
        return self.fmt.unsupported(dtype)

    def refusals(self, schema: pl.Schema) -> list[seam.Refusal]:
        return self.fmt.refusals(schema)

    def landing(self, dtype: pl.DataType) -> Landing:
        return self.fmt.landing(dtype)

    def locate(self, key: dg.AssetKey, metadata: Mapping[str, Any]) -> dg.AssetKey:
        return key

    def table_name(self, location: dg.AssetKey) -> str:
        return ".".join(location.path)

    def uri(self, location: dg.AssetKey, partitions: seam.PartitionSlice | None = None) -> str:
        """The file of an unpartitioned asset or of one partition; a range's folder."""
        if partitions is not None and len(partitions.parts) > 1:
            return str(self.folder(location))
        return str(self.path(location, partitions.parts[0] if partitions else None))

    def secrets(self) -> Sequence[str | None]:
        return self._secrets

    @contextmanager
    def session(self) -> Iterator[FileSession]:
        yield FileSession(self)

    # -- where files live -------------------------------------------------------------------

    def folder(self, key: dg.AssetKey) -> UPath:
        """The asset's own path without extension: its file's stem, or its partitions' folder."""
        return self.root.joinpath(*key.path)

    def path(self, key: dg.AssetKey, part: seam.Part | None) -> UPath:
        """`asset.ext`, `asset/<partition>.ext`, or `asset/<dim>=<key>/.../<dim>=<key>.ext`."""
        ext = self.fmt.ext
        if part is None:
            base = self.folder(key)
            return base.with_name(f"{base.name}.{ext}")
        if part.dimensions:  # multi-partitions: one folder level per dimension, sorted by name
            names = [f"{d}={_safe(k)}" for d, k in sorted(part.dimensions.items())]
            return self.folder(key).joinpath(*names[:-1], f"{names[-1]}.{ext}")
        return self.folder(key) / f"{_safe(part.key)}.{ext}"


@dataclass(frozen=True)
class _Object:
    """One file a write produces: where, its new rows from the data, and their count."""

    path: UPath
    frame: pl.LazyFrame
    rows: int


class FileSession(Session):
    """The contract's verbs on files; every write goes through `_write_all`."""

    def __init__(self, target: FileTarget) -> None:
        self.t = target
        self._origins: dict[str, list[str]] = {}  # column -> a few partition files holding it

    # -- schema -----------------------------------------------------------------------------

    def stored_schema(
        self, location: dg.AssetKey, partitions: seam.PartitionSlice | None
    ) -> pl.Schema | None:
        """The asset's schema: its file's, or for a partitioned asset every partition file's.

        Partition files written under `evolve` at different times may hold different
        columns; the asset's schema is all of them, in the order of the newest file.
        """
        if partitions is None:
            return self._schema_of(self.t.path(location, None), for_write=True)
        folder = self.t.folder(location)
        if not folder.exists():
            return None
        ext = f".{self.t.fmt.ext}"
        files = sorted(
            (
                p
                for p in folder.rglob(f"*{ext}")
                # not another write's staging folder (`.<name>.<writer>.tmp/`)
                if p.name.endswith(ext) and "/." not in p.path[len(folder.path) :]
            ),
            key=lambda p: p.path,
        )
        schemas = [(p, s) for p in files if (s := self._schema_of(p, for_write=True)) is not None]
        if not schemas:
            return None
        newest = dict(schemas[-1][1])
        holders: dict[str, list[str]] = {}
        for path, schema in reversed(schemas):
            for column, dtype in schema.items():
                newest.setdefault(column, dtype)
                holders.setdefault(column, []).append(_relative(folder, path))
        # a column only some partition files hold: say which, should the data lack it
        self._origins = {c: f[:3] for c, f in holders.items() if len(f) < len(schemas)}
        return pl.Schema(newest)

    def schema_origins(self) -> Mapping[str, str]:
        return {c: "partition file " + ", ".join(sorted(f)) for c, f in self._origins.items()}

    def _schema_of(self, path: UPath, *, for_write: bool = False) -> pl.Schema | None:
        """The schema stored with `path`, None when there is no file.

        A sidecar records the identity of the data file it describes. A mismatch means a
        write died between publishing the two, or two writers published at once: readers get
        a clear error; a write treats the schema as unknown so that a replace repairs the pair.
        """
        if not path.exists():
            return None
        if not self.t.fmt.sidecar_schema:
            return self._scan(path, None).collect_schema()  # a remote file: just its footer
        sidecar = path.with_name(path.name + SCHEMA_SUFFIX)
        if not sidecar.exists():
            if for_write:
                return None
            raise ValueError(
                f"{path.name} has no {sidecar.name} beside it (a first write was interrupted,"
                " or something else wrote the file), so its types are unknown; materialize the"
                " asset again with write_mode `replace`"
            )
        doc = json.loads(sidecar.read_text())
        recorded, now = Identity.from_json(doc), identity(path)
        if recorded is None:  # written before digests were recorded: the size decides
            recorded = Identity(int(doc.get("data_bytes", now.size)), now.digest)
        if recorded != now:
            if for_write:
                return None
            raise ValueError(
                f"{sidecar.name} describes another version of {path.name} ({recorded.size}"
                f" bytes, digest {recorded.digest[:12]}; the file has {now.size} bytes, digest"
                f" {now.digest[:12]}): a"
                " write was interrupted between the two, or two writers published at once;"
                " materialize the asset again with write_mode `replace` to repair it"
            )
        return SchemaRecord.from_json(doc).schema

    # -- writing ----------------------------------------------------------------------------

    def replace(self, write: Write) -> int:
        return self._write_all(write)

    def replace_slice(self, write: Write) -> int:
        return self._write_all(write)

    def append(self, write: Write) -> int:
        return self._write_all(write)

    def upsert(self, write: Write) -> int:
        return self._write_all(write)

    def _objects(self, write: Write) -> list[_Object]:
        key = write.location
        if write.partitions is None:
            return [_Object(self.t.path(key, None), write.frame, write.checked.rows)]
        return [
            _Object(
                self.t.path(key, part),
                write.frame.filter(part.predicate(write.incoming)),
                write.checked.rows_by_part[part.key],
            )
            for part in write.partitions.parts
        ]

    def _write_all(self, write: Write) -> int:
        """Stage every file, then publish them: a failure before the last stage changes nothing.

        Writers of one asset take turns (on local disk); a range of several files is
        announced before publishing, so a range that did not finish is detected on read.
        """
        objects = self._objects(write)
        folder = self.t.folder(write.location)
        names = [_relative(folder, o.path) for o in objects]
        schema = pl.Schema(write.schema)
        rows = 0
        with self.t.store.lock(folder), ExitStack() as stack:
            self.t.store.sweep_uploads(folder)
            folders = [stack.enter_context(self.t.store.staging(o.path)) for o in objects]
            if self._routable(write, objects):
                staged = self._stage_routed(folders, objects, schema, write)
                rows = write.checked.rows
            else:
                staged = []
                for where, obj in zip(folders, objects, strict=True):
                    path, count = self._stage(where, obj, schema, write)
                    staged.append(path)
                    rows += count
            marker = self.t.store.announce(folder, names) if len(objects) > 1 else None
            for obj, path in zip(objects, staged, strict=True):
                self._publish(path, obj.path, schema)
            if write.partitions is not None:
                self.t.store.settle(folder, marker, names)
        return rows

    def _routable(self, write: Write, objects: list[_Object]) -> bool:
        """Whether one pass can write every partition's file: a replace of several
        partitions in a format whose polars sink routes rows by a column."""
        replace = write.settings.mode is seam.WriteMode.REPLACE
        return replace and len(objects) > 1 and self.t.fmt.routes

    def _stage_routed(
        self, folders: list[str], objects: list[_Object], schema: pl.Schema, write: Write
    ) -> list[str]:
        """Stage every partition's file in one pass over the rows (not one pass per partition).

        Each row gets the index of its partition; polars' partitioned sink sends it to that
        partition's staged file. A partition without rows gets its typed, empty file apart.
        """
        assert write.partitions is not None
        paths = [os.path.join(f, o.path.name) for f, o in zip(folders, objects, strict=True)]
        index: Any = pl
        for i, part in enumerate(write.partitions.parts):
            index = index.when(part.predicate(write.incoming)).then(pl.lit(i, pl.UInt32))
        content = seam.conform(write.frame, schema)
        routed = content.with_columns(index.alias(_ROUTE))

        def path_of(args: Any) -> str:
            return paths[args.partition_keys.item(0, 0)]

        destination = pl.PartitionBy(
            os.path.commonpath(paths),
            key=_ROUTE,
            include_key=False,
            file_path_provider=path_of,
            approximate_bytes_per_file=None,  # one file per partition, however large
        )
        self.t.fmt.write(routed, destination, batch_rows=write.batch_rows, title="")
        for path, obj in zip(paths, objects, strict=True):
            if obj.rows == 0:  # no row routed there: its file is typed and empty
                self.t.fmt.write(content.clear(), path, batch_rows=write.batch_rows, title="")
        return paths

    def _stage(self, folder: str, obj: _Object, schema: pl.Schema, write: Write) -> tuple[str, int]:
        """Write one file's new content into `folder`; the staged path and its rows."""
        existing = None
        if write.settings.mode is not seam.WriteMode.REPLACE and obj.path.exists():
            existing = self._scan(obj.path, self._schema_of(obj.path))
        content = seam.combine(existing, obj.frame, write.settings, schema)
        staged = os.path.join(folder, obj.path.name)
        rows = self.t.fmt.write(
            content, staged, batch_rows=write.batch_rows, title=_sheet_title(obj.path.stem)
        )
        if rows is None:
            if existing is None:  # a replace writes exactly the validated rows
                rows = obj.rows
            else:  # append and upsert merge with what was there: count what the file holds
                rows = self.t.fmt.scan(staged, schema).select(pl.len()).collect().item()
        return staged, rows

    def _publish(self, staged: str, final: UPath, schema: pl.Schema) -> None:
        """Publish the data file, then its sidecar naming the data's identity."""
        published = self.t.store.publish(staged, final)
        if not self.t.fmt.sidecar_schema:
            return
        sidecar = staged + SCHEMA_SUFFIX
        with open(sidecar, "w") as out:
            out.write(SchemaRecord(schema).dumps(**published.as_json()))
        self.t.store.publish(sidecar, final.with_name(final.name + SCHEMA_SUFFIX))
        if not is_local(final) and identity(final) != published:  # no lock there: check
            raise ValueError(
                f"another writer replaced {final} while this write published it; materialize"
                " the asset again (writers of one asset on object storage must take turns)"
            )

    # -- reading ----------------------------------------------------------------------------

    def _scan(self, path: UPath, schema: pl.Schema | None) -> pl.LazyFrame:
        """A lazy read of one file: ranged reads on S3 where the format allows, else a copy."""
        if self.t.scan_options is not None and self.t.fmt.scans_remote and not is_local(path):
            url = f"s3://{path.path}"
            return self.t.fmt.scan(url, schema, storage_options=self.t.scan_options)
        return self.t.fmt.scan(self.t.store.local_copy(path), schema)

    def read(
        self,
        location: dg.AssetKey,
        columns: Sequence[str] | None,
        partitions: seam.PartitionSlice | None,
    ) -> pl.LazyFrame:
        if partitions is None:
            paths = [self.t.path(location, None)]
        else:
            paths = [self.t.path(location, p) for p in partitions.parts]
            self._check_finished(location, paths)
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} file(s) not found, e.g. {missing[0]}; materialize it first"
            )
        frames = [self._scan(p, self._schema_of(p)) for p in paths]
        frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        return frame.select(columns) if columns else frame

    def _check_finished(self, key: dg.AssetKey, paths: Sequence[UPath]) -> None:
        """Refuse to read partitions a range write announced and never finished publishing."""
        folder = self.t.folder(key)
        wanted = {_relative(folder, p) for p in paths}
        for marker, doc in self.t.store.pending(folder).items():
            unfinished = sorted(wanted & set(doc.get("files", [])))
            if unfinished:
                raise ValueError(
                    f"a write of {len(doc['files'])} partition files that started at"
                    f" {doc.get('started')} has not finished ({marker.name}): {unfinished[:3]}"
                    f"{' ...' if len(unfinished) > 3 else ''} may hold a mix of old and new"
                    " rows; wait for that run, or materialize those partitions again"
                )


def _relative(folder: UPath, path: UPath) -> str:
    """`path` as named under `folder` (a partition file's name in markers and messages)."""
    return path.path[len(folder.path) + 1 :]


def _sheet_title(stem: str) -> str:
    """An Excel sheet name from a file stem: at most 31 characters, none of []:*?/\\."""
    return utf16_prefix(stem.translate(_SHEET_FORBIDDEN).strip("'"), SHEET_NAME_UNITS) or "Sheet"


def _safe(key: str) -> str:
    """A partition key as a file name; keys that would escape their folder are refused."""
    if not key or key in (".", "..") or any(c in key for c in "/\\\0") or key.startswith("."):
        raise ValueError(f"partition key {key!r} cannot name a file (no '/', '\\', or leading '.')")
    return key
