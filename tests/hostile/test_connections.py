"""Connections: a flood of idle or slow ones is turned away at the process's limit while
/healthz and real clients are still answered, and no head may take forever."""

from __future__ import annotations

import logging
import resource
import socket
import time

import pytest

from tests.hostile.conftest import (
    BODY_TIMEOUT,
    KEEPALIVE_TIMEOUT,
    MAX_CONNECTIONS,
    HostileServer,
    assert_quiet,
)
from tests.hostile.wire import HEALTHZ_SECONDS, connect, healthz_seconds, request_bytes
from todo_http.connections import raise_file_limit
from todo_http.server import _connection_limit


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except ConnectionResetError:
        return True


def open_idle(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def test_idle_connections_past_the_limit_make_room_for_real_clients(
    server: HostileServer,
) -> None:
    mark = server.mark()
    flood = open_idle(server.port, MAX_CONNECTIONS * 3)
    try:
        worst = max(healthz_seconds(server) for _ in range(20))
        time.sleep(0.2)
        evicted = sum(closed_by_server(sock) for sock in flood)
    finally:
        for sock in flood:
            sock.close()
    assert worst < HEALTHZ_SECONDS, worst
    # Each new connection past the limit closed the one idle longest.
    assert evicted >= MAX_CONNECTIONS * 2, evicted
    assert_quiet(server.log_since(mark))


def test_with_every_connection_inside_a_request_new_ones_are_refused_until_they_end(
    server: HostileServer,
) -> None:
    mark = server.mark()
    busy: list[socket.socket] = []
    try:
        for sock in open_idle(server.port, MAX_CONNECTIONS):
            busy.append(sock)
            sock.sendall(
                request_bytes(
                    "POST",
                    "/api/c/tasks",
                    [("Content-Type", "application/json"), ("Content-Length", "50")],
                )
                + b"{"
            )
        time.sleep(0.3)  # every one of them is reading its body now
        with connect(server.port) as refused:
            refused.settimeout(2)
            try:
                refused.sendall(request_bytes("GET", "/healthz"))
                assert refused.recv(100) == b""  # closed without an answer
            except (ConnectionResetError, BrokenPipeError):
                pass  # or reset: refused either way
        time.sleep(BODY_TIMEOUT + 0.3)  # the slow bodies are answered 408 and closed
        assert healthz_seconds(server) < HEALTHZ_SECONDS
    finally:
        for sock in busy:
            sock.close()
    records = server.log_since(mark)
    assert any("refused a connection" in r["message"] for r in records), records
    assert_quiet(records)


def test_a_request_head_that_never_ends_is_closed_after_the_keepalive_timeout(
    server: HostileServer,
) -> None:
    with connect(server.port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.5)
        while time.monotonic() - started < KEEPALIVE_TIMEOUT + 2:
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # one header line at a time
                if sock.recv(100) == b"":
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        elapsed = time.monotonic() - started
    assert elapsed < KEEPALIVE_TIMEOUT + 1, elapsed
    assert healthz_seconds(server) < HEALTHZ_SECONDS


def test_the_connection_limit_fits_the_open_file_limit(caplog: pytest.LogCaptureFixture) -> None:
    assert _connection_limit(500, 20_000) == 500
    with caplog.at_level(logging.WARNING, "todo_http.server"):
        assert _connection_limit(12_000, 1_024) == 1_024 - 256
    assert "open-file limit is 1024" in caplog.text


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard) // 2, hard))
        assert raise_file_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if hard != resource.RLIM_INFINITY:
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
