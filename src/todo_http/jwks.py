"""The public keys that verify bearer tokens, from a JSON Web Key Set kept current
without ever blocking the event loop.

An identity provider (Better Auth's JWT plugin, for one) publishes its public keys as
a JWKS and names in each token's ``kid`` the key that signed it. ``KeySet`` fetches
the set when a token first needs it and keeps it:

* A ``kid`` the set lacks is how a key rotation shows, so it triggers a refresh, but
  at most once a minute (``REFRESH_INTERVAL``): otherwise anyone could make the server
  hammer the provider by sending made-up ``kid`` values. Until the next refresh is
  allowed, such a token is a 401.
* Concurrent requests that need a refresh share one fetch.
* A set older than ``MAX_AGE`` is fetched again on its next use, so that a key the
  provider withdrew (say, because it leaked) stops being accepted without a restart.
  That fetch runs in the background: known keys are served meanwhile, so a slow or
  absent provider holds up only tokens whose key it alone could name.
* A fetch that fails (connection refused, timeout, not a 200, not a key set) is
  ``AuthUnavailable``, a 503: the provider's trouble must not look like a bad token,
  since a 401 makes clients throw a good token away. Keys already known stay in use
  while refreshes fail, and a failed fetch is retried after ``RETRY_INTERVAL``.

PyJWT's own ``PyJWKClient`` is not used because it fetches with urllib, which would
block every request of the process while the provider is slow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import orjson

from todo_core.urls import redacted
from todo_http.errors import AuthUnavailable, Unauthorized

if TYPE_CHECKING:
    from jwt import PyJWK

__all__ = [
    "FETCH_TIMEOUT",
    "MAX_AGE",
    "REFRESH_INTERVAL",
    "RETRY_INTERVAL",
    "Clock",
    "HttpSource",
    "KeySet",
    "Source",
    "file_source",
    "parse_key_set",
]

log = logging.getLogger("todo_http.auth")

Source = Callable[[], Awaitable[bytes]]
"""Reads the JWKS document; raises ``AuthUnavailable`` when it cannot."""
Clock = Callable[[], float]

REFRESH_INTERVAL: Final = 60.0
RETRY_INTERVAL: Final = 5.0
MAX_AGE: Final = 600.0
# Short: requests wait for the fetch, and a provider that slow is as good as down.
FETCH_TIMEOUT: Final = 3.0
# A key set is a few kilobytes; a provider gone wrong must not fill the memory.
_MAX_DOCUMENT_BYTES: Final = 1 << 20
# RFC 7518 section 3.3: RSA keys for signatures are at least 2048 bits. PyJWT would only
# warn, on every verification.
_MIN_RSA_BITS: Final = 2048


def parse_key_set(document: bytes, algorithms: Collection[str]) -> dict[str, PyJWK]:
    """The signing keys of a JWKS document usable with ``algorithms``, by ``kid``.

    Members that this server cannot or must not use (another key type or algorithm, no
    ``kid``, meant for encryption, a weak RSA key) are skipped and logged, as RFC 7517
    asks of members a reader does not understand: a provider may publish more than this
    server uses. Raises ``ValueError`` when nothing usable is left.
    """
    try:
        content = orjson.loads(document)
    except orjson.JSONDecodeError:
        raise ValueError("not JSON") from None
    entries = content.get("keys") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise ValueError('not a JWKS: no "keys" list')
    keys: dict[str, PyJWK] = {}
    skipped: list[str] = []
    for number, entry in enumerate(entries):
        try:
            kid, key = _signing_key(entry, algorithms)
        except ValueError as problem:
            skipped.append(f"key {number}: {problem}")
        else:
            keys[kid] = key
    if skipped:
        reasons = "; ".join(skipped)
        log.warning("JWKS: %d of %d keys skipped: %s", len(skipped), len(entries), reasons)
    if not keys:
        raise ValueError(f"no usable key for the algorithms {', '.join(sorted(algorithms))}")
    return keys


def _signing_key(entry: Any, algorithms: Collection[str]) -> tuple[str, PyJWK]:
    import jwt  # optional dependency: see todo_http.auth

    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("no kid, so no token could name it")
    if entry.get("use", "sig") != "sig":
        raise ValueError(f"kid {kid!r} is not for signatures")
    try:
        # The algorithm comes from the key's own alg, or else from its kty and crv: a
        # token's header never chooses it.
        key = jwt.PyJWK(entry)
    except Exception:  # odd members raise TypeError and more, not only PyJWTError
        kind = f"kty {entry.get('kty')!r}, alg {entry.get('alg')!r}, crv {entry.get('crv')!r}"
        raise ValueError(f"kid {kid!r}: unsupported key ({kind})") from None
    if key.algorithm_name not in algorithms:
        raise ValueError(f"kid {kid!r}: algorithm {key.algorithm_name} is not allowed")
    if entry.get("kty") == "RSA" and key.key.key_size < _MIN_RSA_BITS:
        raise ValueError(f"kid {kid!r}: RSA key shorter than {_MIN_RSA_BITS} bits")
    return kid, key


class KeySet:
    """The keys of one JWKS ``source``, fetched on demand; see the module docstring.

    ``clock`` (monotonic seconds) is injectable so that tests can step over the
    intervals. ``keys`` seeds the set, e.g. with a file's keys read at startup.
    """

    def __init__(
        self,
        source: Source,
        algorithms: Collection[str],
        *,
        clock: Clock = time.monotonic,
        keys: dict[str, PyJWK] | None = None,
    ) -> None:
        self._source = source
        self._algorithms = frozenset(algorithms)
        self._clock = clock
        self._keys: dict[str, PyJWK] = dict(keys or {})
        self._fetched_at: float | None = clock() if keys else None
        self._attempted_at: float | None = self._fetched_at
        self._healthy = True  # whether the last fetch succeeded
        self._fetching: asyncio.Task[None] | None = None

    async def key(self, kid: str) -> PyJWK:
        """The key named ``kid``: raises ``Unauthorized`` if the provider has no such key,
        ``AuthUnavailable`` if that cannot be known now."""
        now = self._clock()
        key = self._keys.get(kid)
        if key is not None:
            stale = self._fetched_at is None or now - self._fetched_at >= MAX_AGE
            if stale and self._may_fetch(now):
                # Refreshed in the background: a known key is served meanwhile, so that a
                # slow or absent provider holds up no request that it could not help.
                self._start_fetch()
            return key
        if not self._may_fetch(now):
            if self._healthy:
                raise Unauthorized(f"unknown kid {kid[:64]!r}; the key set was fetched recently")
            raise AuthUnavailable("the JWKS could not be fetched recently")
        await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized(f"unknown kid {kid[:64]!r}, even in the refreshed key set")
        return key

    def _may_fetch(self, now: float) -> bool:
        if self._fetching is not None:
            return True  # joining a fetch under way costs the provider nothing
        if self._attempted_at is None:
            return True
        wait = REFRESH_INTERVAL if self._healthy else RETRY_INTERVAL
        return now - self._attempted_at >= wait

    async def _refresh(self) -> None:
        # Shielded: a request that is cancelled must not cancel the fetch others await.
        await asyncio.shield(self._start_fetch())

    def _start_fetch(self) -> asyncio.Task[None]:
        """The fetch under way, started if there is none."""
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch())
            # Every waiter may be gone by the time it fails; its error is logged anyway.
            self._fetching.add_done_callback(_retrieve)
        return self._fetching

    async def _fetch(self) -> None:
        try:
            document = await self._source()
            keys = parse_key_set(document, self._algorithms)
        except AuthUnavailable as error:
            self._healthy = False
            log.warning("cannot refresh the JWKS: %s", error)
            raise
        except Exception as error:
            # ValueError from parse_key_set, or whatever else a strange document raises
            # on its way through PyJWT: the provider's trouble, never a 500.
            self._healthy = False
            log.warning("cannot refresh the JWKS: %s", error)
            raise AuthUnavailable(f"the JWKS is unusable: {error}") from error
        else:
            self._keys = keys
            self._healthy = True
            self._fetched_at = self._clock()
        finally:
            self._attempted_at = self._clock()
            self._fetching = None


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class HttpSource:
    """Reads the JWKS at ``url`` with an aiohttp session that ``session()`` opens and
    closes with the application (it holds connections, which must not outlive it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._shown = redacted(url)  # for messages, which reach the log
        self._session: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Open the HTTP session for as long as the block runs (the application's life)."""
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT))
        self._session = session
        try:
            yield
        finally:
            if self._session is session:
                self._session = None
            await session.close()

    async def __call__(self) -> bytes:
        if self._session is None:
            raise AuthUnavailable("no HTTP session: the application has not started")
        try:
            async with self._session.get(
                self.url, headers={"Accept": "application/json"}
            ) as response:
                if response.status != 200:
                    raise AuthUnavailable(f"{self._shown} answered {response.status}")
                document = bytearray()
                async for chunk in response.content.iter_any():
                    document += chunk
                    if len(document) > _MAX_DOCUMENT_BYTES:
                        raise AuthUnavailable(
                            f"{self._shown} sent over {_MAX_DOCUMENT_BYTES} bytes"
                        )
                return bytes(document)
        except (aiohttp.ClientError, TimeoutError) as error:
            reason = f"{type(error).__name__} {error}".strip()
            raise AuthUnavailable(f"cannot fetch {self._shown}: {reason}") from error


def file_source(path: Path) -> Source:
    """Reads the JWKS in the file ``path``, in a thread so that a slow disk blocks no request."""

    async def read() -> bytes:
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as error:
            raise AuthUnavailable(f"cannot read {path}: {error.strerror or error}") from error

    return read
