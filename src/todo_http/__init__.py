"""The todo REST API on aiohttp: serve it standalone or mount it in your own app.

It comes with the ``server`` extra (``pip install 'todo-core[server]'``). The names
below are imported on first use, so that ``todo-http`` (``todo_http.__main__``) can say
what to install where aiohttp is missing instead of failing on this import.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
    from todo_http.app import create_api, create_app
    from todo_http.settings import JwtSettings, Settings
    from todo_http.version import __version__
    from todo_http.webapp import create_webapp

__all__ = ["JwtSettings", "Settings", "__version__", "create_api", "create_app", "create_webapp"]

_HOMES: typing.Final = {
    "JwtSettings": "todo_http.settings",
    "Settings": "todo_http.settings",
    "create_api": "todo_http.app",
    "create_app": "todo_http.app",
    "create_webapp": "todo_http.webapp",
    "__version__": "todo_http.version",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'todo_http' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found by the ordinary lookup from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
