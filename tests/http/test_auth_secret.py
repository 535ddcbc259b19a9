"""Authentication with a shared secret (HS256, docs/security.md): what is accepted, what
is refused and how, each answered with the contract's envelope (and, for 401, a Bearer
challenge); and properties of the authenticator over made-up headers and payloads.

Replies are checked against the document the server serves, which lists 401 and 403
when authentication is on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Final

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from tests.http.api_client import ORIGIN, ApiClient, ClientFactory
from tests.http.tokens import (
    AUDIENCE,
    DROP,
    ISSUER,
    SECRET,
    TASKS,
    assert_forbidden,
    assert_unauthorized,
    bearer,
    claims,
    compact,
    hs,
    hs_settings,
    tampered,
)
from todo_core import MemoryTaskStore, TaskStore
from todo_http import JwtSettings, Settings
from todo_http.auth import JwtAuthenticator
from todo_http.errors import Unauthorized


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
