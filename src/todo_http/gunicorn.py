"""The application factory for gunicorn with aiohttp's worker class.

```console
todo-http migrate
gunicorn 'todo_http.gunicorn:app' --worker-class aiohttp.GunicornWebWorker \\
  --workers 2 --bind 127.0.0.1:8080
```

aiohttp's worker awaits ``app()`` in each worker process, after gunicorn's fork, so
each worker opens its own store and pool. The settings come from the environment
exactly as ``todo-http serve``'s do (``DATABASE_URL``, ``TODO_SECRET``,
``TODO_CORS_ORIGINS``, ``TODO_AUTH`` and its keys; see docs/security.md), except that
the workers never create or upgrade the schema: run ``todo-http migrate`` once before
starting them, so that they do not race to.

The factory opens the store itself, before it returns, so that a database it cannot
use stops gunicorn with one line saying why (and, for a schema not migrated, naming
``todo-http migrate``), rather than a traceback from each worker; and it never creates
a SQLite file that ``migrate`` has not.
gunicorn comes with the ``gunicorn`` extra (``pip install 'todo-core[gunicorn]'``); this module
imports it only to report such a failure.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import AsyncExitStack
from typing import Final

from aiohttp import web

from todo_core import StoreError, StoreUnavailable
from todo_http.app import create_app, open_settings_store
from todo_http.cli import environment_settings
from todo_http.server import freeze_startup_heap
from todo_http.startup import StartupError, preflight, sqlite_file, startup_errors

__all__ = ["app"]

_MIGRATE: Final = "todo-http migrate"


async def app() -> web.Application:
    """``create_app`` with the settings of the environment; the schema must be current.

    Raises gunicorn's ``AppImportError`` (which it prints as one line, then stops), or
    ``StartupError`` where gunicorn is not installed.
    """
    stack = AsyncExitStack()
    try:
        settings = dataclasses.replace(environment_settings(os.environ), create_schema=False)
        _require_a_migrated_file(settings.database_url)
        with startup_errors(settings.database_url):
            store = await stack.enter_async_context(open_settings_store(settings))
    except StartupError as error:
        raise _cannot_load(_with_advice(error)) from error
    application = create_app(store, settings=settings)

    async def close_store(_: web.Application) -> None:
        await stack.aclose()

    # After the API's own cleanup (create_app registered it first), which uses the store.
    application.on_cleanup.append(close_store)
    freeze_startup_heap()  # as todo-http serve does: aiohttp's worker serves it next
    return application


def _require_a_migrated_file(url: str) -> None:
    preflight(url)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        # Opening it would create it, empty: a file without a schema, left behind.
        raise StartupError(
            f"the SQLite database {path} does not exist: run `{_MIGRATE}` with the same "
            "DATABASE_URL before starting gunicorn, whose workers never create the schema"
        )


def _with_advice(error: StartupError) -> str:
    message = str(error)
    cause = error.__cause__
    # A database that answers but refuses the store: its schema is missing or older.
    schema = isinstance(cause, StoreError) and not isinstance(cause, StoreUnavailable)
    if schema and _MIGRATE not in message:
        message += (
            f"; run `{_MIGRATE}` before starting gunicorn, whose workers never create or "
            "upgrade the schema"
        )
    return message


def _cannot_load(message: str) -> Exception:
    """The error that makes gunicorn print ``message`` as one line, without a traceback,
    and stop (exit status 4) instead of booting worker after worker."""
    try:
        from gunicorn.errors import AppImportError  # type: ignore[import-untyped]
    except ImportError:  # called outside gunicorn, which is not a dependency
        return StartupError(message)
    error: Exception = AppImportError(f"todo_http.gunicorn: cannot start: {message}")
    return error
