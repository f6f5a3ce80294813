"""The file target: one IO manager for every format, on local disk or any fsspec filesystem.

`manager` (FileIOManager), `target` (where files live, what each format keeps), `session`
(the contract's verbs on files), `store` (staging, publishing, locks, leftovers) and `formats`
(one module per format).
"""

from honey_duck.targets.files.manager import FileIOManager
from honey_duck.targets.files.target import FileTarget

__all__ = ["FileIOManager", "FileTarget"]
