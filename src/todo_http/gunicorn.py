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
gunicorn comes with the ``gunicorn`` extra (``pip install 'todo-core[gunicorn]'``); this module
does not import it.
"""

from __future__ import annotations

import dataclasses
import os

from aiohttp import web

from todo_http.app import create_app
from todo_http.cli import environment_settings

__all__ = ["app"]


async def app() -> web.Application:
    """``create_app`` with the settings of the environment; the schema must be current."""
    settings = environment_settings(os.environ)
    return create_app(settings=dataclasses.replace(settings, create_schema=False))
