"""The ``todo-http`` command: ``serve`` the API, or ``migrate`` a database.

The only module that reads the environment: everything else receives ``Settings``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web

from todo_core.engine import create_engine
from todo_core.migrate import upgrade_schema
from todo_http.app import create_app
from todo_http.settings import DEFAULT_DATABASE_URL, Settings

__all__ = ["main"]


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-http", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database-url",
        default=environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        help="postgresql://... or sqlite:///path (env DATABASE_URL; default %(default)s)",
    )
    serve = commands.add_parser("serve", parents=[database], help="serve the REST API")
    serve.add_argument("--host", default="127.0.0.1", help="default %(default)s")
    serve.add_argument("--port", type=int, default=8080, help="default %(default)s")
    serve.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        default=[o for o in environ.get("TODO_CORS_ORIGINS", "").split(",") if o.strip()],
        help="allow this browser origin (repeatable; env TODO_CORS_ORIGINS, comma-separated)",
    )
    commands.add_parser("migrate", parents=[database], help="create or upgrade the schema")
    return parser


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_schema(engine)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    environ = os.environ if environ is None else environ
    arguments = _parser(environ).parse_args(argv)
    if arguments.command == "migrate":
        asyncio.run(_migrate(arguments.database_url))
        print(f"schema is current on {arguments.database_url}")
        return 0
    settings = Settings(
        database_url=arguments.database_url,
        cursor_secret=environ.get("TODO_SECRET") or None,
        cors_origins=tuple(origin.strip() for origin in arguments.cors_origins),
    )
    web.run_app(create_app(settings=settings), host=arguments.host, port=arguments.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
