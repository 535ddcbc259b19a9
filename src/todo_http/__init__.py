"""The todo REST API on aiohttp: serve it standalone or mount it in your own app."""

from todo_http.app import create_api, create_app
from todo_http.settings import JwtSettings, Settings
from todo_http.version import __version__

__all__ = ["JwtSettings", "Settings", "__version__", "create_api", "create_app"]
