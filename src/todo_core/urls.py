"""Database URLs, read the way SQLAlchemy reads them, without loading SQLAlchemy.

The store connects with the drivers directly and SQLAlchemy's engine only migrates;
both must reach the same database from one URL, so a test checks this module against
SQLAlchemy's ``make_url`` and its SQLite dialect for every form documented here.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["DatabaseURL", "parse_database_url", "redacted"]

_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+asyncpg"})
_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+aiosqlite"})


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """Where a SQL store's database is, for its driver and for the migration engine."""

    backend: Literal["postgresql", "sqlite"]
    engine_url: str  # for SQLAlchemy's engine (migrations): the driver named
    dsn: str = ""  # PostgreSQL: asyncpg's DSN, without the libpq-only keys
    ssl: str | None = None  # PostgreSQL: libpq's sslmode, which asyncpg takes as ``ssl``
    path: str = ""  # SQLite: what sqlite3.connect takes
    uri: bool = False  # SQLite: ``path`` is a ``file:`` URI
    in_memory: bool = False  # SQLite: a database that lives in this process only


def parse_database_url(url: str) -> DatabaseURL:
    """Read a user's database URL.

    ``:memory:`` (and ``sqlite://``, ``sqlite:///:memory:``) becomes a named, shared
    in-memory database, unique to this call: the migration's connection and the
    store's must see the same one, and two stores must not.

    Raises:
        ValueError: not a PostgreSQL or SQLite URL, another driver, or an option this
            package does not pass on.
    """
    if url == ":memory:":
        url = "sqlite://"
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme in _POSTGRES_SCHEMES:
        return _postgresql(url)
    if scheme in _SQLITE_SCHEMES:
        return _sqlite(url)
    raise ValueError(
        f"unsupported database URL scheme {scheme!r}: "
        "use postgresql://, postgresql+asyncpg://, sqlite:/// or sqlite+aiosqlite:///"
    )


def _postgresql(url: str) -> DatabaseURL:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    sslmodes = [value for key, value in query if key == "sslmode"]
    if len(sslmodes) > 1:
        raise ValueError("sslmode is given more than once")
    # libpq spellings that asyncpg rejects or would send to the server as startup
    # parameters, which poolers refuse: Neon hands these out.
    kept = [(key, value) for key, value in query if key not in ("sslmode", "channel_binding")]
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), ""))
    engine_url = urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, parts.query, ""))
    return DatabaseURL("postgresql", engine_url, dsn=dsn, ssl=sslmodes[0] if sslmodes else None)


def _sqlite(url: str) -> DatabaseURL:
    rest = url.partition("://")[2]
    if rest and not rest.startswith("/"):
        raise ValueError(f"a SQLite URL has no host: {url!r} (sqlite:///relative/path.db)")
    database, _, query_text = rest[1:].partition("?")
    database = unquote(database)
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    uri = query.pop("uri", "false").lower() in ("true", "1")
    if database in ("", ":memory:"):
        name = f"file:todo-{uuid.uuid4().hex}"
        options = {"mode": "memory", "cache": "shared"}
        engine_query = urlencode({**options, "uri": "true"})
        return DatabaseURL(
            "sqlite",
            f"sqlite+aiosqlite:///{name}?{engine_query}",
            path=f"{name}?{urlencode(options)}",
            uri=True,
            in_memory=True,
        )
    if uri:
        # As SQLAlchemy's SQLite dialect does: the other query keys belong to the URI.
        path = f"{database}?{urlencode(query)}" if query else database
        return DatabaseURL(
            "sqlite",
            f"sqlite+aiosqlite:///{rest[1:]}",
            path=path,
            uri=True,
            in_memory=query.get("mode") == "memory",
        )
    if query:
        raise ValueError(
            f"unsupported SQLite URL options {sorted(query)}: "
            "only uri=true (with file: URI options) is understood"
        )
    return DatabaseURL("sqlite", f"sqlite+aiosqlite:///{rest[1:]}", path=os.path.abspath(database))


def redacted(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for logs and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
