"""The ``todo-http`` command: ``serve`` the API, or ``migrate`` a database.

The only module that reads the environment (``DATABASE_URL``, ``TODO_SECRET``,
``TODO_CORS_ORIGINS``, ``TODO_PURGE_INTERVAL``, ``TODO_RETENTION_DAYS``, ``TODO_UI``,
``TODO_AUTH`` and the ``TODO_JWT_*``
and ``TODO_JWKS_*`` keys and claims), for ``serve`` and for the gunicorn factory
(``todo_http.gunicorn``): everything else receives ``Settings`` and ``ServeOptions``.
docs/configuration.md describes every option, docs/security.md the authentication.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeVar, get_args
from urllib.parse import urlsplit

from todo_core.engine import EngineOptions
from todo_core.urls import redacted
from todo_http.auth import JwtAuthenticator
from todo_http.logs import LOG_FORMATS, configure_logging
from todo_http.server import ServeOptions, bind_sockets, run_workers, serve
from todo_http.settings import DEFAULT_DATABASE_URL, AuthMode, JwtSettings, Settings
from todo_http.startup import StartupError, database_name, preflight, startup_errors
from todo_http.version import DISTRIBUTION, UNKNOWN_VERSION, __version__

__all__ = [
    "environment_settings",
    "exposure_warnings",
    "main",
    "parse_arguments",
    "parser",
    "serve_configuration",
    "version_text",
]

log = logging.getLogger("todo_http.server")

# scheme://host[:port] and nothing else: browsers send exactly that in Origin, so an
# origin written with a path or a trailing slash would silently never match.
_ORIGIN: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+")
_MIN_SECRET_BYTES: Final = 16
_AUTH_MODES: Final[tuple[AuthMode, ...]] = get_args(AuthMode)
# The variables that name where token keys come from: set while authentication is off,
# they mean an operator who believes the API is protected when it is not.
_KEY_VARIABLES: Final = ("TODO_JWT_SECRET", "TODO_JWKS_URL", "TODO_JWKS_FILE")
# A century: beyond any need, and far from where a timestamp plus the window overflows.
_MAX_RETENTION_DAYS: Final = 36_500

Value = TypeVar("Value")


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _port(text: str) -> int:
    value = _count(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("must be at most 65535")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number of seconds, at least 0")
    return value


def _days(text: str) -> int:
    value = _count(1)(text)
    if value > _MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(f"must be at most {_MAX_RETENTION_DAYS} days")
    return value


def _origin(text: str) -> str:
    origin = text.strip()
    if _ORIGIN.fullmatch(origin) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an origin: write scheme://host[:port], "
            "e.g. https://app.example.com, with no path or trailing slash"
        )
    return origin


def parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The argument parser; defaults come from ``environ`` where an option has a variable."""
    top = argparse.ArgumentParser(
        prog="todo-http",
        description="Serve the todo REST API, or create and upgrade its database schema.",
    )
    top.add_argument("--version", action="version", version=version_text())
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database-url",
        metavar="URL",
        default=environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="postgresql://... or sqlite:///path (env DATABASE_URL; default %(default)s, "
        "a file in the working directory)",
    )
    serve_command = commands.add_parser(
        "serve",
        parents=[database],
        help="serve the REST API (creates or upgrades the schema first)",
        description="Serve the REST API until SIGTERM or SIGINT, then stop gracefully.",
    )
    serve_command.add_argument("--host", default="127.0.0.1", help="default %(default)s")
    serve_command.add_argument("--port", type=_port, default=8080, help="default %(default)s")
    serve_command.add_argument(
        "--workers",
        type=_count(1),
        default=1,
        metavar="N",
        help="serve from N processes on the one port, each with its own database pool "
        "(default %(default)s)",
    )
    serve_command.add_argument(
        "--cors-origin",
        type=_origin,
        action="append",
        dest="cors_origins",
        metavar="ORIGIN",
        help="allow this browser origin, e.g. https://app.example.com (repeatable; "
        "replaces env TODO_CORS_ORIGINS, a comma-separated list; default none: no CORS)",
    )
    serve_command.add_argument(
        "--auth",
        choices=_AUTH_MODES,
        help="jwt: every task request needs Authorization: Bearer <JWT>, checked with the "
        "keys of TODO_JWT_SECRET, TODO_JWKS_URL or TODO_JWKS_FILE (docs/security.md); "
        "none: no authentication, for trusted networks only (env TODO_AUTH; default none)",
    )
    serve_command.add_argument(
        "--ui",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve the web app at / (docs/webapp.md); --no-ui: / redirects to the API's "
        "docs page instead (env TODO_UI=true|false; default on)",
    )
    serve_command.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="log lines on stderr as text or as one JSON object per line (default %(default)s)",
    )
    serve_command.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=ServeOptions().shutdown_timeout,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long requests in flight may take to finish "
        "(default %(default)g)",
    )
    serve_command.add_argument(
        "--keepalive-timeout",
        type=_seconds,
        default=ServeOptions().keepalive_timeout,
        metavar="SECONDS",
        help="close idle keep-alive connections after this long; keep it above a load "
        "balancer's idle timeout (default %(default)g)",
    )
    serve_command.add_argument(
        "--body-timeout",
        type=_timeout,
        metavar="SECONDS",
        help="answer 408 and close the connection when a request's body has not fully "
        "arrived this long after its headers (env TODO_BODY_TIMEOUT; default "
        f"{Settings().body_timeout:g})",
    )
    serve_command.add_argument(
        "--retention-days",
        type=_days,
        metavar="DAYS",
        help="keep trashed tasks, and the records of deletions the change feed needs, this "
        "long; a feed token older than this is 410 (env TODO_RETENTION_DAYS; default "
        f"{Settings().retention_days})",
    )
    serve_command.add_argument(
        "--max-connections",
        type=_count(1),
        default=ServeOptions().max_connections,
        metavar="N",
        help="open connections per process; at the limit the longest idle one is closed "
        "for a new one (default %(default)s, lowered to what the open-file limit allows)",
    )
    serve_command.add_argument(
        "--max-streams",
        type=_count(1),
        default=Settings().max_streams,
        metavar="N",
        help="open event streams per process, past which a new one is refused with 429 "
        "(default %(default)s; lowered to leave a sixth of --max-connections to other "
        "requests)",
    )
    serve_command.add_argument(
        "--max-streams-per-user",
        type=_count(1),
        default=Settings().max_streams_per_user,
        metavar="N",
        help="open event streams per user and process, past which a new one is refused "
        "with 429 (default %(default)s)",
    )
    serve_command.add_argument(
        "--pool-size",
        type=_count(1),
        metavar="N",
        help="with --max-overflow, the most database connections each process opens "
        f"(default {EngineOptions().pool_size})",
    )
    serve_command.add_argument(
        "--max-overflow",
        type=_count(0),
        metavar="N",
        help="extra connections each process may open under load "
        f"(default {EngineOptions().max_overflow})",
    )
    serve_command.add_argument(
        "--prepared-statements",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="named prepared statements on PostgreSQL, so the server keeps each query's "
        "plan. Default: on each connection that proves to be direct, not behind a pooler. "
        "--prepared-statements: on every connection (a pooler must track them: PgBouncer "
        ">= 1.21 with max_prepared_statements > 0); --no-prepared-statements: on none",
    )
    migrate_command = commands.add_parser(
        "migrate",
        parents=[database],
        help="create or upgrade the database schema, then exit",
        description="Create the schema, or upgrade it to this version's, in one transaction.",
    )
    # Which command's parser read the arguments: an option it does not know is reported
    # with that command's usage (parse_arguments), which lists the options it does know.
    for command in (serve_command, migrate_command):
        command.set_defaults(command_parser=command)
    return top


