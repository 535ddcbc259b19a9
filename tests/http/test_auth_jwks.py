"""Authentication against a JWKS (docs/security.md): each published algorithm, forged
tokens, key rotation and refresh limits, and a provider that is away, slow or wrong.

The JWKS is served by a real aiohttp server on 127.0.0.1 with keys that cryptography
makes here; a clock injected into the authenticator steps over the refresh intervals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jwt
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pytest_aiohttp import AiohttpServer

from tests.http.api_client import ApiClient, ClientFactory
from tests.http.server_process import free_port
from tests.http.tokens import (
    ALGORITHMS,
    AUDIENCE,
    EDDSA,
    ISSUER,
    SECRET,
    TASKS,
    Signer,
    assert_forbidden,
    assert_unauthorized,
    assert_unavailable,
    bearer,
    claims,
    compact,
    hmac_sha256,
    jwks_claims,
    signer,
    tampered,
    write_jwks,
)
from todo_core import MemoryTaskStore
from todo_http import JwtSettings, Settings
from todo_http import jwks as jwks_module
from todo_http.auth import JwtAuthenticator
from todo_http.jwks import MAX_AGE, REFRESH_INTERVAL, RETRY_INTERVAL


@dataclass
class JwksServer:
    """What the provider's JWKS endpoint answers, and how often it was asked."""

    url: str = ""
    keys: list[Any] = field(default_factory=list)  # not only JWKs: a provider may err
    status: int = 200
    body: bytes | None = None  # instead of {"keys": keys}
    delay: float = 0.0
    fetches: int = 0

    def publish(self, *signers: Signer) -> None:
        self.keys = [one.jwk for one in signers]


@pytest.fixture
async def jwks_server(aiohttp_server: AiohttpServer) -> JwksServer:
    state = JwksServer()

    async def jwks(request: web.Request) -> web.Response:
        state.fetches += 1
        if state.delay:
            await asyncio.sleep(state.delay)
        body = state.body if state.body is not None else orjson.dumps({"keys": state.keys})
        return web.Response(body=body, status=state.status, content_type="application/json")

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    server = await aiohttp_server(app)  # on 127.0.0.1
    state.url = str(server.make_url("/.well-known/jwks.json"))
    state.publish(*(signer(algorithm, f"{algorithm}-1") for algorithm in ALGORITHMS))
    return state


class Clock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


JwksApi = Callable[..., Awaitable[tuple[ApiClient, Clock]]]


@pytest.fixture
def jwks_api(serve: ClientFactory, jwks_server: JwksServer) -> JwksApi:
    """``await jwks_api(**jwt_settings)``: the app checking tokens against ``jwks_server``."""

    async def make(**changes: Any) -> tuple[ApiClient, Clock]:
        clock = Clock()
        settings = JwtSettings(**{"jwks_url": jwks_server.url, **changes})
        authenticator = JwtAuthenticator(settings, clock=clock)
        client = await serve(MemoryTaskStore(), authenticator=authenticator)
        await client.get("/api/openapi.json")  # the schema check's copy, before any fetch
        return client, clock

    return make


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_tokens_of_each_published_algorithm_are_accepted(
    jwks_api: JwksApi, jwks_server: JwksServer, algorithm: str
) -> None:
    client, _ = await jwks_api()
    key = signer(algorithm, f"{algorithm}-1")
    reply = await client.post(TASKS, json={"title": "x"}, headers=bearer(key.token(jwks_claims())))
    assert reply.status == 201, reply
    again = await client.get(TASKS, headers=bearer(key.token(jwks_claims())))
    assert again.status == 200
    assert jwks_server.fetches == 1
    bob = bearer(key.token(jwks_claims("bob")))
    assert_forbidden(await client.get(TASKS, headers=bob))


def _forged_with_the_public_pem() -> str:
    """The classic algorithm confusion: HS256 keyed with the RSA public key's PEM."""
    rsa_key = signer("RS256", "RS256-1")
    pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
    return compact(header, jwks_claims(), hmac_sha256(pem))


def _forged_with_the_public_jwk() -> str:
    ed_key = signer(*EDDSA)
    header = {"alg": "HS256", "typ": "JWT", "kid": "EdDSA-1"}
    return compact(header, jwks_claims(), hmac_sha256(orjson.dumps(ed_key.jwk)))


