"""Authentication (docs/security.md): bearer JWTs checked against a shared secret or a
JWKS, the path's user held to the token's ``sub``, and a refusal for every way a token
can be wrong, each answered with the contract's envelope (and, for 401, a Bearer
challenge). Replies are checked against the document the server serves, which lists
401 and 403 when authentication is on.

The JWKS is served by a real aiohttp server on 127.0.0.1 with keys that cryptography
makes here; a clock injected into the authenticator steps over the refresh intervals.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import hmac
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jwt
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from pytest_aiohttp import AiohttpServer

from tests.http.process import ServerProcess, free_port, server_environment
from tests.http.support import ORIGIN, ApiClient, ClientFactory, Reply
from todo_core import MemoryTaskStore, TaskStore
from todo_http import JwtSettings, Settings
from todo_http import jwks as jwks_module
from todo_http.auth import JwtAuthenticator
from todo_http.cli import environment_settings, exposure_warnings, parser, serve_configuration
from todo_http.errors import Unauthorized
from todo_http.jwks import MAX_AGE, REFRESH_INTERVAL, RETRY_INTERVAL
from todo_http.server import ServeOptions, StartupError

SECRET: Final = "0123456789abcdef" * 4 + "-todo-tests"  # long enough for HS512 too
ISSUER: Final = "https://auth.example.com"
AUDIENCE: Final = "https://api.example.com"
TASKS: Final = "/api/alice/tasks"
MISSING: Final = 'Bearer realm="todo"'
INVALID: Final = 'Bearer realm="todo", error="invalid_token"'


class _Drop:
    """A claim left out of the token."""


DROP: Final = _Drop()


def claims(sub: object = "alice", **changes: object) -> dict[str, Any]:
    """Claims that the HS256 test server accepts, with ``changes`` (``DROP`` removes)."""
    now = int(time.time())
    base: dict[str, object] = {
        "sub": sub,
        "iat": now,
        "exp": now + 300,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if not isinstance(value, _Drop)}


def hs(payload: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token assembled by hand, as an attacker would, signed by ``sign``."""
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(payload))}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def hmac_sha256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda message: hmac.new(secret, message, hashlib.sha256).digest()


