"""Requests aiohttp refuses before any application sees them, and pipelines: each is a
400 envelope (415 for an encoding aiohttp cannot decode, 417 for an expectation), in
HTTP/1.1, closing the connection, and logged on one INFO line."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import HostileServer, assert_quiet
from tests.hostile.wire import (
    HEALTHZ_SECONDS,
    JSON,
    connect,
    exchange,
    healthz_seconds,
    read_answer,
    request_bytes,
)

# aiohttp's limits: a request line or one header line of at most 8190 bytes.
MAX_LINE = 8190

MALFORMED = {
    "signed content-length": request_bytes("POST", "/api/m/tasks", [JSON, ("Content-Length", "+2")])
    + b"{}",
    "two content-lengths": request_bytes(
        "POST", "/api/m/tasks", [JSON, ("Content-Length", "2"), ("Content-Length", "3")]
    )
    + b"{}",
    "chunked with a bad size": request_bytes(
        "POST", "/api/m/tasks", [JSON, ("Transfer-Encoding", "chunked")]
    )
    + b"zz\r\n",
    "tls on the http port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40,
    "no version": b"GET /healthz\r\n\r\n",
    "space in the path": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "header without colon": b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
    "control character in a header": b"GET /healthz HTTP/1.1\r\nX-A: a\x01b\r\n\r\n",
    "request line too long": request_bytes("GET", "/" + "a" * (MAX_LINE + 10)),
    "header line too long": request_bytes("GET", "/healthz", [("X-Long", "a" * (MAX_LINE + 10))]),
    "too many headers": request_bytes("GET", "/healthz", [(f"X-{n}", "1") for n in range(200)]),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_request_is_a_400_envelope_logged_below_error(
    server: HostileServer, name: str
) -> None:
    mark = server.mark()
    answer = exchange(server.port, MALFORMED[name])
    assert answer.status == 400, answer
    assert answer.envelope_error() == "BAD_REQUEST"
    # aiohttp answers what it cannot parse in HTTP/1.0; never in a version it was sent.
    assert answer.status_line.split()[0] in {"HTTP/1.0", "HTTP/1.1"}
    assert answer.closed
    assert healthz_seconds(server) < HEALTHZ_SECONDS
    records = server.log_since(mark)
    assert_quiet(records)
    request_id = answer.header("x-request-id")
    assert request_id is not None
    explained = [r for r in records if r["logger"] == "todo_http" and request_id in r["message"]]
    assert [r["level"] for r in explained] == ["INFO"], records


def test_a_header_line_at_the_limit_is_served(server: HostileServer) -> None:
    line = f"X-Long: {'a' * (MAX_LINE - len('X-Long: ') - 2)}"
    assert len(line) + 2 <= MAX_LINE
    name, _, value = line.partition(": ")
    answer = exchange(server.port, request_bytes("GET", "/healthz", [(name, value)]))
    assert answer.status == 200, answer


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9", "HTTP/1.9"])
def test_another_http_version_is_answered_400_in_http_1_1(
    server: HostileServer, version: str
) -> None:
    answer = exchange(server.port, request_bytes("GET", "/healthz", version=version))
    assert answer.status_line.split()[:2] in (["HTTP/1.1", "400"], ["HTTP/1.0", "400"])
    assert answer.envelope_error() == "BAD_REQUEST"
    assert answer.closed
    assert version not in answer.status_line


@pytest.mark.parametrize("expect", ["bogus", "100-continue, bogus", "200-ok"])
def test_an_expectation_other_than_100_continue_is_417(server: HostileServer, expect: str) -> None:
    mark = server.mark()
    answer = exchange(
        server.port, request_bytes("POST", "/api/m/tasks", [JSON, ("Expect", expect)], b"{}")
    )
    assert answer.status == 417
    assert answer.envelope_error() == "EXPECTATION_FAILED"
    assert answer.closed
    assert healthz_seconds(server) < HEALTHZ_SECONDS
    assert_quiet(server.log_since(mark))


def test_100_continue_is_honoured(server: HostileServer) -> None:
    body = b'{"title": "after continue"}'
    with connect(server.port) as sock:
        sock.sendall(
            request_bytes(
                "POST",
                "/api/m/tasks",
                [JSON, ("Expect", "100-continue"), ("Content-Length", str(len(body)))],
            )
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        answer = read_answer(sock)
    assert answer.status == 201, answer


def test_garbage_pipelined_after_a_good_request_answers_the_good_one_then_400(
    server: HostileServer,
) -> None:
    mark = server.mark()
    with connect(server.port) as sock:
        sock.sendall(request_bytes("GET", "/healthz"))
        first = read_answer(sock)
        assert first.status == 200, first
        sock.sendall(b"\x00\x01garbage\r\n\r\n")
        second = read_answer(sock)
    assert second.status == 400
    assert second.envelope_error() == "BAD_REQUEST"
    assert second.closed
    assert healthz_seconds(server) < HEALTHZ_SECONDS
    assert_quiet(server.log_since(mark))
