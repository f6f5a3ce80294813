"""The file target: what files of one format under one root keep, and where each asset's live."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg
import polars as pl
from upath import UPath

from honey_duck import seam
from honey_duck.seam import Landing, Target
from honey_duck.targets.files.formats import FileFormat
from honey_duck.targets.files.store import Store

if TYPE_CHECKING:
    from honey_duck.targets.files.session import FileSession


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
        from honey_duck.targets.files.session import FileSession

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

    def relative(self, key: dg.AssetKey, path: UPath) -> str:
        """`path` as named under the asset's folder (a partition file's name in messages)."""
        return relative(self.folder(key), path)


def relative(folder: UPath, path: UPath) -> str:
    """`path` as named under `folder` (a partition file's name in markers and messages)."""
    return path.path[len(folder.path) + 1 :]


def _safe(key: str) -> str:
    """A partition key as a file name; keys that would escape their folder are refused."""
    if not key or key in (".", "..") or any(c in key for c in "/\\\0") or key.startswith("."):
        raise ValueError(f"partition key {key!r} cannot name a file (no '/', '\\', or leading '.')")
    return key