JWKS_ATTACKS: Final[dict[str, Callable[[], str]]] = {
    "HS256 keyed with the RSA public key's PEM": _forged_with_the_public_pem,
    "HS256 keyed with a public JWK": _forged_with_the_public_jwk,
    "alg none with a published kid": lambda: compact(
        {"alg": "none", "kid": "EdDSA-1"}, jwks_claims(), lambda _: b""
    ),
    "ES256 signature under the EdDSA key's kid": lambda: signer("ES256", "ES256-1").token(
        jwks_claims(), kid="EdDSA-1"
    ),
    "signed by a key that is not published": lambda: signer("EdDSA", "rogue").token(
        jwks_claims(), kid="EdDSA-1"
    ),
    "no kid": lambda: jwt.encode(jwks_claims(), signer(*EDDSA).private, "EdDSA"),
    "unknown kid": lambda: signer("EdDSA", "never-published").token(jwks_claims()),
    "expired": lambda: signer("ES256", "ES256-1").token(
        jwks_claims() | {"exp": int(time.time()) - 60}
    ),
    "tampered payload": lambda: tampered(
        signer("RS256", "RS256-1").token(jwks_claims("bob")), jwks_claims()
    ),
}


@pytest.mark.parametrize("attack", list(JWKS_ATTACKS))
async def test_a_bad_token_against_a_jwks_is_a_401(jwks_api: JwksApi, attack: str) -> None:
    client, _ = await jwks_api()
    reply = await client.post(TASKS, json={"title": "x"}, headers=bearer(JWKS_ATTACKS[attack]()))
    assert_unauthorized(reply)


async def test_issuer_and_audience_are_checked_when_configured(jwks_api: JwksApi) -> None:
    client, _ = await jwks_api(issuer=ISSUER, audience=AUDIENCE)
    key = signer(*EDDSA)
    right = claims()  # with ISSUER and AUDIENCE
    assert (await client.get(TASKS, headers=bearer(key.token(right)))).status == 200
    for wrong in ({"iss": "https://evil.example"}, {"aud": "https://evil.example"}):
        assert_unauthorized(await client.get(TASKS, headers=bearer(key.token(right | wrong))))


async def test_a_rotated_key_is_fetched_at_most_once_a_minute(
    jwks_api: JwksApi, jwks_server: JwksServer
) -> None:
    old, new, newer = (signer("EdDSA", kid) for kid in ("old", "new", "newer"))
    jwks_server.publish(old)
    client, clock = await jwks_api()

    async def status(key: Signer) -> int:
        return (await client.get(TASKS, headers=bearer(key.token(jwks_claims())))).status

    assert await status(old) == 200
    assert jwks_server.fetches == 1
    # The provider rotates: the new key is published, the old one kept for a while.
    jwks_server.publish(new, old)
    clock.advance(REFRESH_INTERVAL)
    assert await status(new) == 200  # one refresh found it
    assert jwks_server.fetches == 2
    # Another unknown kid within the minute: no fetch, whatever the sender hopes.
    jwks_server.publish(newer, new, old)
    clock.advance(REFRESH_INTERVAL - 1)
    assert await status(newer) == 401
    assert jwks_server.fetches == 2
    clock.advance(1)
    assert await status(newer) == 200
    assert jwks_server.fetches == 3
    # The provider withdraws the old key: once the set is stale, it is refused.
    jwks_server.publish(newer, new)
    assert await status(old) == 200  # cached and fresh: no fetch for a known kid
    assert jwks_server.fetches == 3
    clock.advance(MAX_AGE)
    # A known key is served at once while the stale set is fetched in the background;
    # a request for an unknown kid joins that fetch, and after it the old key is gone.
    assert await status(old) == 200
    assert await status(signer("EdDSA", "never-published")) == 401
    assert jwks_server.fetches == 4
    assert await status(old) == 401
    assert jwks_server.fetches == 4


async def test_concurrent_requests_share_one_fetch(
    jwks_api: JwksApi, jwks_server: JwksServer
) -> None:
    client, _ = await jwks_api()
    jwks_server.delay = 0.2
    token = bearer(signer("ES256", "ES256-1").token(jwks_claims()))
    replies = await asyncio.gather(*(client.get(TASKS, headers=token) for _ in range(10)))
    assert [reply.status for reply in replies] == [200] * 10
    assert jwks_server.fetches == 1