def parse_arguments(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """``argv`` parsed; a usage error exits with status 2 and the usage of its command.

    argparse itself would report an option unknown to ``serve`` with the top-level usage,
    which says nothing of ``serve``'s options.
    """
    arguments, unknown = parser(environ).parse_known_args(argv)
    if unknown:
        arguments.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return arguments


def version_text() -> str:
    """What ``todo-http --version`` prints."""
    if __version__ == UNKNOWN_VERSION:
        return (
            f"todo-http, version unknown: the {DISTRIBUTION!r} distribution is not installed "
            "(running from a source tree?)"
        )
    return f"todo-http {__version__}"


def _cors_origins(given: list[str] | None, environ: Mapping[str, str]) -> tuple[str, ...]:
    if given is not None:
        return tuple(dict.fromkeys(given))
    listed = [item for item in environ.get("TODO_CORS_ORIGINS", "").split(",") if item.strip()]
    try:
        return tuple(dict.fromkeys(_origin(item) for item in listed))
    except argparse.ArgumentTypeError as error:
        raise StartupError(f"TODO_CORS_ORIGINS: {error}") from None


def _cursor_secret(environ: Mapping[str, str]) -> str | None:
    secret = environ.get("TODO_SECRET") or None
    # The store refuses shorter keys too (todo_core.listing.CursorCodec); checked here
    # so that the message names the variable, before anything is bound or migrated.
    if secret is not None and len(secret.encode()) < _MIN_SECRET_BYTES:
        raise StartupError(
            f"TODO_SECRET must be at least {_MIN_SECRET_BYTES} bytes; make one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return secret


def _timeout(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _environment_value(
    environ: Mapping[str, str],
    name: str,
    default: Value,
    parse: Callable[[str], Value],
) -> Value:
    """The value of the variable ``name`` as ``parse`` reads it, or ``default`` where it
    is unset."""
    given = environ.get(name) or None
    if given is None:
        return default
    try:
        return parse(given)
    except argparse.ArgumentTypeError as error:
        raise StartupError(f"{name}: {error}") from None


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, not {text!r}")


def _auth_mode(given: AuthMode | None, environ: Mapping[str, str]) -> AuthMode:
    chosen = given or environ.get("TODO_AUTH") or "none"
    for mode in _AUTH_MODES:
        if chosen == mode:
            return mode
    raise StartupError(f"TODO_AUTH must be one of {', '.join(_AUTH_MODES)}, not {chosen!r}")


def _jwt_settings(environ: Mapping[str, str]) -> JwtSettings:
    listed = environ.get("TODO_JWT_ALGORITHMS", "").split(",")
    return JwtSettings(
        # From the environment only, like TODO_SECRET.
        secret=environ.get("TODO_JWT_SECRET") or None,
        jwks_url=environ.get("TODO_JWKS_URL") or None,
        jwks_file=environ.get("TODO_JWKS_FILE") or None,
        algorithms=tuple(name.strip() for name in listed if name.strip()),
        issuer=environ.get("TODO_JWT_ISSUER") or None,
        audience=environ.get("TODO_JWT_AUDIENCE") or None,
        leeway=_environment_value(environ, "TODO_JWT_LEEWAY", JwtSettings().leeway, _seconds),
    )


def _check_auth(settings: Settings, environ: Mapping[str, str]) -> None:
    if settings.auth == "none":
        configured = [name for name in _KEY_VARIABLES if environ.get(name)]
        if configured:
            raise StartupError(
                f"{configured[0]} is set but authentication is off: serve with --auth jwt "
                "(or TODO_AUTH=jwt), or unset it"
            )
        return
    # Built once here only to be checked: a bad key source stops the start with one line,
    # before any port is bound, rather than failing in every worker.
    try:
        JwtAuthenticator(settings.jwt)
    except ValueError as error:
        raise StartupError(str(error)) from None


def environment_settings(
    environ: Mapping[str, str],
    *,
    database_url: str | None = None,
    cors_origins: list[str] | None = None,
    store_options: Mapping[str, object] | None = None,
    auth: AuthMode | None = None,
    body_timeout: float | None = None,
    retention_days: int | None = None,
    ui: bool | None = None,
) -> Settings:
    """``Settings`` from ``DATABASE_URL``, ``TODO_SECRET``, ``TODO_CORS_ORIGINS``,
    ``TODO_PURGE_INTERVAL``, ``TODO_RETENTION_DAYS``, ``TODO_UI``, ``TODO_AUTH`` and, for
    ``--auth jwt``, the ``TODO_JWT_*`` and ``TODO_JWKS_*`` variables.

    ``database_url``, ``cors_origins``, ``auth``, ``body_timeout``,
    ``retention_days`` and ``ui``, when given (from the command line),
    win over their variables. Raises ``StartupError`` for a short secret, a bad origin,
    or an authentication set-up that cannot work (a missing, doubled, unreadable or
    weak key source, an algorithm that does not fit it).
    """
    settings = Settings(
        database_url=database_url or environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        # From the environment only: a secret on the command line is visible to every
        # user of the machine through ps.
        cursor_secret=_cursor_secret(environ),
        cors_origins=_cors_origins(cors_origins, environ),
        store_options=dict(store_options or {}),
        auth=_auth_mode(auth, environ),
        jwt=_jwt_settings(environ),
        purge_interval=_environment_value(
            environ, "TODO_PURGE_INTERVAL", Settings().purge_interval, _seconds
        ),
        body_timeout=body_timeout
        or _environment_value(
            environ, "TODO_BODY_TIMEOUT", Settings().body_timeout, parse=_timeout
        ),
        retention_days=retention_days
        or _environment_value(
            environ, "TODO_RETENTION_DAYS", Settings().retention_days, parse=_days
        ),
        ui=_environment_value(environ, "TODO_UI", Settings().ui, parse=_flag) if ui is None else ui,
    )
    _check_auth(settings, environ)
    return settings


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name, or "" for every interface: it may be reachable
        return False


def exposure_warnings(settings: Settings, options: ServeOptions) -> list[str]:
    """What an operator must hear before the server opens to others, one line each."""
    warnings: list[str] = []
    if settings.auth == "none" and not _loopback(options.host):
        warnings.append(
            f"serving WITHOUT AUTHENTICATION on {options.host or 'every interface'}: the "
            "API is open to anyone who can reach it, every user's tasks included; serve "
            "with --auth jwt (docs/security.md), or keep it on a trusted network"
        )
    url = urlsplit(settings.jwt.jwks_url or "")
    if settings.auth == "jwt" and url.scheme == "http" and not _loopback(url.hostname or ""):
        warnings.append(
            f"TODO_JWKS_URL {redacted(url.geturl())} is plain http: anyone on the way can "
            "replace the keys and forge tokens; use https://"
        )
    return warnings


def serve_configuration(
    arguments: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[Settings, ServeOptions]:
    """What ``serve`` runs with, from its parsed ``arguments`` and the environment."""
    store_options: dict[str, object] = {}
    if arguments.pool_size is not None:
        store_options["pool_size"] = arguments.pool_size
    if arguments.max_overflow is not None:
        store_options["max_overflow"] = arguments.max_overflow
    if arguments.prepared_statements is not None:
        store_options["prepared_statements"] = arguments.prepared_statements
    settings = environment_settings(
        environ,
        database_url=arguments.database_url,
        cors_origins=arguments.cors_origins,
        store_options=store_options,
        auth=arguments.auth,
        body_timeout=arguments.body_timeout,
        retention_days=arguments.retention_days,
        ui=arguments.ui,
    )
    settings = dataclasses.replace(
        settings,
        max_streams=arguments.max_streams,
        max_streams_per_user=arguments.max_streams_per_user,
    )
    options = ServeOptions(
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        shutdown_timeout=arguments.shutdown_timeout,
        keepalive_timeout=arguments.keepalive_timeout,
        max_connections=arguments.max_connections,
        log_format=arguments.log_format,
    )
    return settings, options


async def _upgrade(url: str, options: Mapping[str, object]) -> str:
    # Alembic is loaded only here: a worker that does not migrate stays without it.
    from todo_core.migrate import head_revision, migrate

    await migrate(url, EngineOptions.from_mapping(options))
    return head_revision()


def _serve(settings: Settings, options: ServeOptions) -> int:
    if preflight(settings.database_url) and options.workers > 1:
        raise StartupError(
            f"{database_name(settings.database_url)} lives inside one process: "
            "use --workers 1, or a database file or server that the workers can share"
        )
    groups = bind_sockets(options.host, options.port, options.workers)
    if options.workers == 1:
        serve(settings, groups[0], options)
        return 0
    try:
        # Once here, rather than racing in every worker.
        with startup_errors(settings.database_url):
            asyncio.run(_upgrade(settings.database_url, settings.store_options))
    except StartupError:
        for sockets in groups:
            for sock in sockets:
                sock.close()
        raise
    return run_workers(dataclasses.replace(settings, create_schema=False), groups, options)


def _migrate(url: str) -> int:
    if preflight(url):
        raise StartupError(
            f"{database_name(url)} lives inside this process, which is about to exit: "
            "there is no schema to keep; name a database file or server"
        )
    with startup_errors(url):
        revision = asyncio.run(_upgrade(url, {}))
    print(f"schema is at revision {revision} on {database_name(url)}")
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage error)."""
    environ = os.environ if environ is None else environ
    arguments = parse_arguments(argv, environ)
    try:
        if arguments.command == "migrate":
            configure_logging("text")
            return _migrate(arguments.database_url)
        settings, options = serve_configuration(arguments, environ)
        configure_logging(options.log_format)
        for warning in exposure_warnings(settings, options):
            log.warning("%s", warning)
        return _serve(settings, options)
    except StartupError as error:
        print(f"todo-http: error: {error}", file=sys.stderr)
        return 1
