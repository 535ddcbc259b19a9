"""The task endpoints. Each handler parses, calls the store, and wraps the result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar
from uuid import UUID

from aiohttp import hdrs, web
from pydantic import BaseModel

from todo_core import Task, TaskCreate, TaskPatch, TaskReplace, TaskStore
from todo_http.conditional import etag, expected_version, not_modified
from todo_http.envelope import success, task_data, task_fields_data
from todo_http.keys import STORE
from todo_http.links import next_page_url, path_segment
from todo_http.parsing import (
    JSON_TYPES,
    PATCH_TYPES,
    idempotency_key_of,
    list_query_of,
    read_model,
    tag_query_of,
    task_id_of,
    user_id_of,
)

__all__ = ["add_task_routes", "page_response", "task_response"]

Input = TypeVar("Input", bound=BaseModel)
REPLAYED: Final = "Idempotent-Replayed"  # the answer repeats an earlier create's
Write = Callable[[TaskStore, str, UUID, Input, int | None], Awaitable[Task]]


def task_response(task: Task, message: str, *, status: int = 200) -> web.Response:
    return success(task_data(task), message, status=status, headers={"ETag": etag(task)})


def page_response(
    request: web.Request,
    route: str,
    user_id: str,
    page: tuple[list[Any], str | None],
    limit: int,
    message: str,
) -> web.Response:
    """A listing's answer: its page of ``data``, ``meta``, and a ``Link`` to the next."""
    items, next_cursor = page
    headers: dict[str, str] = {}
    if next_cursor is not None:
        url = next_page_url(request, route, user_id, next_cursor)
        headers[hdrs.LINK] = f'<{url}>; rel="next"'
    return success(
        items, message, meta={"limit": limit, "next_cursor": next_cursor}, headers=headers
    )


async def list_tasks(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    query = list_query_of(request)
    page = await request.app[STORE].list_fields(user_id, query)
    items = [task_fields_data(fields) for fields in page.items]
    return page_response(
        request, "tasks", user_id, (items, page.next_cursor), query.limit, "Tasks retrieved"
    )


async def list_tags(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    query = tag_query_of(request)
    page = await request.app[STORE].list_tags(user_id, query)
    items = [{"tag": item.tag, "count": item.count} for item in page.items]
    return page_response(
        request, "tags", user_id, (items, page.next_cursor), query.limit, "Tags retrieved"
    )


async def create_task(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    data = await read_model(request, TaskCreate, JSON_TYPES)
    key = idempotency_key_of(request)
    store = request.app[STORE]
    replayed = False
    if key is None:
        task = await store.create(user_id, data)
    else:
        created = await store.create_once(user_id, data, key=key)
        task, replayed = created.task, created.replayed
    location = request.app.router["task"].canonical.format(
        user_id=path_segment(user_id), task_id=task.id
    )
    response = task_response(task, "Task created", status=201)
    response.headers[hdrs.LOCATION] = location
    if replayed:
        response.headers[REPLAYED] = "true"
    return response


async def get_task(request: web.Request) -> web.StreamResponse:
    user_id, task_id = user_id_of(request), task_id_of(request)
    task = await request.app[STORE].get(user_id, task_id)
    tag = etag(task)
    if not_modified(request, tag):
        return web.Response(status=304, headers={"ETag": tag})
    return task_response(task, "Task retrieved")


async def _write(
    request: web.Request, model: type[Input], accepted: frozenset[str], write: Write[Input]
) -> web.Response:
    """PUT and PATCH: the same checks in the same order, a different store call."""
    user_id, task_id = user_id_of(request), task_id_of(request)
    data = await read_model(request, model, accepted)
    store = request.app[STORE]
    expected = await expected_version(request, store, user_id, task_id)
    task = await write(store, user_id, task_id, data, expected)
    return task_response(task, "Task updated")


async def replace_task(request: web.Request) -> web.Response:
    return await _write(
        request,
        TaskReplace,
        JSON_TYPES,
        lambda store, user, task, data, version: store.replace(
            user, task, data, expected_version=version
        ),
    )


async def patch_task(request: web.Request) -> web.Response:
    return await _write(
        request,
        TaskPatch,
        PATCH_TYPES,
        lambda store, user, task, data, version: store.patch(
            user, task, data, expected_version=version
        ),
    )


async def delete_task(request: web.Request) -> web.Response:
    user_id, task_id = user_id_of(request), task_id_of(request)
    store = request.app[STORE]
    expected = await expected_version(request, store, user_id, task_id)
    task = await store.delete(user_id, task_id, expected_version=expected)
    return success(task_data(task), "Task deleted")


def add_task_routes(router: web.UrlDispatcher) -> None:
    """Register the task and tag endpoints on ``router`` (GET also answers HEAD)."""
    collection = router.add_resource("/{user_id}/tasks", name="tasks")
    collection.add_route(hdrs.METH_GET, list_tasks)
    collection.add_route(hdrs.METH_HEAD, list_tasks)
    collection.add_route(hdrs.METH_POST, create_task)
    item = router.add_resource("/{user_id}/tasks/{task_id}", name="task")
    item.add_route(hdrs.METH_GET, get_task)
    item.add_route(hdrs.METH_HEAD, get_task)
    item.add_route(hdrs.METH_PUT, replace_task)
    item.add_route(hdrs.METH_PATCH, patch_task)
    item.add_route(hdrs.METH_DELETE, delete_task)
    tags = router.add_resource("/{user_id}/tags", name="tags")
    tags.add_route(hdrs.METH_GET, list_tags)
    tags.add_route(hdrs.METH_HEAD, list_tags)
