"""A store that fails on demand, for the answers a client gets when the database fails."""

from __future__ import annotations

from uuid import UUID

from todo_core import (
    Created,
    FieldsPage,
    ListQuery,
    MemoryTaskStore,
    Page,
    StoreUnavailable,
    Task,
    TaskCreate,
    TaskPatch,
    TaskReplace,
)


class FaultyStore:
    """A memory store whose calls raise ``fault`` while it is set (``ping`` included)."""

    def __init__(self, fault: BaseException | None = None) -> None:
        self.inner = MemoryTaskStore()
        self.fault = fault
        self.pings = 0

    def _check(self) -> None:
        if self.fault is not None:
            raise self.fault

    async def create(self, user_id: str, data: TaskCreate) -> Task:
        self._check()
        return await self.inner.create(user_id, data)

    async def create_once(self, user_id: str, data: TaskCreate, *, key: str) -> Created:
        self._check()
        return await self.inner.create_once(user_id, data, key=key)

    async def purge_idempotency_keys(self, *, limit: int = 1000) -> int:
        self._check()
        return await self.inner.purge_idempotency_keys(limit=limit)

    async def get(self, user_id: str, task_id: UUID) -> Task:
        self._check()
        return await self.inner.get(user_id, task_id)

    async def list(self, user_id: str, query: ListQuery | None = None) -> Page:
        self._check()
        return await self.inner.list(user_id, query)

    async def list_fields(self, user_id: str, query: ListQuery | None = None) -> FieldsPage:
        self._check()
        return await self.inner.list_fields(user_id, query)

    async def replace(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskReplace,
        *,
        expected_version: int | None = None,
    ) -> Task:
        self._check()
        return await self.inner.replace(user_id, task_id, data, expected_version=expected_version)

    async def patch(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskPatch,
        *,
        expected_version: int | None = None,
    ) -> Task:
        self._check()
        return await self.inner.patch(user_id, task_id, data, expected_version=expected_version)

    async def delete(
        self, user_id: str, task_id: UUID, *, expected_version: int | None = None
    ) -> Task:
        self._check()
        return await self.inner.delete(user_id, task_id, expected_version=expected_version)

    async def ping(self) -> None:
        self.pings += 1
        self._check()


def unavailable() -> StoreUnavailable:
    """A transient store failure whose text must never reach a client."""
    return StoreUnavailable("connection to 10.1.2.3:5432 refused (password=hunter2)")
