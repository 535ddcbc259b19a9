"""Server configuration as one immutable value; only the CLI reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from todo_core.feed import DEFAULT_RETENTION

__all__ = ["DEFAULT_DATABASE_URL", "AuthMode", "JwtSettings", "Settings"]

DEFAULT_DATABASE_URL = "sqlite:///todo.db"

AuthMode = Literal["none", "jwt"]


@dataclass(frozen=True, kw_only=True, slots=True)
class JwtSettings:
    """Where the keys that sign bearer tokens come from, and what a token must claim.

    Exactly one key source: ``secret`` (HMAC), or a JWKS from ``jwks_url`` or
    ``jwks_file``. ``algorithms`` empty means the source's default: ``("HS256",)`` for
    a secret, ``("EdDSA", "ES256", "RS256")`` for a JWKS. ``JwtAuthenticator`` checks
    the combination and refuses a bad one with ``ValueError``.
    """

    # repr=False: settings get logged and printed; a secret must not go with them.
    secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    jwks_file: str | None = None
    algorithms: tuple[str, ...] = ()
    issuer: str | None = None  # None: iss is not checked
    audience: str | None = None  # None: aud is not checked
    leeway: float = 0.0  # seconds of clock skew allowed on exp, nbf and iat


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """What ``create_app`` needs to know. Defaults serve a local SQLite file."""

    database_url: str = DEFAULT_DATABASE_URL
    create_schema: bool = True  # create or upgrade the schema when the store opens
    cursor_secret: str | None = None  # None: the secret stored in the database
    cors_origins: tuple[str, ...] = ()
    store_options: dict[str, Any] = field(default_factory=dict)  # EngineOptions fields
    # Seconds between purges of expired idempotency keys, and of trashed tasks past the
    # retention window (jittered); 0: never purge.
    purge_interval: float = 600.0
    # Days trashed tasks and the feed's records of deletions are kept, and so how long a
    # feed token stays valid (todo_core.feed.DEFAULT_RETENTION).
    retention_days: int = DEFAULT_RETENTION.days
    # Seconds a request's body may take to arrive once its handler reads it (408 after).
    body_timeout: float = 10.0
    # Open event streams (GET /api/{user_id}/events): per user, and per process.
    max_streams_per_user: int = 10
    max_streams: int = 10_000
    # Seconds between keepalive comments of an idle stream (the contract: at most 15).
    stream_keepalive: float = 15.0
    # Seconds a stream's write may wait for a slow reader before the stream is ended.
    stream_write_timeout: float = 10.0
    # Serve the web app at / (docs/webapp.md); False keeps / a redirect to the docs page.
    ui: bool = True
    auth: AuthMode = "none"  # "jwt": every task request needs a bearer token (docs/security.md)
    jwt: JwtSettings = JwtSettings()