async def test_a_jwks_server_that_refuses_connections_is_a_503(serve: ClientFactory) -> None:
    authenticator = JwtAuthenticator(
        JwtSettings(jwks_url=f"http://127.0.0.1:{free_port()}/jwks"), clock=Clock()
    )
    client = await serve(MemoryTaskStore(), authenticator=authenticator)
    reply = await client.get(TASKS, headers=bearer(signer(*EDDSA).token(jwks_claims())))
    assert_unavailable(reply)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"error": "oops"}'),
        (200, b"<html>not json</html>"),
        (200, b'{"keys": "none"}'),
        (200, b'{"keys": [{"kty": "oct", "kid": "EdDSA-1", "k": "c2VjcmV0"}]}'),
        (404, None),
    ],
    ids=["500", "not JSON", "no key list", "only a symmetric key", "404"],
)
async def test_an_unusable_jwks_answer_is_a_503(
    jwks_api: JwksApi, jwks_server: JwksServer, status: int, body: bytes | None
) -> None:
    jwks_server.status, jwks_server.body = status, body
    client, _ = await jwks_api()
    reply = await client.get(TASKS, headers=bearer(signer(*EDDSA).token(jwks_claims())))
    assert_unavailable(reply)


async def test_a_slow_jwks_server_is_a_503(
    jwks_api: JwksApi, jwks_server: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks_module, "FETCH_TIMEOUT", 0.1)
    jwks_server.delay = 0.5
    client, _ = await jwks_api()
    reply = await client.get(TASKS, headers=bearer(signer(*EDDSA).token(jwks_claims())))
    assert_unavailable(reply)


async def test_a_set_of_only_odd_members_is_a_503(
    jwks_api: JwksApi, jwks_server: JwksServer
) -> None:
    jwks_server.keys = [{**signer("ES256", "ES256-1").jwk, "alg": ["ES256"]}]
    client, _ = await jwks_api()
    assert_unavailable(await client.get(TASKS, headers=bearer(signer(*EDDSA).token(jwks_claims()))))


async def test_a_slow_provider_holds_up_no_request_with_a_known_key(
    jwks_api: JwksApi, jwks_server: JwksServer
) -> None:
    """Once the set is stale it is fetched again in the background: requests whose key
    is known are answered at once meanwhile, however long the provider takes."""
    client, clock = await jwks_api()
    known = bearer(signer(*EDDSA).token(jwks_claims()))
    assert (await client.get(TASKS, headers=known)).status == 200
    jwks_server.delay = 2.0
    clock.advance(MAX_AGE)
    started = time.monotonic()
    for _ in range(5):
        assert (await client.get(TASKS, headers=known)).status == 200
    assert time.monotonic() - started < 1.0
    assert jwks_server.fetches == 2, "one background fetch, shared"


async def test_after_a_failed_fetch_the_next_waits_then_succeeds(
    jwks_api: JwksApi, jwks_server: JwksServer
) -> None:
    client, clock = await jwks_api()
    token = bearer(signer(*EDDSA).token(jwks_claims()))
    jwks_server.status = 503
    assert_unavailable(await client.get(TASKS, headers=token))
    jwks_server.status = 200
    assert_unavailable(await client.get(TASKS, headers=token))  # not asked again yet
    assert jwks_server.fetches == 1
    clock.advance(RETRY_INTERVAL)
    assert (await client.get(TASKS, headers=token)).status == 200
    assert jwks_server.fetches == 2


async def test_known_keys_stay_in_use_while_the_provider_is_down(
    jwks_api: JwksApi, jwks_server: JwksServer
) -> None:
    client, clock = await jwks_api()
    known = bearer(signer(*EDDSA).token(jwks_claims()))
    unknown = bearer(signer("EdDSA", "later").token(jwks_claims()))
    assert (await client.get(TASKS, headers=known)).status == 200
    jwks_server.status = 500
    clock.advance(MAX_AGE)
    # Stale: served at once while a refresh runs in the background, which fails.
    assert (await client.get(TASKS, headers=known)).status == 200
    # Whether an unknown kid is real cannot be told now: not the client's fault. The
    # first joins the failing refresh, the next finds it failed moments ago.
    assert_unavailable(await client.get(TASKS, headers=unknown))
    assert_unavailable(await client.get(TASKS, headers=unknown))
    assert jwks_server.fetches == 2
    assert (await client.get(TASKS, headers=known)).status == 200
    jwks_server.status = 200
    clock.advance(RETRY_INTERVAL)
    assert_unauthorized(await client.get(TASKS, headers=unknown))
    assert jwks_server.fetches == 3


