"""MongoDB's errors told without the values they quote.

A server error's message and details carry data: a duplicate key's `keyValue` and its
`dup key: { id: 3 }`, a bulk write's failed document (`op`, the whole row's bytes). What is
kept is what a person acts on: the error's code and name, the index and its fields, how many
rows failed and the first one's number.
"""

from __future__ import annotations

import re
from typing import Any

DUPLICATE_KEY = 11000


class MongoFailure(RuntimeError):
    """A MongoDB error, its values left out; `transient`: whether a retry may succeed."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def transient_mongo(exc: BaseException) -> bool:
    """Whether pymongo's `exc` may pass on a retry (a reset, a transient transaction error)."""
    from pymongo import errors

    if isinstance(exc, MongoFailure):
        return exc.transient
    if isinstance(exc, errors.OperationFailure):
        labels = ("TransientTransactionError", "RetryableWriteError")
        return any(exc.has_error_label(label) for label in labels)
    return isinstance(exc, errors.AutoReconnect | errors.ServerSelectionTimeoutError)


def _index(error: dict[str, Any]) -> str:
    """The index a duplicate key error names, and its fields (never the key's value)."""
    fields = list(error.get("keyPattern") or {})
    found = re.search(r"index: (\S+)", str(error.get("errmsg", "")))
    name = f"`{found.group(1)}`" if found else "a unique index"
    return f"{name} on {fields}" if fields else name


def describe(exc: BaseException, rows_before: int = 0) -> str:
    """`exc` in one sentence without values; `rows_before`: rows sent before the failed call,
    so that a bulk write's failed row is numbered in the write's own order."""
    from pymongo import errors

    if isinstance(exc, MongoFailure):
        return str(exc)
    if isinstance(exc, errors.BulkWriteError):
        failed = exc.details.get("writeErrors") or []
        if not failed:
            return "a bulk write failed on the server's write concern"
        first, n = failed[0], len(failed)
        rows = f"{n} row{'s' * (n != 1)}, the first is row {rows_before + int(first['index'])}"
        if first.get("code") == DUPLICATE_KEY:
            return f"duplicate key: the unique index {_index(first)} already holds it ({rows})"
        return f"the server refused rows with error {first.get('code')} ({rows})"
    if isinstance(exc, errors.OperationFailure):
        details = exc.details or {}
        if exc.code == DUPLICATE_KEY:
            return f"duplicate key in the unique index {_index(details)} (MongoDB error 11000)"
        return f"MongoDB error {exc.code} ({details.get('codeName', 'no name')})"
    if isinstance(exc, errors.ConnectionFailure):  # hosts and timeouts, no data
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} from pymongo"


def failure(exc: BaseException, rows_before: int = 0) -> MongoFailure:
    """`exc` as a MongoFailure (raise it `from None`: the original quotes values)."""
    return MongoFailure(describe(exc, rows_before), transient_mongo(exc))
