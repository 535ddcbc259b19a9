"""The order of checks: when a request fails several, the first in the contract's order answers.

unknown route 404, wrong method 405, bad user_id 422, malformed task_id 404, 413, 415,
400, body 422, missing task 404, If-Match 412.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import uuid4

import pytest

from tests.http.api_client import ApiClient, chunks, padded_json, task_path, tasks_path

ALICE = "alice"
BIG = padded_json({"title": "big"}, 65_537)
BAD_JSON = b'{"title":'
BAD_USER = "a%2Fb"
BAD_TASK = "abc"
STALE = '"v999"'


@dataclass(frozen=True)
class Case:
    """A request failing several checks, and the answer of the first of them."""

    name: str
    method: str
    path: str  # {task}: an existing task of alice; {missing}: an id that names none
    status: int
    code: str
    body: bytes | None = None
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    fields: tuple[str, ...] = ()


CASES = [
    Case("route before method", "PATCH", "/api/alice/tasks/{task}/x", 404, "NOT_FOUND"),
    Case("route before everything", "POST", "/api/a%2Fb/tasks/abc/x", 404, "NOT_FOUND", BIG,
         "text/plain"),
    Case("method before user_id", "POST", f"/api/{BAD_USER}/tasks/{BAD_TASK}", 405,
         "METHOD_NOT_ALLOWED", BIG, "text/plain"),
    Case("method before user_id on the collection", "DELETE", "/api/%00/tasks", 405,
         "METHOD_NOT_ALLOWED"),
    Case("user_id before task_id", "GET", f"/api/{BAD_USER}/tasks/{BAD_TASK}", 422,
         "VALIDATION_ERROR", fields=("user_id",)),
    Case("user_id before task_id on a write", "PUT", f"/api/%00/tasks/{BAD_TASK}", 422,
         "VALIDATION_ERROR", BAD_JSON, "text/plain", fields=("user_id",)),
    Case("user_id before 413", "POST", "/api/%C3%A9/tasks", 422, "VALIDATION_ERROR", BIG,
         fields=("user_id",)),
    Case("user_id before 415 and 400", "POST", f"/api/{'u' * 65}/tasks", 422,
         "VALIDATION_ERROR", BAD_JSON, "text/plain", fields=("user_id",)),
    Case("user_id before query", "GET", f"/api/{BAD_USER}/tasks?limit=0", 422,
         "VALIDATION_ERROR", fields=("user_id",)),
    Case("task_id before 413", "PUT", "/api/alice/tasks/abc", 404, "NOT_FOUND", BIG),
    Case("task_id before 413 chunked", "PATCH", "/api/alice/tasks/-1", 404, "NOT_FOUND", BIG,
         chunked=True),
    Case("task_id before 415", "PATCH", "/api/alice/tasks/-1", 404, "NOT_FOUND", b"{}",
         "text/plain"),
    Case("task_id before 400", "PUT", "/api/alice/tasks/%20", 404, "NOT_FOUND", BAD_JSON),
    Case("task_id before 412", "DELETE", "/api/alice/tasks/abc", 404, "NOT_FOUND",
         headers={"If-Match": STALE}),
    Case("413 before 415", "POST", "/api/alice/tasks", 413, "PAYLOAD_TOO_LARGE", BIG,
         "text/plain"),
    Case("413 before 415 chunked", "PUT", "/api/alice/tasks/{task}", 413, "PAYLOAD_TOO_LARGE",
         BIG, None, chunked=True),
    Case("413 before 400", "PATCH", "/api/alice/tasks/{task}", 413, "PAYLOAD_TOO_LARGE",
         b"[" * 65_537),
    Case("413 before missing task", "PUT", "/api/alice/tasks/{missing}", 413,
         "PAYLOAD_TOO_LARGE", BIG),
    Case("415 before 400", "POST", "/api/alice/tasks", 415, "UNSUPPORTED_MEDIA_TYPE",
         BAD_JSON, "text/plain"),
    Case("415 before 400 without a type", "PATCH", "/api/alice/tasks/{task}", 415,
         "UNSUPPORTED_MEDIA_TYPE", BAD_JSON, None),
    Case("415 before body 422", "PUT", "/api/alice/tasks/{task}", 415,
         "UNSUPPORTED_MEDIA_TYPE", b'{"title": ""}', "application/json; charset=latin-1"),
    Case("415 before missing task", "PUT", "/api/alice/tasks/{missing}", 415,
         "UNSUPPORTED_MEDIA_TYPE", b'{"title": "x"}', "text/plain"),
    Case("400 before missing task", "PUT", "/api/alice/tasks/{missing}", 400, "INVALID_JSON",
         BAD_JSON),
    Case("400 before 412", "PATCH", "/api/alice/tasks/{task}", 400, "INVALID_JSON", b"",
         headers={"If-Match": STALE}),
    Case("body 422 before missing task", "PATCH", "/api/alice/tasks/{missing}", 422,
         "VALIDATION_ERROR", b'{"title": ""}', fields=("title",)),
    Case("body 422 before missing task on PUT", "PUT", "/api/alice/tasks/{missing}", 422,
         "VALIDATION_ERROR", b"[]", fields=("body",)),
    Case("body 422 before 412", "PUT", "/api/alice/tasks/{task}", 422, "VALIDATION_ERROR",
         b'{"title": "x", "id": "1"}', headers={"If-Match": STALE}, fields=("id",)),
    Case("missing task before 412 on PUT", "PUT", "/api/alice/tasks/{missing}", 404,
         "NOT_FOUND", b'{"title": "x"}', headers={"If-Match": STALE}),
    Case("missing task before 412 on PATCH", "PATCH", "/api/alice/tasks/{missing}", 404,
         "NOT_FOUND", b'{"title": "x"}', headers={"If-Match": STALE}),
    Case("missing task before 412 on DELETE", "DELETE", "/api/alice/tasks/{missing}", 404,
         "NOT_FOUND", headers={"If-Match": STALE}),
    Case("missing task before If-Match list", "DELETE", "/api/alice/tasks/{missing}", 404,
         "NOT_FOUND", headers={"If-Match": '"v1", "v2"'}),
    Case("missing task with If-Match *", "PUT", "/api/alice/tasks/{missing}", 404,
         "NOT_FOUND", b'{"title": "x"}', headers={"If-Match": "*"}),
    Case("other user's task before 412", "PATCH", "/api/bob/tasks/{task}", 404, "NOT_FOUND",
         b'{"title": "x"}', headers={"If-Match": STALE}),
    Case("stale If-Match last", "PATCH", "/api/alice/tasks/{task}", 412,
         "PRECONDITION_FAILED", b'{"title": "x"}', headers={"If-Match": STALE}),
]  # fmt: skip


class TestOrderOfChecks:
    """The first failing check in the contract's order answers, and nothing changes."""

    async def test_first_failing_check_answers(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """Status, code and (for 422) the field at fault are the first check's."""
        task = await client.create(ALICE, title="kept")
        before = await client.get(tasks_path(ALICE))
        for case in CASES:
            with subtests.test(case.name):
                path = case.path.format(task=task["id"], missing=uuid4())
                body = case.body
                reply = await client.request(
                    case.method,
                    path,
                    body=chunks(body) if case.chunked and body is not None else body,
                    content_type=case.content_type,
                    headers=case.headers,
                )
                assert reply.status == case.status, reply
                assert reply.code == case.code
                if case.fields:
                    assert tuple(reply.fields) == case.fields
                assert (await client.get(tasks_path(ALICE))).body == before.body
                assert (await client.get(tasks_path("bob"))).data == []

    async def test_a_stale_write_keeps_the_etag(self, client: ApiClient) -> None:
        """After the 412 the task still has its original ETag and body."""
        task = await client.create(ALICE)
        before = await client.fetch(ALICE, task["id"])
        reply = await client.put(
            task_path(ALICE, task["id"]), json={"title": "new"}, headers={"If-Match": STALE}
        )
        assert reply.status == 412
        after = await client.fetch(ALICE, task["id"])
        assert after.headers["ETag"] == before.headers["ETag"]
        assert after.body == before.body
