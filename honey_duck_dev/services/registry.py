"""Every server the harness can start, found by module name: `services/<word>.py` is `<word>`.

The word is the one its sinks name in `DEV_SERVICES`, its compose service and its test fixture
(`<word>_server`) use. A server module holds one `Service` subclass whose `name` is its word.
Modules are imported on first use, so a server needs only its own client libraries.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from honey_duck_dev.services.lifecycle import Service

HELPERS = frozenset({"lifecycle", "registry"})  # modules of the harness that are not servers

SERVICES: tuple[str, ...] = tuple(
    sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not info.name.startswith("_") and info.name not in HELPERS
    )
)


def service(name: str) -> type[Service]:
    """The server class of `services/<name>.py`."""
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    module = importlib.import_module(f"{__package__}.{name}")
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Service) and cls.__module__ == module.__name__
    ]
    if len(found) != 1 or found[0].name != name:
        raise TypeError(f"{module.__name__} must hold one Service whose name is {name!r}")
    return found[0]
