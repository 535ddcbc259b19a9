"""The envelope's shortcuts write exactly what the plain code would.

``task_data`` leaves ids and most timestamps for orjson to write, and server-made
request ids skip the ``UUID`` class: both for speed, so both are pinned here against
``str()``, ``rfc3339()`` and ``uuid4().hex``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import RFC_4122, UUID, uuid4

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request
from pytest_aiohttp import AiohttpClient

from todo_core import MemoryTaskStore, Task
from todo_core.timestamps import rfc3339
from todo_http import create_app
from todo_http.envelope import _request_id, success, task_data


class _Moment(datetime):
    """A subclass of datetime, as some drivers and libraries hand out."""


MOMENTS = [
    datetime(2026, 11, 30, 10, 22, 44, 123456, tzinfo=UTC),
    datetime(2026, 11, 30, 10, 22, 44, tzinfo=UTC),  # no fraction: orjson would drop it
    datetime(2026, 11, 30, 10, 22, 44, 1, tzinfo=UTC),
    datetime(2026, 11, 30, 10, 22, 44, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    _Moment(2026, 11, 30, 10, 22, 44, 5, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=repr)
def test_task_timestamps_are_written_as_rfc3339(moment: datetime) -> None:
    # As the SQL stores build tasks from rows: the driver's datetimes as they come.
    task = Task.model_construct(
        id=uuid4(),
        user_id="alice",
        title="t",
        description=None,
        completed=True,
        due_at=moment,
        priority="none",
        tags=("home",),  # type: ignore[arg-type]  # a driver may hand out a tuple
        recurrence="daily",
        time_zone="UTC",
        completed_at=moment,
        next_occurrence_id=uuid4(),
        created_at=moment,
        updated_at=moment,
        version=1,
    )
    response = success(task_data(task), "m")
    assert isinstance(response.body, bytes)
    data = orjson.loads(response.body)["data"]
    assert data["id"] == str(task.id)
    assert data["next_occurrence_id"] == str(task.next_occurrence_id)
    assert data["tags"] == ["home"]
    stamps = {data[name] for name in ("created_at", "updated_at", "due_at", "completed_at")}
    assert stamps == {rfc3339(moment)}
    assert data["created_at"].endswith("Z")
    assert len(data["created_at"]) == len("2026-11-30T10:22:44.000000Z")


def test_unset_optional_fields_are_written_as_null() -> None:
    moment = datetime(2026, 11, 30, 10, 22, 44, tzinfo=UTC)
    task = Task.model_construct(
        id=uuid4(),
        user_id="alice",
        title="t",
        description=None,
        completed=False,
        due_at=None,
        priority="none",
        tags=[],
        recurrence=None,
        time_zone="UTC",
        completed_at=None,
        next_occurrence_id=None,
        created_at=moment,
        updated_at=moment,
        version=1,
    )
    data = orjson.loads(success(task_data(task), "m").body)["data"]  # type: ignore[arg-type]
    assert {name: data[name] for name in ("due_at", "completed_at", "next_occurrence_id")} == {
        "due_at": None,
        "completed_at": None,
        "next_occurrence_id": None,
    }


def test_server_made_request_ids_are_random_uuid4_in_hex() -> None:
    request = make_mocked_request("GET", "/healthz")
    made = {_request_id(request) for _ in range(1000)}
    assert len(made) == 1000
    for value in made:
        parsed = UUID(hex=value)
        assert parsed.hex == value  # 32 lower-case hexadecimal digits
        assert parsed.version == 4
        assert parsed.variant == RFC_4122


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/alice/tasks", {"title": "x"}),
        ("GET", "/api/alice/tasks", None),
        ("POST", "/api/alice/tasks", {"title": ""}),
        ("GET", "/nowhere", None),
        ("GET", "/healthz", None),
        ("GET", "/api/openapi.json", None),
    ],
    ids=["created", "list", "invalid", "not-found", "probe", "document"],
)
async def test_every_json_body_ends_its_line(
    aiohttp_client: AiohttpClient, method: str, path: str, body: object
) -> None:
    """So that curl's output, printed to a terminal, does not run into the prompt."""
    client = await aiohttp_client(create_app(MemoryTaskStore()))
    response = await client.request(method, path, json=body)
    assert response.content_type == "application/json"
    raw = await response.read()
    assert raw.endswith(b"}\n")
    assert raw.count(b"\n") == 1  # one line: compact, then the newline
    assert isinstance(orjson.loads(raw), dict)
