"""Who sends a request: pluggable authentication, and the built-in JWT authenticator.

Authentication is optional and off by default (the contract; docs/security.md says
when that is acceptable). When it is on, every request routed to the task endpoints
goes through an ``Authenticator``: an async callable that returns the user the request
proves to be, or raises ``Unauthorized`` (401) or ``AuthUnavailable`` (503). The
middleware then requires that user to be the path's ``user_id``, else 403. Every store
call is scoped by that ``user_id``, so this one comparison is the object-level
authorization of the whole API: no handler has to remember it.

``JwtAuthenticator`` verifies ``Authorization: Bearer <JWT>`` with PyJWT. The
algorithms come from the configuration, never from a token: a token cannot pick
``none``, nor an HMAC check keyed with a public key. PyJWT is an optional dependency
(``pip install 'todo-core[jwt]'``), imported only where a token is verified, so that
``import todo_http`` works without it.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from todo_http.envelope import Handler
from todo_http.errors import Forbidden, Unauthorized
from todo_http.jwks import Clock, HttpSource, KeySet, file_source, parse_key_set
from todo_http.keys import REQUEST_ID
from todo_http.logs import loggable
from todo_http.settings import JwtSettings

__all__ = [
    "JWKS_ALGORITHMS",
    "SECRET_ALGORITHMS",
    "Authenticator",
    "JwtAuthenticator",
    "auth_middleware",
    "bearer_token",
]

log = logging.getLogger("todo_http.auth")

Authenticator = Callable[[web.Request], Awaitable[str]]
"""Returns the request's user id; raises ``Unauthorized`` or ``AuthUnavailable``."""

