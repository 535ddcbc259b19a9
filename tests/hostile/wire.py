"""Raw HTTP/1.1 over a socket, for requests no well-behaved client library would send.

``exchange`` writes bytes as given and reads what comes back, noting whether the
server closed the connection and how long it took; ``Answer`` parses one response.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from tests.http.server_process import ServerProcess

__all__ = [
    "JSON",
    "Answer",
    "connect",
    "exchange",
    "healthz_seconds",
    "read_answer",
    "request_bytes",
]

JSON: Final = ("Content-Type", "application/json")
# The contract: after any hostile request the server still answers /healthz this fast.
HEALTHZ_SECONDS = 0.1


@dataclass
class Answer:
    status: int
    status_line: str
    headers: dict[str, list[str]]  # names in lower case
    body: bytes
    closed: bool  # the server closed the connection after this answer
    seconds: float
    rest: bytes = field(default=b"")  # anything after the first answer

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def envelope_error(self) -> str:
        """The error code of an envelope answer, checking the envelope's shape."""
        assert self.header("content-type") == "application/json", self
        assert self.header("x-request-id"), self
        document = self.json()
        assert document["success"] is False, document
        assert set(document["error"]) == {"code", "message", "details"}, document
        code: str = document["error"]["code"]
        return code


def request_bytes(
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    *,
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{method} {path} {version}", "Host: test"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None and not any(n.lower() == "transfer-encoding" for n, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


@contextmanager
def connect(port: int, timeout: float = 5.0) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def read_answer(
    sock: socket.socket, started: float | None = None, *, see_close: bool = True
) -> Answer:
    """One response from ``sock``: its head, a body of its Content-Length, and whether
    the server then closed the connection (looked for briefly)."""
    started = time.monotonic() if started is None else started
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed without an answer; got {data!r}")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 1"):  # skip "100 Continue"
            break
        data = rest
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(headers.get("content-length", ["0"])[0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    seconds = time.monotonic() - started
    body, rest = rest[:length], rest[length:]
    closed = _closed_soon(sock, rest) if see_close else False
    return Answer(int(status_line.split()[1]), status_line, headers, body, closed, seconds, rest)


def _closed_soon(sock: socket.socket, rest: bytes, wait: float = 0.5) -> bool:
    if rest:
        return False
    previous = sock.gettimeout()
    sock.settimeout(wait)
    try:
        return sock.recv(65536) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(previous)


def exchange(port: int, data: bytes, timeout: float = 5.0, *, see_close: bool = True) -> Answer:
    """Send ``data`` on a new connection and read one answer (``see_close``: then wait
    up to half a second to see whether the server closes the connection)."""
    with connect(port, timeout) as sock:
        started = time.monotonic()
        sock.sendall(data)
        return read_answer(sock, started, see_close=see_close)


def healthz_seconds(server: ServerProcess) -> float:
    """How long ``GET /healthz`` takes on a new connection; fails unless it is a 200."""
    answer = exchange(server.port, request_bytes("GET", "/healthz"), see_close=False)
    assert answer.status == 200, answer
    return answer.seconds
