"""Where an asset lives and which names MongoDB, or this sink, keeps for itself."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

RECORDS = "_honey_duck_schemas"  # each collection's schema record
LOCKS = "_honey_duck_locks"  # each collection's writer lease, while one writes
STAGING = ".__hd_staging."


@dataclass(frozen=True)
class Collection:
    """A collection of a database: where an asset lives."""

    database: str
    name: str

    def __str__(self) -> str:
        return f"{self.database}.{self.name}"


def name_problem(name: str) -> str | None:
    """Why MongoDB cannot take `name` as a field name as it is, or None."""
    if name == "":
        return "an empty field name"
    if "\x00" in name:
        return "a field name cannot hold NUL"
    if name.startswith("$"):
        return "a field name starting with `$` is an operator to MongoDB"
    if "." in name:
        return "a dot in a field name is a path to MongoDB's queries and updates"
    if name == "_id":
        return "`_id` is the document id MongoDB gives each row"
    return None


def collection_problem(name: str) -> str | None:
    """Why `name` cannot be a collection this sink writes, or None."""
    if not name or "\x00" in name or "$" in name:
        return "MongoDB collection names are non-empty and hold no NUL or `$`"
    if name.startswith("system.") or STAGING in name or name in (RECORDS, LOCKS):
        return "reserved by MongoDB or by this sink"
    return None


def staging_name(name: str) -> str:
    """This process's staging collection for `name` (host and PID: a sweep tells whose it is)."""
    return f"{name}{STAGING}{socket.gethostname()}.{os.getpid()}"
