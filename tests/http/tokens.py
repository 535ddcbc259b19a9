"""Bearer tokens for the authentication tests: claims, HS256 and JWKS signers, the
settings that accept them, and what each refusal looks like to a client."""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.http.api_client import Reply
from todo_http import JwtSettings, Settings

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


def write_jwks(path: Path, *signers: Signer) -> None:
    path.write_bytes(orjson.dumps({"keys": [one.jwk for one in signers]}))