def tampered(token: str, payload: dict[str, Any]) -> str:
    """``token`` with its claims replaced and its old signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{b64(orjson.dumps(payload))}.{signature}"


def assert_unauthorized(reply: Reply, *, token_given: bool = True) -> None:
    """A 401 in the envelope with RFC 6750's challenge and a message that says nothing
    of which check failed."""
    assert reply.status == 401, reply
    assert reply.code == "UNAUTHORIZED"
    assert reply.error["details"] == []
    if token_given:
        assert reply.headers["WWW-Authenticate"] == INVALID
        assert reply.error["message"] == "Invalid or expired token"
    else:
        assert reply.headers["WWW-Authenticate"] == MISSING
        assert reply.error["message"] == "Missing bearer token"


def assert_forbidden(reply: Reply) -> None:
    assert reply.status == 403, reply
    assert reply.code == "FORBIDDEN"
    assert reply.error["details"] == []
    assert "WWW-Authenticate" not in reply.headers


def assert_unavailable(reply: Reply) -> None:
    """The JWKS could not be had: the server's trouble, not the client's token."""
    assert reply.status == 503, reply
    assert reply.code == "SERVICE_UNAVAILABLE"
    assert reply.headers["Retry-After"] == "2"
    assert "127.0.0.1" not in reply.error["message"]


def hs_settings(**changes: Any) -> Settings:
    jwt_settings = JwtSettings(secret=SECRET, issuer=ISSUER, audience=AUDIENCE)
    return Settings(auth="jwt", jwt=dataclasses.replace(jwt_settings, **changes))


@pytest.fixture
async def hs_client(serve: ClientFactory) -> ApiClient:
    """The standalone app with HS256 tokens of ``SECRET``, ``ISSUER`` and ``AUDIENCE``."""
    return await serve(MemoryTaskStore(), hs_settings())


# --- HS256: what is accepted ---------------------------------------------------------


async def test_a_valid_token_opens_its_own_users_tasks(
    store: TaskStore, serve: ClientFactory
) -> None:
    client = await serve(store, hs_settings())
    headers = bearer(hs(claims()))
    created = await client.post(TASKS, json={"title": "Buy milk"}, headers=headers)
    assert created.status == 201, created
    task_id = created.data["id"]
    assert (await client.get(TASKS, headers=headers)).status == 200
    assert (await client.head(TASKS, headers=headers)).status == 200
    assert (await client.get(f"{TASKS}/{task_id}", headers=headers)).status == 200
    patched = await client.patch(f"{TASKS}/{task_id}", json={"completed": True}, headers=headers)
    assert patched.status == 200
    assert (await client.delete(f"{TASKS}/{task_id}", headers=headers)).status == 200


async def test_the_path_user_is_compared_after_percent_decoding(hs_client: ApiClient) -> None:
    reply = await hs_client.post(
        "/api/al%40ice/tasks", json={"title": "x"}, headers=bearer(hs(claims("al@ice")))
    )
    assert reply.status == 201, reply
    assert reply.data["user_id"] == "al@ice"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_scheme_is_case_insensitive(hs_client: ApiClient, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {hs(claims())}"}
    assert (await hs_client.get(TASKS, headers=headers)).status == 200


async def test_leeway_forgives_that_much_clock_skew(serve: ClientFactory) -> None:
    late = hs(claims(exp=int(time.time()) - 5))
    strict = await serve(MemoryTaskStore(), hs_settings())
    assert_unauthorized(await strict.get(TASKS, headers=bearer(late)))
    lenient = await serve(MemoryTaskStore(), hs_settings(leeway=30.0))
    assert (await lenient.get(TASKS, headers=bearer(late))).status == 200


async def test_without_a_configured_audience_any_aud_is_accepted(serve: ClientFactory) -> None:
    """Better Auth puts its base URL in aud; unchecked must not mean refused."""
    client = await serve(MemoryTaskStore(), hs_settings(audience=None, issuer=None))
    for audience in ("https://elsewhere.example", DROP):
        reply = await client.get(TASKS, headers=bearer(hs(claims(aud=audience))))
        assert reply.status == 200, reply


# --- HS256: what is refused, and how -------------------------------------------------


def _alg_none() -> str:
    return compact({"alg": "none", "typ": "JWT"}, claims(), lambda _: b"")


ATTACKS: Final[dict[str, tuple[Callable[[], dict[str, str]], bool]]] = {
    "missing header": (dict, False),
    "basic scheme": (lambda: {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, False),
    "scheme only": (lambda: {"Authorization": "Bearer"}, True),
    "malformed token": (lambda: bearer("not-a-jwt"), True),
    "three garbage segments": (lambda: bearer("a.b.c"), True),
    "expired": (lambda: bearer(hs(claims(exp=int(time.time()) - 60))), True),
    "not yet valid (nbf)": (lambda: bearer(hs(claims(nbf=int(time.time()) + 3600))), True),
    "issued in the future (iat)": (lambda: bearer(hs(claims(iat=int(time.time()) + 3600))), True),
    "no exp": (lambda: bearer(hs(claims(exp=DROP))), True),
    "no sub": (lambda: bearer(hs(claims(sub=DROP))), True),
    "sub not a string": (lambda: bearer(hs(claims(sub=42))), True),
    "alg none": (lambda: bearer(_alg_none()), True),
    "alg HS512 with the right secret": (lambda: bearer(hs(claims(), algorithm="HS512")), True),
    "signed with another secret": (lambda: bearer(hs(claims(), secret="x" * 64)), True),
    "tampered payload": (lambda: bearer(tampered(hs(claims("bob")), claims())), True),
    "wrong iss": (lambda: bearer(hs(claims(iss="https://evil.example"))), True),
    "no iss": (lambda: bearer(hs(claims(iss=DROP))), True),
    "wrong aud": (lambda: bearer(hs(claims(aud="https://other-api.example"))), True),
    "no aud": (lambda: bearer(hs(claims(aud=DROP))), True),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_bad_or_missing_token_is_a_401(hs_client: ApiClient, attack: str) -> None:
    headers, token_given = ATTACKS[attack]
    for method, path in (("GET", TASKS), ("POST", TASKS), ("DELETE", f"{TASKS}/{'0' * 32}")):
        json = {"title": "x"} if method == "POST" else None
        reply = await hs_client.request(method, path, json=json, headers=headers())
        assert_unauthorized(reply, token_given=token_given)
    assert (await hs_client.get(TASKS, headers=bearer(hs(claims())))).data == []


async def test_a_valid_token_for_another_user_is_a_403(hs_client: ApiClient) -> None:
    bob = bearer(hs(claims("bob")))
    await hs_client.post(TASKS, json={"title": "alice's"}, headers=bearer(hs(claims())))
    assert_forbidden(await hs_client.get(TASKS, headers=bob))
    assert_forbidden(await hs_client.post(TASKS, json={"title": "x"}, headers=bob))
    # Case matters, as it does for user ids everywhere.
    assert_forbidden(await hs_client.get(TASKS, headers=bearer(hs(claims("Alice")))))


async def test_checks_answer_in_the_contracts_order(hs_client: ApiClient) -> None:
    """404 and 405 first, then 401, then 403, then everything the API checked before."""
    alice = bearer(hs(claims()))
    assert (await hs_client.get("/api/alice/nothing")).status == 404
    assert (await hs_client.delete(TASKS)).status == 405
    # Without a token, a bad user id, task id or body is never looked at.
    assert_unauthorized(await hs_client.get("/api/bad!id/tasks"), token_given=False)
    assert_unauthorized(await hs_client.get(f"{TASKS}/not-a-uuid"), token_given=False)
    no_json = await hs_client.post(TASKS, body=b"{", content_type="text/plain")
    assert_unauthorized(no_json, token_given=False)
    # With a valid token for someone else, 403 comes before the same problems.
    assert_forbidden(await hs_client.get("/api/bad!id/tasks", headers=alice))
    assert_forbidden(await hs_client.post("/api/bob/tasks", body=b"{", headers=alice))
    # With the right token, the old checks answer as before.
    assert (await hs_client.get(f"{TASKS}/not-a-uuid", headers=alice)).status == 404
    assert (await hs_client.post(TASKS, body=b"{", headers=alice)).status == 400


async def test_documentation_and_probes_need_no_token(hs_client: ApiClient) -> None:
    for path in ("/api/openapi.json", "/api/docs", "/healthz", "/readyz"):
        assert (await hs_client.get(path)).status == 200, path


async def test_the_served_document_describes_the_authentication(hs_client: ApiClient) -> None:
    document = (await hs_client.get("/api/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    create = document["paths"]["/api/{user_id}/tasks"]["post"]
    assert create["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(create["responses"])


async def test_cors_preflights_need_no_token_and_401s_are_readable(serve: ClientFactory) -> None:
    settings = Settings(
        cors_origins=(ORIGIN,), auth="jwt", jwt=JwtSettings(secret=SECRET, issuer=ISSUER)
    )
    client = await serve(MemoryTaskStore(), settings)
    preflight = await client.options(
        TASKS,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key",
        },
    )
    assert preflight.status == 204
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "idempotency-key" in allowed
    refused = await client.get(TASKS, headers={"Origin": ORIGIN})
    assert_unauthorized(refused, token_given=False)
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = refused.headers["Access-Control-Expose-Headers"]
    assert "WWW-Authenticate" in exposed
    assert "Idempotent-Replayed" in exposed


async def test_with_authentication_off_no_token_is_needed(serve: ClientFactory) -> None:
    client = await serve(MemoryTaskStore())
    assert (await client.post(TASKS, json={"title": "x"})).status == 201
    # A token, even a bad one, changes nothing: nothing reads it.
    assert (await client.get(TASKS, headers=bearer("garbage"))).status == 200
    document = (await client.get("/api/openapi.json")).json()
    assert "securitySchemes" not in document["components"]


@pytest.mark.parametrize(
    "raw_token",
    [b"eyJ\xff.eyJ.sig", b"\xe9\xe9.\xe9.\xe9", b"a.b.c!", b"a.b", b"a..c"],
    ids=repr,
)
async def test_a_token_that_is_not_three_base64url_segments_is_a_401(
    hs_client: ApiClient, raw_token: bytes
) -> None:
    """Sent as raw bytes (a client cannot send some of them): never a 500."""
    server = hs_client.raw.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(
            b"GET /api/alice/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Bearer " + raw_token + b"\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), answer
    assert b'error="invalid_token"' in head
    assert orjson.loads(body)["error"]["code"] == "UNAUTHORIZED"


async def test_refusals_are_logged_with_the_request_id_and_never_the_token(
    hs_client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = hs(claims(exp=int(time.time()) - 60))
    with caplog.at_level(logging.INFO, logger="todo_http"):
        reply = await hs_client.get(TASKS, headers={**bearer(token), "X-Request-ID": "req-42"})
        assert_unauthorized(reply)
        bob = await hs_client.get(
            TASKS, headers={**bearer(hs(claims("bob"))), "X-Request-ID": "r43"}
        )
        assert_forbidden(bob)
    lines = [record.getMessage() for record in caplog.records]
    assert any("401" in line and "req-42" in line and "Expired" in line for line in lines), lines
    assert any("403" in line and "r43" in line for line in lines), lines
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text


# --- properties, against the authenticator itself ------------------------------------


def _verdict(authenticator: JwtAuthenticator, authorization: str) -> str | Unauthorized:
    request = make_mocked_request("GET", TASKS, headers={"Authorization": authorization})
    try:
        return asyncio.run(authenticator(request))
    except Unauthorized as refusal:
        return refusal


@functools.cache
def hs_authenticator() -> JwtAuthenticator:
    return JwtAuthenticator(JwtSettings(secret=SECRET, issuer=ISSUER, audience=AUDIENCE))


_HEADER_TEXT: Final = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
)
_TOKENISH: Final = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="),
    max_size=120,
)


@given(value=_HEADER_TEXT | _TOKENISH.map(lambda token: f"Bearer {token}"))
def test_no_made_up_authorization_header_is_accepted(value: str) -> None:
    """Whatever it holds, a header not signed with the secret is a 401, never a 500."""
    assert isinstance(_verdict(hs_authenticator(), value), Unauthorized)


@given(data=st.data())
def test_any_change_to_a_signed_payload_is_refused(data: st.DataObject) -> None:
    token = hs(claims())
    header, payload, signature = token.split(".")
    index = data.draw(st.integers(0, len(payload) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_").filter(
            lambda character: character != payload[index]
        )
    )
    changed = payload[:index] + replacement + payload[index + 1 :]
    verdict = _verdict(hs_authenticator(), f"Bearer {header}.{changed}.{signature}")
    assert isinstance(verdict, Unauthorized)
    assert _verdict(hs_authenticator(), f"Bearer {token}") == "alice"


# --- JWKS -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """A private key and the public JWK a provider publishes for it."""

    algorithm: str
    kid: str
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    jwk: dict[str, Any]

    def token(self, payload: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, **header}
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers=headers)


@functools.cache
def signer(algorithm: str, kid: str) -> Signer:
    """One key per (algorithm, kid) for the whole session: RSA keys are slow to make."""
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        # As Better Auth publishes it: no alg, no use; kty and crv say EdDSA.
        jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        jwk = {**ECAlgorithm.to_jwk(private.public_key(), as_dict=True), "alg": "ES256"}
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        jwk = {**jwk, "alg": "RS256", "use": "sig"}
    return Signer(algorithm, kid, private, {**jwk, "kid": kid})


EDDSA: Final = ("EdDSA", "EdDSA-1")
ALGORITHMS: Final = ("EdDSA", "ES256", "RS256")


def jwks_claims(sub: str = "alice") -> dict[str, Any]:
    return claims(sub, iss=DROP, aud=DROP)


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


def _write_jwks(path: Path, *signers: Signer) -> None:
    path.write_bytes(orjson.dumps({"keys": [one.jwk for one in signers]}))


async def test_a_jwks_file_is_read_at_start_and_again_for_an_unknown_kid(
    serve: ClientFactory, tmp_path: Path
) -> None:
    path = tmp_path / "jwks.json"
    first, second = signer("ES256", "file-1"), signer("EdDSA", "file-2")
    _write_jwks(path, first)
    clock = Clock()
    authenticator = JwtAuthenticator(JwtSettings(jwks_file=str(path)), clock=clock)
    client = await serve(MemoryTaskStore(), authenticator=authenticator)
    assert (await client.get(TASKS, headers=bearer(first.token(jwks_claims())))).status == 200
    _write_jwks(path, second, first)
    assert_unauthorized(await client.get(TASKS, headers=bearer(second.token(jwks_claims()))))
    clock.advance(REFRESH_INTERVAL)
    assert (await client.get(TASKS, headers=bearer(second.token(jwks_claims())))).status == 200


async def test_settings_alone_wire_a_jwks_file(serve: ClientFactory, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    _write_jwks(path, signer("RS256", "RS256-1"))
    client = await serve(
        MemoryTaskStore(), Settings(auth="jwt", jwt=JwtSettings(jwks_file=str(path)))
    )
    token = bearer(signer("RS256", "RS256-1").token(jwks_claims()))
    assert (await client.get(TASKS, headers=token)).status == 200


# --- configuration ----------------------------------------------------------------------


def _settings(*argv: str, **environ: str) -> Settings:
    arguments = parser(environ).parse_args(["serve", *argv])
    settings, _ = serve_configuration(arguments, environ)
    return settings


@pytest.fixture
def jwks_file(tmp_path: Path) -> str:
    path = tmp_path / "jwks.json"
    _write_jwks(path, signer(*EDDSA))
    return str(path)


def test_authentication_is_off_by_default() -> None:
    settings = _settings()
    assert settings.auth == "none"
    assert settings.jwt == JwtSettings()


def test_the_command_line_chooses_jwt_over_the_environment(jwks_file: str) -> None:
    settings = _settings("--auth", "jwt", TODO_AUTH="none", TODO_JWKS_FILE=jwks_file)
    assert settings.auth == "jwt"
    settings = _settings(
        TODO_AUTH="jwt",
        TODO_JWT_SECRET=SECRET,
        TODO_JWT_ALGORITHMS="HS256, HS512",
        TODO_JWT_ISSUER=ISSUER,
        TODO_JWT_AUDIENCE=AUDIENCE,
        TODO_JWT_LEEWAY="2.5",
    )
    assert settings.jwt == JwtSettings(
        secret=SECRET,
        algorithms=("HS256", "HS512"),
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway=2.5,
    )
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "--auth jwt needs a key source: set one of TODO_JWT_SECRET"),
        (
            {"TODO_JWT_SECRET": SECRET, "TODO_JWKS_URL": "https://auth.example/jwks"},
            "set only one key source, not TODO_JWT_SECRET and TODO_JWKS_URL",
        ),
        ({"TODO_JWT_SECRET": "s" * 31}, "TODO_JWT_SECRET must be at least 32 bytes for HS256"),
        (
            {"TODO_JWT_SECRET": "s" * 40, "TODO_JWT_ALGORITHMS": "HS512"},
            "at least 64 bytes for HS512",
        ),
        (
            {"TODO_JWKS_URL": "https://auth.example/jwks", "TODO_JWT_ALGORITHMS": "RS256,HS256"},
            "HS256 needs TODO_JWT_SECRET",
        ),
        ({"TODO_JWT_SECRET": SECRET, "TODO_JWT_ALGORITHMS": "RS256"}, "RS256 needs a JWKS"),
        (
            {"TODO_JWKS_URL": "https://auth.example/jwks", "TODO_JWT_ALGORITHMS": "XS256"},
            "unknown algorithm 'XS256'",
        ),
        ({"TODO_JWT_SECRET": SECRET, "TODO_JWT_ALGORITHMS": "none"}, "'none' is refused"),
        ({"TODO_JWKS_URL": "ftp://auth.example/jwks"}, "http:// or https:// URL"),
        ({"TODO_JWKS_FILE": "/nonexistent/jwks.json"}, "cannot read it: No such file"),
        ({"TODO_JWT_SECRET": SECRET, "TODO_JWT_LEEWAY": "-1"}, "TODO_JWT_LEEWAY"),
        (
            {"TODO_JWT_SECRET": orjson.dumps(signer(*EDDSA).jwk).decode()},
            "TODO_JWT_SECRET looks like a public key",
        ),
    ],
    ids=[
        "no key source",
        "secret and JWKS",
        "short secret",
        "short secret for HS512",
        "HS256 with a JWKS",
        "RS256 with a secret",
        "unknown algorithm",
        "none",
        "JWKS URL scheme",
        "missing JWKS file",
        "negative leeway",
        "a public JWK as the secret",
    ],
)
def test_a_jwt_set_up_that_cannot_work_is_a_startup_error(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(StartupError, match=message):
        _settings("--auth", "jwt", **environ)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not JSON"),
        (b'{"kty": "OKP"}', 'not a JWKS: no "keys" list'),
        (b'{"keys": [{"kty": "oct", "kid": "a", "k": "c2VjcmV0"}]}', "no usable key"),
    ],
    ids=["not JSON", "a single key", "only unusable keys"],
)
def test_an_invalid_jwks_file_is_a_startup_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(content)
    with pytest.raises(StartupError, match=re.escape(f"TODO_JWKS_FILE {path}: {message}")):
        _settings("--auth", "jwt", TODO_JWKS_FILE=str(path))


def test_keys_configured_with_authentication_off_are_a_startup_error() -> None:
    """Someone who set a key believes the API is protected: refuse to prove them wrong."""
    with pytest.raises(StartupError, match="TODO_JWT_SECRET is set but authentication is off"):
        _settings(TODO_JWT_SECRET=SECRET)


def test_an_unknown_auth_mode_in_the_environment_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="TODO_AUTH must be one of none, jwt, not 'oauth'"):
        environment_settings({"TODO_AUTH": "oauth"})


def test_without_pyjwt_jwt_is_a_startup_error_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)  # import jwt now raises ImportError
    with pytest.raises(StartupError, match=r"pip install 'todo-core\[jwt\]'"):
        _settings("--auth", "jwt", TODO_JWT_SECRET=SECRET)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_loopback_hosts_need_no_warning(host: str) -> None:
    assert exposure_warnings(Settings(), ServeOptions(host=host)) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.5", "app.example.com"])
def test_serving_others_without_authentication_is_warned_about(host: str) -> None:
    [warning] = exposure_warnings(Settings(), ServeOptions(host=host))
    assert "WITHOUT AUTHENTICATION" in warning
    assert "open to anyone who can reach it" in warning
    secured = Settings(auth="jwt", jwt=JwtSettings(secret=SECRET))
    assert exposure_warnings(secured, ServeOptions(host=host)) == []


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://auth.example.com/api/auth/jwks", True),
        ("https://auth.example.com/api/auth/jwks", False),
        ("http://127.0.0.1:3000/api/auth/jwks", False),
        ("http://localhost:3000/api/auth/jwks", False),
    ],
)
def test_a_plain_http_jwks_url_to_another_host_is_warned_about(url: str, warned: bool) -> None:
    settings = Settings(auth="jwt", jwt=JwtSettings(jwks_url=url))
    warnings = exposure_warnings(settings, ServeOptions())
    assert bool(warnings) == warned
    assert all("plain http" in warning for warning in warnings)


# --- the command, end to end ------------------------------------------------------------


def test_serving_every_interface_without_authentication_logs_a_warning(tmp_path: Path) -> None:
    with ServerProcess("--host", "0.0.0.0", "--database-url", "memory://", cwd=tmp_path) as server:
        line = server.wait_for_line(lambda line: "WITHOUT AUTHENTICATION" in line)
        assert " WARNING " in line
        assert "open to anyone who can reach it" in line


def test_serve_with_auth_jwt_refuses_requests_without_a_token(tmp_path: Path) -> None:
    environment = server_environment(TODO_AUTH="jwt", TODO_JWT_SECRET=SECRET)
    with ServerProcess(
        "--database-url", "memory://", cwd=tmp_path, environment=environment
    ) as server:
        server.wait_ready()
        refused = server.request("POST", TASKS, {"title": "x"})
        assert refused.status == 401
        assert refused.headers["www-authenticate"] == MISSING
        token = hs(claims(iss=DROP, aud=DROP))
        created = server.request(
            "POST", TASKS, {"title": "x"}, {"Authorization": f"Bearer {token}"}
        )
        assert created.status == 201
        assert "WITHOUT AUTHENTICATION" not in server.output
        assert token not in server.output


def test_serve_with_auth_jwt_and_no_key_is_a_one_line_failure(tmp_path: Path) -> None:
    with ServerProcess("--auth", "jwt", cwd=tmp_path) as server:
        assert server.process.wait(60) == 1
        server.wait_for_line(lambda line: line.startswith("todo-http: error: --auth jwt needs"))
        assert len(server.lines) == 1, server.output
