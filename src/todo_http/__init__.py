"""The todo REST API on aiohttp: serve it standalone or mount it in your own app."""

from todo_http.app import create_api, create_app
from todo_http.settings import JwtSettings, Settings

__all__ = ["JwtSettings", "Settings", "create_api", "create_app"]