JWKS_ALGORITHMS: Final = ("EdDSA", "ES256", "RS256")  # what Better Auth's JWT plugin signs with
SECRET_ALGORITHMS: Final = ("HS256",)
# RFC 7518 section 3.2: an HMAC key at least as long as the hash.
_HMAC_KEY_BYTES: Final = {"HS256": 32, "HS384": 48, "HS512": 64}
_PUBLIC_KEY_ALGORITHMS: Final = frozenset(
    {"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
# The resources of routes.add_task_routes, sync_routes.add_sync_routes and
# events.add_event_routes; the documentation routes stay open.
_GUARDED_RESOURCES: Final = frozenset(
    {"tasks", "task", "tags", "changes", "trash", "trashed_task", "restore", "events"}
)
# Where a token may also come as the access_token query parameter: the event stream,
# since browsers' EventSource cannot send a header. Nowhere else, so that a token in a
# URL (which browsers keep in their history) is only ever one such a client had to use.
_QUERY_TOKEN_RESOURCES: Final = frozenset({"events"})
_ACCESS_TOKEN: Final = "access_token"
_SOURCES: Final = ("TODO_JWT_SECRET", "TODO_JWKS_URL", "TODO_JWKS_FILE")
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_MAKE_A_SECRET: Final = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def bearer_token(request: web.Request) -> str:
    """The token of the request's ``Authorization: Bearer`` header (or, for the event
    stream only, of its ``access_token`` query parameter); raises ``Unauthorized``."""
    values = request.headers.getall(hdrs.AUTHORIZATION, [])
    if not values and _takes_query_token(request):
        return _query_token(request)
    if not values:
        raise Unauthorized("no Authorization header", token_given=False)
    if len(values) > 1:
        raise Unauthorized("several Authorization headers")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":  # RFC 7235: schemes are case-insensitive
        # RFC 6750 section 3.1: no error code for a request without bearer credentials.
        raise Unauthorized("Authorization scheme is not Bearer", token_given=False)
    token = token.strip()
    if not token:
        raise Unauthorized("empty bearer token")
    return token


def _takes_query_token(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    return resource is not None and resource.name in _QUERY_TOKEN_RESOURCES


def _query_token(request: web.Request) -> str:
    # Never logged: the access log writes paths without their query string.
    given = request.query.getall(_ACCESS_TOKEN, [])
    if not given:
        raise Unauthorized("no Authorization header nor access_token", token_given=False)
    if len(given) > 1:
        raise Unauthorized("several access_token parameters")
    token = given[0].strip()
    if not token:
        raise Unauthorized("empty access_token")
    return token


class JwtAuthenticator:
    """Verifies bearer JWTs against the keys and claims of ``settings``; returns ``sub``.

    ``exp`` and ``sub`` are required; ``iss`` and ``aud`` are checked when configured,
    and ``nbf`` and ``iat`` whenever present, each with ``settings.leeway`` seconds of
    clock skew. With a JWKS the token's ``kid`` names the key, and the key's algorithm
    (one of those configured) is the only one its signature is checked with.

    Settings it cannot work with raise ``ValueError``, whose message names the
    environment variable to fix. ``clock`` (monotonic seconds) paces JWKS refreshes;
    tests inject one. A JWKS URL needs the HTTP session of ``cleanup_ctx``, which
    ``create_app`` and ``create_api`` register.
    """

    def __init__(self, settings: JwtSettings, *, clock: Clock = time.monotonic) -> None:
        _require_pyjwt()
        sources = (settings.secret, settings.jwks_url, settings.jwks_file)
        given = [name for name, value in zip(_SOURCES, sources, strict=True) if value]
        if not given:
            raise ValueError(f"--auth jwt needs a key source: set one of {', '.join(_SOURCES)}")
        if len(given) > 1:
            raise ValueError(f"set only one key source, not {' and '.join(given)}")
        if not (math.isfinite(settings.leeway) and settings.leeway >= 0):
            raise ValueError("TODO_JWT_LEEWAY must be a finite number of seconds, at least 0")
        self._issuer = settings.issuer
        self._audience = settings.audience
        self._leeway = settings.leeway
        self._http: HttpSource | None = None
        self._secret: bytes | None = None
        self._keys: KeySet | None = None
        if settings.secret:
            self.algorithms = _algorithms(settings.algorithms, SECRET_ALGORITHMS, secret=True)
            self._secret = _hmac_secret(settings.secret, self.algorithms)
        else:
            self.algorithms = _algorithms(settings.algorithms, JWKS_ALGORITHMS, secret=False)
            self._keys = self._key_set(settings, clock)

    def _key_set(self, settings: JwtSettings, clock: Clock) -> KeySet:
        if settings.jwks_url:
            if urlsplit(settings.jwks_url).scheme not in {"http", "https"}:
                raise ValueError("TODO_JWKS_URL must be an http:// or https:// URL")
            self._http = HttpSource(settings.jwks_url)
            return KeySet(self._http, self.algorithms, clock=clock)
        assert settings.jwks_file
        path = Path(settings.jwks_file)
        # Read now, so that a bad file stops the start rather than every request.
        try:
            keys = parse_key_set(path.read_bytes(), self.algorithms)
        except OSError as error:
            raise ValueError(f"TODO_JWKS_FILE {path}: cannot read it: {error.strerror}") from None
        except ValueError as error:
            raise ValueError(f"TODO_JWKS_FILE {path}: {error}") from None
        return KeySet(file_source(path), self.algorithms, clock=clock, keys=keys)

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the JWKS URL's HTTP session, open while ``app`` runs."""
        if self._http is None:
            yield
            return
        async with self._http.session():
            yield

    async def __call__(self, request: web.Request) -> str:
        import jwt

        token = bearer_token(request)
        # A JWS in compact form is three base64url segments. Anything else is refused
        # before PyJWT, which fails on some of it with errors of its own (bytes that are
        # not UTF-8 in the header arrive as surrogates: UnicodeEncodeError).
        if _COMPACT_JWS.fullmatch(token) is None:
            raise Unauthorized("malformed token: not three base64url segments")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthorized(f"malformed token: {_why(error)}") from None
        key, algorithms = await self._key(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                # PyJWT refuses any aud unless one is expected: unchecked means unchecked.
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(f"token refused: {_why(error)}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("sub is not a non-empty string")
        return subject

    async def _key(self, header: dict[str, Any]) -> tuple[Any, Sequence[str]]:
        """The key to check the signature with, and the one algorithm allowed for it."""
        if self._keys is None:
            return self._secret, self.algorithms
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("no kid in the token's header, so no key to check it with")
        key = await self._keys.key(kid)
        # The raw key and its own algorithm rather than the PyJWK: the token's alg must
        # equal it, whatever PyJWT version does with a PyJWK.
        return key.key, (key.algorithm_name,)


def _hmac_secret(secret: str, algorithms: Sequence[str]) -> bytes:
    from jwt import InvalidKeyError
    from jwt.algorithms import HMACAlgorithm

    key = secret.encode()
    needed = max(_HMAC_KEY_BYTES[name] for name in algorithms)
    if len(key) < needed:
        raise ValueError(
            f"TODO_JWT_SECRET must be at least {needed} bytes for {', '.join(algorithms)}; "
            f"make one with {_MAKE_A_SECRET}"
        )
    # PyJWT refuses, at every verification, a secret that looks like a PEM or JWK public
    # key (the algorithm-confusion guard): better said once, at startup.
    try:
        HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)
    except InvalidKeyError:
        raise ValueError("TODO_JWT_SECRET looks like a public key, never an HMAC secret") from None
    return key


def _require_pyjwt() -> None:
    try:
        import jwt  # noqa: F401
    except ImportError:
        raise ValueError("--auth jwt needs PyJWT: pip install 'todo-core[jwt]'") from None


def _algorithms(given: Sequence[str], default: Sequence[str], *, secret: bool) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(given or default))
    usable = _HMAC_KEY_BYTES.keys() if secret else _PUBLIC_KEY_ALGORITHMS
    for name in chosen:
        if name.lower() == "none":
            raise ValueError("TODO_JWT_ALGORITHMS: 'none' is refused (a token without a signature)")
        if name in usable:
            continue
        if name in _HMAC_KEY_BYTES:
            raise ValueError(
                f"TODO_JWT_ALGORITHMS: {name} needs TODO_JWT_SECRET; a JWKS is for public-key "
                "algorithms only, since an HMAC check keyed with a public key can be forged"
            )
        if name in _PUBLIC_KEY_ALGORITHMS:
            raise ValueError(
                f"TODO_JWT_ALGORITHMS: {name} needs a JWKS (TODO_JWKS_URL or TODO_JWKS_FILE); "
                f"TODO_JWT_SECRET verifies {', '.join(_HMAC_KEY_BYTES)} only"
            )
        known = ", ".join([*_HMAC_KEY_BYTES, *sorted(_PUBLIC_KEY_ALGORITHMS)])
        raise ValueError(f"TODO_JWT_ALGORITHMS: unknown algorithm {name!r}; known: {known}")
    return chosen


def _why(error: Exception) -> str:
    # For the log only: PyJWT's messages name the failed check, never the token or a key.
    return f"{type(error).__name__}: {error}"


def _guarded(match: web.UrlMappingMatchInfo) -> bool:
    if match.http_exception is not None:
        return False  # the contract's order: unknown route 404 and wrong method 405 come first
    resource = match.route.resource
    return resource is not None and resource.name in _GUARDED_RESOURCES


def auth_middleware(authenticator: Authenticator) -> Middleware:
    """Authenticate task requests with ``authenticator``; the path's user must be the caller.

    Innermost, so it runs after routing and CORS (a preflight never reaches it) and
    before any handler reads the body, which an unauthenticated client may not make
    the server parse.
    """

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        match = request.match_info
        if _guarded(match):
            try:
                user = await authenticator(request)
            except Unauthorized as refusal:
                reason = refusal.reason or "no reason given"
                # The reason may quote the token (a crit header's members): the client's text.
                log.info("401: %s [request %s]", loggable(reason), request.get(REQUEST_ID, "-"))
                raise
            # match_info holds the path's user_id percent-decoded, as the store sees it.
            if user != match["user_id"]:
                log.info(
                    "403: the token's user is not the path's [request %s]",
                    request.get(REQUEST_ID, "-"),
                )
                raise Forbidden()
        return await handler(request)

    return authenticate
