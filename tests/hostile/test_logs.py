"""Nothing a client sends starts a new line in a log, and CORS answers vary by Origin."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from tests.hostile.conftest import start
from tests.hostile.wire import exchange, request_bytes

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
ORIGIN = "http://app.example"


def segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_token_header_cannot_forge_a_log_line(tmp_path: Path) -> None:
    marker = f"FORGED-{uuid.uuid4().hex}"
    header = {"alg": "HS256", "typ": "JWT", "crit": [f"x\n{marker} ERROR injected", "\r\x1b[2J"]}
    token = f"{segment(header)}.{segment({'sub': 'alice', 'exp': 4102444800})}.c2ln"
    arguments = (
        "--database-url",
        "sqlite:///tasks.db",
        "--auth",
        "jwt",
        "--log-format",
        "text",
        "--cors-origin",
        ORIGIN,
    )
    with start(arguments, tmp_path, TODO_JWT_SECRET=SECRET) as server:
        answer = exchange(
            server.port,
            request_bytes("GET", "/api/alice/tasks", [("Authorization", f"Bearer {token}")]),
        )
        assert answer.status == 401, answer
        # A path with an encoded line break, answered 404, in the same log.
        exchange(server.port, request_bytes("GET", f"/%0A{marker}/x"))
        exchange(server.port, request_bytes("GET", "/healthz"))
        lines = list(server.lines)
    assert any(marker in line for line in lines), lines  # it was logged, escaped
    assert not [line for line in lines if line.startswith(marker) or "\x1b" in line], lines


def test_cors_answers_vary_by_origin_for_every_origin(tmp_path: Path) -> None:
    arguments = ("--database-url", "sqlite:///tasks.db", "--cors-origin", ORIGIN)
    with start(arguments, tmp_path) as server:
        for origin in (ORIGIN, "http://other.example", None):
            headers = [("Origin", origin)] if origin else []
            for path in ("/api/v/tasks", "/api/v/tasks/nope", "/api/nowhere"):
                answer = exchange(server.port, request_bytes("GET", path, headers))
                assert "Origin" in (answer.header("vary") or ""), (origin, path, answer)
