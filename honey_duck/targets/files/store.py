"""Where the file sink's bytes go: staging, atomic publishing, locks, and leftovers of dead writers.

- Every file is written into a private staging folder, then published with one rename (local
  disk) or one PUT (object storage): readers see the old file or the new one.
- Writers of one asset on local disk serialise on a lock file beside it (`flock`, released by
  the kernel when a writer dies, SIGKILL included). Object storage has no such lock: there a
  writer checks after publishing that the file is still its own and fails clearly if not.
- Each published file's identity (its size and a digest of its ends) is recorded by whoever
  describes it (the schema sidecar), so a sidecar beside another version of the data is
  detected, never trusted.
- A write of several files (a partition range) announces them in a marker first and removes
  it once all are published: a range that did not finish is reported on read.
- Staging folders, scratch copies and incomplete multipart uploads of writers that died are
  reclaimed by the next write of the same asset.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from upath import UPath

from honey_duck import seam

HOST = socket.gethostname().replace(".", "-")  # leftover names are split on dots
PENDING_PREFIX = ".publishing."  # `.publishing.<writer>.json` in an asset's folder
SCRATCH = Path(tempfile.gettempdir()) / "honey_duck_files"  # local copies for remote files


def is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


def writer_id() -> str:
    """This writer, as its leftovers are named: host, PID and a random part."""
    return f"{HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def _dead(name: str, modified: float, stale_after: float, own_too: bool = False) -> bool:
    """Whether the writer that named a leftover `<...>.<host>.<pid>.<rand>.<ext>` is gone.

    On this host its PID decides; a leftover of another host is dead once it is older than
    `stale_after` seconds (a shared disk between hosts, where no PID can be checked).
    """
    parts = name.split(".")
    try:
        host, pid = parts[-4], int(parts[-3])
    except (IndexError, ValueError):
        return time.time() - modified > stale_after
    if host != HOST or (own_too and pid == os.getpid()):
        return time.time() - modified > stale_after
    return not seam.pid_alive(pid)


SAMPLE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Identity:
    """What tells one version of a file from another: its size and a digest of its ends.

    The digest covers the first and last 64 KiB (where a text file's header and first rows
    are), so it is cheap to check on every read, also on object storage, and the same bytes
    always give the same identity (a replace with the same rows writes the same sidecar).
    """

    size: int
    digest: str

    def as_json(self) -> dict[str, Any]:
        return {"data_bytes": self.size, "data_digest": self.digest}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Identity | None:
        if "data_digest" not in doc:
            return None
        return cls(int(doc["data_bytes"]), str(doc["data_digest"]))


def identity(path: UPath | str) -> Identity:
    """The identity of the file at `path` (a local path or a UPath) now."""
    with open(path, "rb") if isinstance(path, str) else path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        tail = b""
        if size > SAMPLE_BYTES:
            handle.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
            tail = handle.read()
    digest = hashlib.blake2b(head + b"|" + tail, digest_size=16)
    digest.update(str(size).encode())
    return Identity(size, digest.hexdigest())


class Store:
    """Staging, publishing, locking and reclaiming for files under one root."""

    def __init__(self, stale_after: float = 6 * 3600) -> None:
        self.stale_after = stale_after

    # -- locks ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, anchor: UPath) -> Iterator[None]:
        """Hold the lock of the asset at `anchor` (local disk; a no-op on object storage).

        The lock file `.<name>.lock` beside the asset is removed on release, so that nothing
        stays behind; a waiter that then holds a removed file's lock sees that its file is no
        longer the one at the path, and takes the lock again.
        """
        if not is_local(anchor):
            yield
            return
        path = Path(anchor.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.parent / f".{path.name}.lock"
        while True:
            handle = open(lock, "a")  # noqa: SIM115 (held across the yield below)
            fcntl.flock(handle, fcntl.LOCK_EX)  # waits for a live writer; a dead one holds none
            try:
                if os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            handle.close()
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            handle.close()  # closing releases the lock

    # -- staging ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self, final: UPath) -> Iterator[str]:
        """A private folder to write `final`'s new content into, removed afterwards.

        Beside `final` on local disk (so publishing is a rename on one filesystem), in a
        scratch folder otherwise. Leftovers of dead writers there are removed first.
        """
        if is_local(final):
            parent = Path(final.parent.path)
            parent.mkdir(parents=True, exist_ok=True)
            self._sweep(parent, f".{final.name}.", ".tmp")
            folder = parent / f".{final.name}.{writer_id()}.tmp"
        else:
            SCRATCH.mkdir(parents=True, exist_ok=True)
            self._sweep(SCRATCH, "stage.", ".tmp")
            folder = SCRATCH / f"stage.{writer_id()}.tmp"
        folder.mkdir()
        try:
            yield str(folder)
        finally:
            # a writer thread that outlives a failed write (polars sinks stream in the
            # background) may still be closing a file: retry until the folder is gone
            for _ in range(20):
                shutil.rmtree(folder, ignore_errors=True)
                if not folder.exists():
                    break
                time.sleep(0.05)

    def _sweep(self, folder: Path, prefix: str, suffix: str, own_too: bool = False) -> None:
        """Remove `prefix...suffix` entries of `folder` whose writers are dead (`own_too`:
        this process's own too, once older than `stale_after`)."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    modified = entry.stat(follow_symlinks=False).st_mtime
                    if _dead(entry.name, modified, self.stale_after, own_too):
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.remove(entry.path)

    def sweep_uploads(self, anchor: UPath) -> int:
        """Abort incomplete multipart uploads under the asset at `anchor` older than
        `stale_after` (a writer killed mid-upload leaves one, billed until aborted)."""
        if is_local(anchor) or anchor.protocol not in ("s3", "s3a"):
            return 0
        fs = anchor.fs
        bucket, _, key = anchor.path.partition("/")
        cutoff = datetime.now(UTC) - timedelta(seconds=self.stale_after)
        aborted = 0
        try:
            uploads = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key)
        except Exception:  # a server without the call: nothing to reclaim there
            return 0
        for upload in uploads.get("Uploads") or []:
            initiated = upload.get("Initiated")
            if isinstance(initiated, datetime) and initiated < cutoff:
                with contextlib.suppress(Exception):
                    fs.call_s3(
                        "abort_multipart_upload",
                        Bucket=bucket,
                        Key=upload["Key"],
                        UploadId=upload["UploadId"],
                    )
                    aborted += 1
        return aborted

    # -- publishing -------------------------------------------------------------------------

    def publish(self, staged: str, final: UPath) -> Identity:
        """Move a staged file to `final` in one step; return the published file's identity."""
        published = identity(staged)
        if is_local(final):
            os.replace(staged, final.path)  # atomic on one filesystem
        else:
            final.fs.put_file(staged, final.path)  # an object PUT is atomic for readers
        return published

    def local_copy(self, path: UPath) -> str:
        """A local file with `path`'s bytes (the path itself when already local)."""
        if is_local(path):
            return path.path
        SCRATCH.mkdir(parents=True, exist_ok=True)
        # a long-lived process (a code server) reads for days: its own old copies go too
        self._sweep(SCRATCH, "copy.", path.suffix or ".bin", own_too=True)
        local = SCRATCH / f"copy.{writer_id()}{path.suffix or '.bin'}"
        atexit.register(lambda: local.unlink(missing_ok=True))
        path.fs.get_file(path.path, str(local))
        return str(local)

    # -- range markers ----------------------------------------------------------------------

    def announce(self, folder: UPath, files: Sequence[str]) -> UPath:
        """Record, before publishing, the files (relative to `folder`) a write will replace."""
        marker = folder / f"{PENDING_PREFIX}{writer_id()}.json"
        doc = {"files": sorted(files), "started": datetime.now(UTC).isoformat()}
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(doc))
        return marker

    def pending(self, folder: UPath) -> dict[UPath, dict[str, Any]]:
        """The markers of range writes under `folder` that have not finished (or died)."""
        if not folder.exists():
            return {}
        found = {}
        for path in folder.iterdir():
            if path.name.startswith(PENDING_PREFIX) and path.name.endswith(".json"):
                with contextlib.suppress(FileNotFoundError, ValueError):
                    found[path] = json.loads(path.read_text())
        return found

    def settle(self, folder: UPath, marker: UPath | None, published: Sequence[str]) -> None:
        """After a successful publish: drop our marker, and the files we rewrote from others'.

        A marker left by a writer that died names files that may be half-replaced; once this
        write has published them again, they are whole, so they leave that marker too.
        """
        if marker is not None:
            marker.unlink(missing_ok=True)
        done = set(published)
        for path, doc in self.pending(folder).items():
            left = [f for f in doc.get("files", []) if f not in done]
            if len(left) == len(doc.get("files", [])):
                continue
            if left:
                path.write_text(json.dumps({**doc, "files": left}))
            else:
                path.unlink(missing_ok=True)
