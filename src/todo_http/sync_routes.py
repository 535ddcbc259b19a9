"""The change feed and the trash endpoints: what a client needs to stay in step.

``GET /{user_id}/changes`` reads the feed; ``/{user_id}/trash`` lists the trash and
empties it, ``/{user_id}/trash/{task_id}`` purges one task for good and
``/{user_id}/trash/{task_id}/restore`` brings one back. Deleting a task stays
``DELETE /{user_id}/tasks/{task_id}`` (``routes.py``), which answers as v1 did.
"""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web

from todo_core.feed import TrashedTask
from todo_core.timestamps import rfc3339
from todo_http.envelope import change_data, success, task_data
from todo_http.keys import STORE
from todo_http.parsing import changes_query_of, task_id_of, trash_query_of, user_id_of
from todo_http.routes import page_response, task_response

__all__ = ["add_sync_routes", "trashed_data"]


def trashed_data(task: TrashedTask) -> dict[str, Any]:
    """A task as the trash shows it: ``task_data`` and when it was deleted."""
    data = task_data(task)
    # task_data leaves fields it does not know to orjson, which would drop a zero
    # fraction of a second: every timestamp of the API has six digits.
    data["deleted_at"] = rfc3339(task.deleted_at)
    return data


async def get_changes(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    query = changes_query_of(request)
    page = await request.app[STORE].changes(user_id, query.since, limit=query.limit)
    meta = {"limit": query.limit, "next_since": page.next_since, "has_more": page.has_more}
    return success([change_data(item) for item in page.items], "Changes retrieved", meta=meta)


async def list_trash(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    query = trash_query_of(request)
    page = await request.app[STORE].trash(user_id, query)
    items = [trashed_data(task) for task in page.items]
    return page_response(
        request, "trash", user_id, (items, page.next_cursor), query.limit, "Trash retrieved"
    )


async def restore_task(request: web.Request) -> web.Response:
    user_id, task_id = user_id_of(request), task_id_of(request)
    task = await request.app[STORE].restore(user_id, task_id)
    return task_response(task, "Task restored")


async def purge_task(request: web.Request) -> web.Response:
    user_id, task_id = user_id_of(request), task_id_of(request)
    task = await request.app[STORE].purge(user_id, task_id)
    return success(trashed_data(task), "Task purged")


async def empty_trash(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    purged = await request.app[STORE].empty_trash(user_id)
    return success({"purged": purged}, "Trash emptied")


def add_sync_routes(router: web.UrlDispatcher) -> None:
    """Register the feed and trash endpoints on ``router`` (GET also answers HEAD)."""
    changes = router.add_resource("/{user_id}/changes", name="changes")
    changes.add_route(hdrs.METH_GET, get_changes)
    changes.add_route(hdrs.METH_HEAD, get_changes)
    trash = router.add_resource("/{user_id}/trash", name="trash")
    trash.add_route(hdrs.METH_GET, list_trash)
    trash.add_route(hdrs.METH_HEAD, list_trash)
    trash.add_route(hdrs.METH_DELETE, empty_trash)
    trashed = router.add_resource("/{user_id}/trash/{task_id}", name="trashed_task")
    trashed.add_route(hdrs.METH_DELETE, purge_task)
    restore = router.add_resource("/{user_id}/trash/{task_id}/restore", name="restore")
    restore.add_route(hdrs.METH_POST, restore_task)
