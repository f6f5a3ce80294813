"""The contract's verbs on files: the stored schema, staged writes published whole, reads.

Every write goes through `FileSession._write_all`: each file is staged, then all are published
(a range announced first, so that one that did not finish is reported on read), each data file
before the sidecar that records its identity, schema and encoding.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl
from upath import UPath

from honey_duck import seam
from honey_duck.seam import Session, Write
from honey_duck.seam.records import SchemaRecord
from honey_duck.targets.files.formats import FileRecord, Written
from honey_duck.targets.files.store import Identity, identity, is_local
from honey_duck.targets.files.target import FileTarget, relative

SCHEMA_SUFFIX = ".schema"  # JSON inside; a name folder readers filtering by extension skip
ENCODING = "encoding"  # the sidecar's key for how a format encoded values (`Written.encoding`)
_ROUTE = "__honey_duck_partition"  # the column a one-pass partitioned write routes rows by


@dataclass(frozen=True)
class _PlannedFile:
    """One file a write will produce: where, its new rows from the data, and their count."""

    path: UPath
    frame: pl.LazyFrame
    rows: int


class FileSession(Session):
    """The contract's verbs on files; every write goes through `_write_all`."""

    def __init__(self, target: FileTarget) -> None:
        self.target = target
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
            return self._schema_of(self.target.path(location, None), for_write=True)
        folder = self.target.folder(location)
        if not folder.exists():
            return None
        ext = f".{self.target.fmt.ext}"
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
                holders.setdefault(column, []).append(relative(folder, path))
        # a column only some partition files hold: say which, should the data lack it
        self._origins = {c: f[:3] for c, f in holders.items() if len(f) < len(schemas)}
        return pl.Schema(newest)

    def schema_origins(self) -> Mapping[str, str]:
        return {c: "partition file " + ", ".join(sorted(f)) for c, f in self._origins.items()}

    def _schema_of(self, path: UPath, *, for_write: bool = False) -> pl.Schema | None:
        """The schema stored with `path`, None when there is no file."""
        record = self._record_of(path, for_write=for_write)
        return None if record is None else record.schema

    def _record_of(self, path: UPath, *, for_write: bool = False) -> FileRecord | None:
        """What is recorded of `path` (its schema and encoding), None when there is no file.

        A sidecar records the identity of the data file it describes. A mismatch means a
        write died between publishing the two, or two writers published at once: readers get
        a clear error; a write treats the schema as unknown so that a replace repairs the pair.
        """
        if not path.exists():
            return None
        name = relative(self.target.root, path)
        if not self.target.fmt.sidecar_schema:  # a remote file: just its footer
            return FileRecord(self._scan(path, None).collect_schema(), name=name)
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
        return FileRecord(SchemaRecord.from_json(doc).schema, doc.get(ENCODING) or {}, name)

    # -- writing ----------------------------------------------------------------------------

    def replace(self, write: Write) -> int:
        return self._write_all(write)

    def replace_slice(self, write: Write) -> int:
        return self._write_all(write)

    def append(self, write: Write) -> int:
        return self._write_all(write)

    def upsert(self, write: Write) -> int:
        return self._write_all(write)

    def _planned_files(self, write: Write) -> list[_PlannedFile]:
        key = write.location
        if write.partitions is None:
            return [_PlannedFile(self.target.path(key, None), write.frame, write.checked.rows)]
        return [
            _PlannedFile(
                self.target.path(key, part),
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
        files = self._planned_files(write)
        folder = self.target.folder(write.location)
        names = [relative(folder, f.path) for f in files]
        schema = pl.Schema(write.schema)
        rows = 0
        with self.target.store.lock(folder), ExitStack() as stack:
            self.target.store.sweep_uploads(folder)
            folders = [stack.enter_context(self.target.store.staging(f.path)) for f in files]
            if self._routable(write, files):
                staged = self._stage_routed(folders, files, schema, write)
                rows = write.checked.rows
            else:
                staged = []
                for where, planned in zip(folders, files, strict=True):
                    path, written, count = self._stage(where, planned, schema, write)
                    staged.append((path, written))
                    rows += count
            marker = self.target.store.announce(folder, names) if len(files) > 1 else None
            for planned, (path, written) in zip(files, staged, strict=True):
                self._publish(path, planned.path, schema, written)
            if write.partitions is not None:
                self.target.store.settle(folder, marker, names)
        return rows

    def _routable(self, write: Write, files: list[_PlannedFile]) -> bool:
        """Whether one pass can write every partition's file: a replace of several
        partitions in a format whose polars sink routes rows by a column."""
        replace = write.settings.mode is seam.WriteMode.REPLACE
        return replace and len(files) > 1 and self.target.fmt.routes

    def _stage_routed(
        self, folders: list[str], files: list[_PlannedFile], schema: pl.Schema, write: Write
    ) -> list[tuple[str, Written]]:
        """Stage every partition's file in one pass over the rows (not one pass per partition).

        Each row gets the index of its partition; polars' partitioned sink sends it to that
        partition's staged file. A partition without rows gets its typed, empty file apart.
        """
        assert write.partitions is not None
        paths = [os.path.join(f, o.path.name) for f, o in zip(folders, files, strict=True)]
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
        fmt, batch_rows = self.target.fmt, write.batch_rows
        written = fmt.write(routed, destination, batch_rows=batch_rows)
        staged = []
        for path, planned in zip(paths, files, strict=True):
            if planned.rows == 0:  # no row routed there: its file is typed and empty
                staged.append((path, fmt.write(content.clear(), path, batch_rows=batch_rows)))
            else:
                staged.append((path, written))
        return staged

    def _stage(
        self, folder: str, planned: _PlannedFile, schema: pl.Schema, write: Write
    ) -> tuple[str, Written, int]:
        """Write one file's new content into `folder`: the staged path, what the format says
        of it, and its rows."""
        existing = None
        if write.settings.mode is not seam.WriteMode.REPLACE and planned.path.exists():
            existing = self._scan(planned.path, self._record_of(planned.path))
        content = seam.combine(existing, planned.frame, write.settings, schema)
        staged = os.path.join(folder, planned.path.name)  # the final name: Excel names its sheet
        written = self.target.fmt.write(content, staged, batch_rows=write.batch_rows)
        rows = written.rows
        if rows is None:
            if existing is None:  # a replace writes exactly the validated rows
                rows = planned.rows
            else:  # append and upsert merge with what was there: count what the file holds
                record = FileRecord(schema, written.encoding, staged)
                rows = self.target.fmt.scan(staged, record).select(pl.len()).collect().item()
        return staged, written, rows

    def _publish(self, staged: str, final: UPath, schema: pl.Schema, written: Written) -> None:
        """Publish the data file, then its sidecar naming the data's identity and encoding."""
        published = self.target.store.publish(staged, final)
        if not self.target.fmt.sidecar_schema:
            return
        sidecar = staged + SCHEMA_SUFFIX
        extra = {
            **published.as_json(),
            **({ENCODING: dict(written.encoding)} if written.encoding else {}),
        }
        with open(sidecar, "w") as out:
            out.write(SchemaRecord(schema).dumps(**extra))
        self.target.store.publish(sidecar, final.with_name(final.name + SCHEMA_SUFFIX))
        if not is_local(final) and identity(final) != published:  # no lock there: check
            raise ValueError(
                f"another writer replaced {final} while this write published it; materialize"
                " the asset again (writers of one asset on object storage must take turns)"
            )

    # -- reading ----------------------------------------------------------------------------

    def _scan(self, path: UPath, record: FileRecord | None) -> pl.LazyFrame:
        """A lazy read of one file: ranged reads on S3 where the format allows, else a copy."""
        fmt, options = self.target.fmt, self.target.scan_options
        if options is not None and fmt.scans_remote and not is_local(path):
            return fmt.scan(f"s3://{path.path}", record, storage_options=options)
        return fmt.scan(self.target.store.local_copy(path), record)

    def read(
        self,
        location: dg.AssetKey,
        columns: Sequence[str] | None,
        partitions: seam.PartitionSlice | None,
    ) -> pl.LazyFrame:
        if partitions is None:
            paths = [self.target.path(location, None)]
        else:
            paths = [self.target.path(location, p) for p in partitions.parts]
            self._check_finished(location, paths)
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} file(s) not found, e.g. {missing[0]}; materialize it first"
            )
        frames = [self._scan(p, self._record_of(p)) for p in paths]
        frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        return frame.select(columns) if columns else frame

    def _check_finished(self, key: dg.AssetKey, paths: Sequence[UPath]) -> None:
        """Refuse to read partitions a range write announced and never finished publishing."""
        folder = self.target.folder(key)
        wanted = {relative(folder, p) for p in paths}
        for marker, doc in self.target.store.pending(folder).items():
            unfinished = sorted(wanted & set(doc.get("files", [])))
            if unfinished:
                raise ValueError(
                    f"a write of {len(doc['files'])} partition files that started at"
                    f" {doc.get('started')} has not finished ({marker.name}): {unfinished[:3]}"
                    f"{' ...' if len(unfinished) > 3 else ''} may hold a mix of old and new"
                    " rows; wait for that run, or materialize those partitions again"
                )