async def test_unusable_keys_in_a_set_are_skipped_not_fatal(
    jwks_api: JwksApi, jwks_server: JwksServer, caplog: pytest.LogCaptureFixture
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    good = signer(*EDDSA)
    jwks_server.keys = [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
        {**RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True), "kid": "weak"},
        {**signer("ES256", "ES256-1").jwk, "kid": "encryption", "use": "enc"},
        {**signer("ES256", "ES256-1").jwk, "kid": None},
        {"kty": "XYZ", "kid": "exotic"},
        # Members PyJWT fails on with errors other than its own (TypeError here).
        {**signer("ES256", "ES256-1").jwk, "kid": "odd alg", "alg": ["ES256"]},
        {**signer("ES256", "ES256-1").jwk, "kid": "odd crv", "crv": {"P": 256}},
        "not an object",
        good.jwk,
    ]
    client, _ = await jwks_api()
    with caplog.at_level(logging.WARNING, logger="todo_http"):
        assert (await client.get(TASKS, headers=bearer(good.token(jwks_claims())))).status == 200
    assert "8 of 9 keys skipped" in caplog.text
    for kid in ("hmac", "weak", "encryption"):
        token = jwt.encode(jwks_claims(), SECRET, "HS256", headers={"kid": kid})
        assert_unauthorized(await client.get(TASKS, headers=bearer(token)))


async def test_algorithms_can_be_narrowed(jwks_api: JwksApi) -> None:
    client, _ = await jwks_api(algorithms=("EdDSA",))
    eddsa = signer(*EDDSA).token(jwks_claims())
    assert (await client.get(TASKS, headers=bearer(eddsa))).status == 200
    rs256 = signer("RS256", "RS256-1").token(jwks_claims())
    assert_unauthorized(await client.get(TASKS, headers=bearer(rs256)))


async def test_settings_alone_wire_a_jwks_url(
    serve: ClientFactory, jwks_server: JwksServer
) -> None:
    """create_app builds the authenticator and opens its HTTP session itself."""
    settings = Settings(auth="jwt", jwt=JwtSettings(jwks_url=jwks_server.url))
    client = await serve(MemoryTaskStore(), settings)
    token = bearer(signer("RS256", "RS256-1").token(jwks_claims()))
    assert (await client.post(TASKS, json={"title": "x"}, headers=token)).status == 201
    assert_unauthorized(await client.get(TASKS), token_given=False)


async def test_a_jwks_file_is_read_at_start_and_again_for_an_unknown_kid(
    serve: ClientFactory, tmp_path: Path
) -> None:
    path = tmp_path / "jwks.json"
    first, second = signer("ES256", "file-1"), signer("EdDSA", "file-2")
    write_jwks(path, first)
    clock = Clock()
    authenticator = JwtAuthenticator(JwtSettings(jwks_file=str(path)), clock=clock)
    client = await serve(MemoryTaskStore(), authenticator=authenticator)
    assert (await client.get(TASKS, headers=bearer(first.token(jwks_claims())))).status == 200
    write_jwks(path, second, first)
    assert_unauthorized(await client.get(TASKS, headers=bearer(second.token(jwks_claims()))))
    clock.advance(REFRESH_INTERVAL)
    assert (await client.get(TASKS, headers=bearer(second.token(jwks_claims())))).status == 200


async def test_settings_alone_wire_a_jwks_file(serve: ClientFactory, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, signer("RS256", "RS256-1"))
    client = await serve(
        MemoryTaskStore(), Settings(auth="jwt", jwt=JwtSettings(jwks_file=str(path)))
    )
    token = bearer(signer("RS256", "RS256-1").token(jwks_claims()))
    assert (await client.get(TASKS, headers=token)).status == 200
