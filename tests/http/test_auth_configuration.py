"""Turning authentication on (docs/security.md, docs/configuration.md): options and
variables, set-ups that cannot work, warnings, and ``todo-http serve --auth jwt``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import orjson
import pytest

from tests.http.server_process import ServerProcess, server_environment
from tests.http.tokens import (
    AUDIENCE,
    DROP,
    EDDSA,
    ISSUER,
    MISSING,
    SECRET,
    TASKS,
    claims,
    hs,
    signer,
    write_jwks,
)
from todo_http import JwtSettings, Settings
from todo_http.cli import environment_settings, exposure_warnings, parser, serve_configuration
from todo_http.server import ServeOptions, StartupError

# --- configuration ----------------------------------------------------------------------


def _settings(*argv: str, **environ: str) -> Settings:
    arguments = parser(environ).parse_args(["serve", *argv])
    settings, _ = serve_configuration(arguments, environ)
    return settings


@pytest.fixture
def jwks_file(tmp_path: Path) -> str:
    path = tmp_path / "jwks.json"
    write_jwks(path, signer(*EDDSA))
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
