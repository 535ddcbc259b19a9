"""Why the server cannot start, in one line an operator can act on.

``serve``, ``migrate``, the worker processes and the gunicorn factory all report a
failure to start through ``startup_errors``, so the same cause reads the same whichever
of them met it: the database named (its password redacted), and the reason in words
that do not depend on the event loop or on whether SQLAlchemy or the store's own
driver saw it first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from todo_core import SchemaNotCurrent, StoreUnavailable, TodoError
from todo_core.engine import sqlite_code
from todo_core.urls import parse_database_url, redacted

__all__ = [
    "StartupError",
    "database_name",
    "describe_error",
    "preflight",
    "sqlite_file",
    "startup_errors",
]

_SQLITE_CANTOPEN: Final = 14
_MAX_CAUSES: Final = 10  # a cycle in a chain of causes must not hang the report


class StartupError(Exception):
    """The server cannot start; the message is one line for the operator."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` (absolute), or None: another backend, memory, a URI."""
    if url.startswith("memory:"):
        return None
    try:
        target = parse_database_url(url)
    except ValueError:
        return None
    if target.backend != "sqlite" or target.uri or target.in_memory:
        return None
    return Path(target.path)


def database_name(url: str) -> str:
    """``url`` for logs and messages: its password as ``***``, a relative SQLite file's
    absolute path added (the working directory decides which file it is)."""
    name = redacted(url)
    path = sqlite_file(url)
    if path is not None and str(path) not in url:
        name = f"{name} ({path})"
    return name


def _root(error: BaseException) -> BaseException:
    root = error
    for _ in range(_MAX_CAUSES):
        cause = root.__cause__ or root.__context__
        if cause is None:
            break
        root = cause
    return root


def _detail(error: BaseException) -> str:
    # From errno rather than the text: asyncio writes "Connect call failed (host, port)"
    # where uvloop writes "Connection refused", for the same refusal.
    if isinstance(error, OSError) and error.errno is not None:
        return f"[Errno {error.errno}] {os.strerror(error.errno)}"
    return str(error) or type(error).__name__


def _cannot_open(path: Path) -> str | None:
    """Why SQLite cannot open ``path``, as far as the file system tells, in one line."""
    problem = _sqlite_problem(path)
    return None if problem is None else f"cannot open the SQLite database {path}: {problem}"


def _sqlite_problem(path: Path) -> str | None:
    directory = path.parent
    if not directory.exists():
        return f"the directory {directory} does not exist"
    if not directory.is_dir():
        return f"{directory} is not a directory"
    if path.is_dir():
        return "it is a directory"
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return "permission denied: the file is not readable and writable by this user"
    elif not os.access(directory, os.W_OK | os.X_OK):
        return f"permission denied: this user cannot create files in {directory}"
    return None


def preflight(url: str) -> bool:
    """Check ``url`` before anything opens it; returns whether its database lives inside
    one process (``memory://``, an in-memory SQLite).

    Raises ``StartupError`` for a URL this package does not read, and for a SQLite file
    that cannot be opened, saying why: the drivers only say "unable to open database
    file", and SQLAlchemy's thread for it may outlive the event loop with a traceback.
    """
    if url.startswith("memory:"):
        return True
    with startup_errors():
        in_memory = parse_database_url(url).in_memory
    path = sqlite_file(url)
    problem = None if path is None else _cannot_open(path)
    if problem is not None:
        raise StartupError(problem)
    return in_memory


def describe_error(error: BaseException, database_url: str | None = None) -> str:
    """``error`` and its root cause in one line; ``database_url``: what was being opened.

    The store's own messages name only the error's type (they may reach clients); the
    operator starting the server also wants the driver's text, which names no secret.
    """
    if isinstance(error, SchemaNotCurrent):  # the store's remedy is the library's; ours:
        return (
            f"the database schema is at revision {error.current or 'none'}, this server "
            f"needs {error.required}: run `todo-http migrate`"
        )
    root = _root(error)
    if isinstance(error, StoreUnavailable):
        path = sqlite_file(database_url) if database_url is not None else None
        if path is not None and sqlite_code(root) == _SQLITE_CANTOPEN:
            problem = _cannot_open(path)
            if problem is not None:
                return problem
        where = "" if database_url is None else f" {database_name(database_url)}"
        detail = _detail(root) if root is not error else str(error)
        return " ".join(f"cannot reach the database{where}: {detail}".split())
    message = str(error) or type(error).__name__
    if root is not error:
        detail = _detail(root)
        if detail not in message:
            message = f"{message} ({detail})"
    return " ".join(message.split())


@contextmanager
def startup_errors(database_url: str | None = None) -> Iterator[None]:
    """Turn the failures an operator can fix (database, URL, address) into ``StartupError``.

    ``database_url``: the database being opened, named in the message when it cannot be
    reached. Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except (TodoError, ValueError, OSError) as error:
        raise StartupError(describe_error(error, database_url)) from error
