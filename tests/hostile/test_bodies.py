"""Bodies: a deadline for their arrival, encodings other than gzip and deflate refused,
undecodable or oversized ones answered, and a client that leaves mid-body kept quiet."""

from __future__ import annotations

import gzip
import socket
import time
import zlib

import pytest

from tests.hostile.conftest import BODY_TIMEOUT, HostileServer, assert_quiet
from tests.hostile.wire import (
    HEALTHZ_SECONDS,
    JSON,
    connect,
    exchange,
    healthz_seconds,
    read_answer,
    request_bytes,
)

CREATE = "/api/bodies/tasks"


def head_only(content_length: int = 100, *extra: tuple[str, str]) -> bytes:
    """A create's head with a body promised but not (yet) sent."""
    return request_bytes("POST", CREATE, [JSON, ("Content-Length", str(content_length)), *extra])


class TestBodyTimeout:
    def test_a_body_that_stops_arriving_is_a_408_and_a_closed_connection(
        self, server: HostileServer
    ) -> None:
        mark = server.mark()
        with connect(server.port) as sock:
            started = time.monotonic()
            sock.sendall(head_only() + b'{"title": ')
            answer = read_answer(sock, started)
        assert answer.status == 408
        assert answer.envelope_error() == "REQUEST_TIMEOUT"
        assert answer.closed
        assert BODY_TIMEOUT <= answer.seconds < BODY_TIMEOUT + 1
        assert healthz_seconds(server) < HEALTHZ_SECONDS
        records = server.log_since(mark)
        assert_quiet(records)
        assert any("not received within" in r["message"] for r in records), records

    def test_a_chunked_body_whose_framing_breaks_mid_read_is_answered_and_closed(
        self, server: HostileServer
    ) -> None:
        mark = server.mark()
        chunked = ("Transfer-Encoding", "chunked")
        with connect(server.port) as sock:
            sock.sendall(request_bytes("POST", CREATE, [JSON, chunked]) + b"2\r\n{}\r\n")
            time.sleep(0.2)  # the handler is reading the body now
            started = time.monotonic()
            sock.sendall(b"zz\r\n")
            answer = read_answer(sock, started)
        assert answer.status in {400, 408}, answer
        assert answer.closed
        assert answer.envelope_error() in {"BAD_REQUEST", "REQUEST_TIMEOUT"}
        assert answer.seconds < BODY_TIMEOUT + 1
        assert_quiet(server.log_since(mark))

    def test_a_flood_of_slow_bodies_leaves_healthz_answering(self, server: HostileServer) -> None:
        mark = server.mark()
        stalled: list[socket.socket] = []
        worst = 0.0
        try:
            for _ in range(40):  # fewer than --max-connections: all are held
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                sock.sendall(head_only() + b"{")
                stalled.append(sock)
            deadline = time.monotonic() + BODY_TIMEOUT + 0.5
            while time.monotonic() < deadline:
                worst = max(worst, healthz_seconds(server))
                time.sleep(0.05)
            for sock in stalled:  # each was answered 408 and closed
                answer = read_answer(sock)
                assert answer.status == 408, answer
                assert answer.closed
        finally:
            for sock in stalled:
                sock.close()
        assert worst < HEALTHZ_SECONDS, worst
        assert_quiet(server.log_since(mark))


class TestEncodings:
    @pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip", "bogus"])
    def test_an_encoding_other_than_identity_gzip_or_deflate_is_415(
        self, server: HostileServer, encoding: str
    ) -> None:
        mark = server.mark()
        body = b'{"title": "x"}'
        answer = exchange(
            server.port,
            request_bytes("POST", CREATE, [JSON, ("Content-Encoding", encoding)], body),
        )
        assert answer.status == 415
        assert answer.envelope_error() == "UNSUPPORTED_MEDIA_TYPE"
        assert "Brotli" not in answer.body.decode()  # no word of optional packages
        assert healthz_seconds(server) < HEALTHZ_SECONDS
        assert_quiet(server.log_since(mark))

    @pytest.mark.parametrize("encoding", ["gzip", "deflate"])
    def test_a_body_that_does_not_decode_is_400_invalid_json(
        self, server: HostileServer, encoding: str
    ) -> None:
        mark = server.mark()
        answer = exchange(
            server.port,
            request_bytes("POST", CREATE, [JSON, ("Content-Encoding", encoding)], b"not-" * 8),
        )
        assert answer.status == 400
        assert answer.envelope_error() == "INVALID_JSON"
        assert healthz_seconds(server) < HEALTHZ_SECONDS
        assert_quiet(server.log_since(mark))

    @pytest.mark.parametrize(
        ("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
    )
    def test_encoded_bodies_are_read(
        self, server: HostileServer, encoding: str, compress: object
    ) -> None:
        assert callable(compress)
        body = compress(b'{"title": "packed"}')
        answer = exchange(
            server.port, request_bytes("POST", CREATE, [JSON, ("Content-Encoding", encoding)], body)
        )
        assert answer.status == 201
        assert answer.json()["data"]["title"] == "packed"

    def test_the_64_kib_limit_counts_decoded_bytes(self, server: HostileServer) -> None:
        mark = server.mark()
        bomb = gzip.compress(b'{"title": "' + b" " * 50_000_000 + b'"}')  # 48 MiB inflated
        started = time.monotonic()
        answer = exchange(
            server.port, request_bytes("POST", CREATE, [JSON, ("Content-Encoding", "gzip")], bomb)
        )
        assert answer.status == 413
        assert answer.envelope_error() == "PAYLOAD_TOO_LARGE"
        assert answer.closed  # nothing more of it is inflated
        assert time.monotonic() - started < 1
        assert healthz_seconds(server) < HEALTHZ_SECONDS
        assert_quiet(server.log_since(mark))


class TestClientGone:
    def test_a_client_leaving_mid_body_is_neither_a_500_nor_an_error_line(
        self, server: HostileServer
    ) -> None:
        mark = server.mark()
        for _ in range(5):
            with connect(server.port) as sock:
                sock.sendall(head_only(200) + b'{"title": "half')
                time.sleep(0.1)
        assert healthz_seconds(server) < HEALTHZ_SECONDS
        records = server.log_since(mark)
        assert_quiet(records)
        statuses = [r.get("status") for r in records if r.get("logger") == "aiohttp.access"]
        assert 500 not in statuses, records
