"""Headers: parsed in time linear in their length, repeated lines read as one list, and
no value of any header the server reads makes it fail or stall."""

from __future__ import annotations

import time
import uuid

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from tests.hostile.conftest import HostileServer, assert_quiet
from tests.hostile.wire import HEALTHZ_SECONDS, exchange, healthz_seconds, request_bytes
from todo_http.conditional import _tags

# Every request header the server itself reads (aiohttp's parser reads the framing ones).
PARSED_HEADERS = (
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
    "Content-Type",
    "Content-Encoding",
    "Idempotency-Key",
    "Expect",
    "Origin",
    "Access-Control-Request-Method",
    "Authorization",
)
# A header value as a client can put it on the wire: any byte but CR, LF and NUL.
HEADER_VALUES = st.text(
    st.characters(min_codepoint=1, max_codepoint=255, blacklist_characters="\r\n"),
    max_size=4000,
) | st.sampled_from([" " * 8000, '"' * 8000, ", " * 4000, "W/" * 4000, '"v1",' * 1600])


def create(server: HostileServer, user: str) -> str:
    body = b'{"title": "target"}'
    answer = exchange(
        server.port,
        request_bytes("POST", f"/api/{user}/tasks", [("Content-Type", "application/json")], body),
    )
    assert answer.status == 201, answer
    task_id: str = answer.json()["data"]["id"]
    return task_id


class TestLinearParsing:
    def test_an_8_kib_entity_tag_list_of_blanks_parses_in_a_millisecond(self) -> None:
        # A quadratic scan of 64 KiB takes minutes; the bound leaves room for a loaded
        # machine running the suite under coverage, where a linear one took over 0.05 s.
        for text in (" " * 8192, " " * 65536, '"' * 65536, ", " * 32768, 'W/"' * 20000):
            started = time.perf_counter()
            assert _tags(text) == []
            assert time.perf_counter() - started < 0.5, len(text)

    def test_an_8_kib_if_match_of_blanks_does_not_stall_the_server(
        self, server: HostileServer
    ) -> None:
        task_id = create(server, f"u{uuid.uuid4().hex[:8]}")
        mark = server.mark()
        worst = 0.0
        for _ in range(20):  # before: about 1 s of event-loop time each
            answer = exchange(
                server.port,
                request_bytes("DELETE", f"/api/nobody/tasks/{task_id}", [("If-Match", " " * 8000)]),
            )
            assert answer.status == 404, answer
            worst = max(worst, answer.seconds)
        assert worst < 0.1, worst
        assert healthz_seconds(server) < HEALTHZ_SECONDS
        assert_quiet(server.log_since(mark))


class TestRepeatedConditionalHeaders:
    def test_if_match_lines_form_one_list_in_either_order(self, server: HostileServer) -> None:
        user = f"u{uuid.uuid4().hex[:8]}"
        for lines in (
            [("If-Match", '"v9"'), ("If-Match", '"v1"')],
            [("If-Match", '"v1"'), ("If-Match", '"v9"')],
        ):
            task_id = create(server, user)
            answer = exchange(
                server.port, request_bytes("DELETE", f"/api/{user}/tasks/{task_id}", lines)
            )
            assert answer.status == 200, answer

    def test_stale_tags_on_several_lines_still_fail(self, server: HostileServer) -> None:
        user = f"u{uuid.uuid4().hex[:8]}"
        task_id = create(server, user)
        lines = [("If-Match", '"v7"'), ("If-Match", '"v8", "v9"')]
        answer = exchange(
            server.port, request_bytes("DELETE", f"/api/{user}/tasks/{task_id}", lines)
        )
        assert answer.status == 412
        assert answer.envelope_error() == "PRECONDITION_FAILED"

    def test_if_none_match_lines_form_one_list(self, server: HostileServer) -> None:
        user = f"u{uuid.uuid4().hex[:8]}"
        task_id = create(server, user)
        for lines in (
            [("If-None-Match", '"v5"'), ("If-None-Match", '"v1"')],
            [("If-None-Match", '"v1"'), ("If-None-Match", '"v5"')],
        ):
            answer = exchange(
                server.port, request_bytes("GET", f"/api/{user}/tasks/{task_id}", lines)
            )
            assert answer.status == 304, answer


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    header=st.sampled_from(PARSED_HEADERS),
    value=HEADER_VALUES,
    method=st.sampled_from(["GET", "PUT", "DELETE", "POST", "OPTIONS"]),
)
def test_no_header_value_fails_or_stalls_the_server(
    server: HostileServer, header: str, value: str, method: str
) -> None:
    task = "/api/fuzz/tasks/00000000-0000-4000-8000-000000000000"
    path = "/api/fuzz/tasks" if method == "POST" else task
    body = b'{"title": "x"}' if method in {"PUT", "POST"} else None
    headers = [(header, value)]
    if header != "Content-Type" and body is not None:
        headers.append(("Content-Type", "application/json"))
    answer = exchange(server.port, request_bytes(method, path, headers, body), see_close=False)
    assert answer.status < 500, answer
    assert answer.seconds < 0.5, (header, len(value), answer.seconds)
    assert answer.header("content-type") == "application/json", answer
