"""One line for a failed SQLite call on one of the host's database files (run journal, measurement and accuracy
caches): the file, what went wrong in words, and what to do. Used as a class decorator on the stores' classes."""
from __future__ import annotations

import functools
import sqlite3
from typing import Callable, Type, TypeVar

from fleetnas.host.errors import FleetnasError

T = TypeVar("T")


def database_error(path: object, exc: Exception, damaged_advice: str) -> str:
    """``damaged_advice``: what to do when the file is damaged (the other cases say it themselves)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in lowered or "busy" in lowered):
        return f"{path} is in use by another process ({text}): wait for it to finish, or stop it"
    if isinstance(exc, sqlite3.OperationalError) and any(
            w in lowered for w in ("readonly", "read-only", "unable to open", "disk i/o", "full", "permission")):
        return f"cannot use {path} ({text}): check the disk's free space and the file's permissions"
    return f"{path} is damaged ({text}): {damaged_advice}"


def database_errors_as(error_type: Type[FleetnasError], damaged_advice: str) -> Callable[[T], T]:
    """Class decorator: in every public method, sqlite3.DatabaseError and unreadable stored JSON (a ValueError)
    become one ``error_type`` line naming ``self.path``."""
    def decorate(cls):
        def wrap(method):
            @functools.wraps(method)
            def guarded(self, *args, **kwargs):
                try:
                    return method(self, *args, **kwargs)
                except (sqlite3.DatabaseError, ValueError) as exc:   # json.JSONDecodeError is a ValueError
                    raise error_type(database_error(self.path, exc, damaged_advice)) from exc
            return guarded

        for name, value in list(vars(cls).items()):
            if callable(value) and not name.startswith("_"):
                setattr(cls, name, wrap(value))
        return cls
    return decorate
