"""The file target: one IO manager for every format, on local disk or any fsspec filesystem."""

from honey_duck.targets.files.target import FileIOManager

__all__ = ["FileIOManager"]
