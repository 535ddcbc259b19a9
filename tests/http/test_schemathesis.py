"""schemathesis against the app's own OpenAPI document, on SQLite and PostgreSQL
(directly and through PgBouncer).

aiohttp is neither ASGI nor WSGI, so the real application (``create_app`` opening its
store from a database URL, as ``todo-http serve`` does) runs in a thread of its own on
127.0.0.1 and schemathesis talks HTTP to it. The document is loaded at import (see
``SCHEMA``) and the server is checked to serve exactly it at ``/api/openapi.json``.
Every default check runs, response schema conformance included, over a fixed, seeded
example budget: the examples, coverage and fuzzing phases per operation, then the
stateful phase, which chains operations through the document's links (create ->
get/replace/patch/delete, with the ETag as If-Match; delete -> restore/purge).

Three places where the contract answers schema-valid input with a 4xx that
``positive_data_acceptance`` would report, each handled narrowly rather than by
turning the check off:

* ``If-Match``: a syntactically fine tag that is not the task's current one is a 412,
  as the contract requires; no schema can say "the current ETag". Like 404 and 409,
  which the check already expects, 412 depends on server state, so it is added to the
  expected statuses of the three conditional writes (replaceTask, patchTask,
  deleteTask) only.
* ``cursor`` and ``since``: only a cursor or feed token this server signed for the same
  query or user is valid, so every made-up one is a 422 by contract, and no schema can
  describe the valid ones. Positive requests therefore go out without an invented
  cursor or token (``_positive_only``); negative ones keep theirs, and the contract
  tests cover tampered cursors and tokens.
* ``Idempotency-Key``: a key first used with another body is a 422
  ``IDEMPOTENCY_KEY_REUSED`` by contract, and generated requests reuse keys with new
  bodies all the time. Positive requests therefore get a key of their own
  (``_positive_only``); tests/http/test_idempotency.py covers reuse.
* A ``PATCH`` that sets ``recurrence`` without ``due_at``: valid on a task that has a
  ``due_at``, a 422 on one that has none (the stored task decides, after 404 and 412).
  Positive patches that set a recurrence therefore also send a ``due_at``
  (``_positive_only``); tests/http/test_contract_organize.py covers the 422.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, NamedTuple
from uuid import uuid4

import orjson
import pytest
import schemathesis
import sqlalchemy as sa
from aiohttp import web
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis import Case, Response
from schemathesis.config import SchemathesisConfig

from tests.backends import backend_url, open_backend, run_sql
from todo_core import open_store
from todo_core.schema import idempotency_keys, tasks
from todo_core.sql import SqlTaskStore
from todo_http import Settings, create_app
from todo_http.openapi import openapi_document

SEED: Final = 20261130
_SOME_DUE_AT: Final = "2030-01-01T09:00:00Z"
MAX_EXAMPLES: Final = 30
POSITIVE_STATUSES_WITH_412: Final = [
    "2xx",
    "3xx",
    "401",
    "403",
    "404",
    "409",
    "412",
    "429",
    "5xx",
]
CONDITIONAL_WRITES: Final = {
    "include-operation-id": ["replaceTask", "patchTask", "deleteTask"],
    "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES_WITH_412}},
}
CONFIG: Final = {
    "seed": SEED,
    "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
    "operations": [CONDITIONAL_WRITES],
}
STATEFUL_SETTINGS: Final = hypothesis_settings(
    max_examples=80,
    stateful_step_count=10,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class _Server:
    """``create_app`` over ``backend``'s database, served on a free port from a thread
    with its own event loop, as ``todo-http serve`` would serve it."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.database_url = backend_url(backend, tmp_path)  # skips postgres when unset
        self.port = 0
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.shutdown: asyncio.Event | None = None

    async def serve(self) -> None:
        try:
            # An empty, migrated database: PostgreSQL's shared one has its tasks deleted.
            async with open_backend(self.backend, self.tmp_path):
                pass
            runner = web.AppRunner(create_app(settings=Settings(database_url=self.database_url)))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
        except BaseException as error:
            self.error = error
            self.ready.set()
            raise
        self.port = runner.addresses[0][1]
        self.loop = asyncio.get_running_loop()
        self.shutdown = asyncio.Event()
        self.ready.set()
        try:
            await self.shutdown.wait()
        finally:
            await runner.cleanup()


class Served(NamedTuple):
    base_url: str
    database_url: str


@contextmanager
def serving(backend: str, tmp_path: Path) -> Iterator[Served]:
    """The app served over ``backend`` until the block ends, and its database."""
    server = _Server(backend, tmp_path)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    server.ready.wait(timeout=60)
    if not server.port:
        raise RuntimeError(f"the server did not start: {server.error!r}")
    try:
        yield Served(f"http://127.0.0.1:{server.port}", server.database_url)
    finally:
        assert server.loop is not None
        assert server.shutdown is not None
        server.loop.call_soon_threadsafe(server.shutdown.set)
        thread.join(timeout=30)


# Loaded from the package rather than through the server: schemathesis' lazy loader
# (schemathesis.pytest.from_fixture) sets Node._nodeid, which pytest 9.2 no longer has.
# The base_url fixture checks that the server serves exactly this document.
# GET /events answers a stream that never ends by itself, which schemathesis would wait
# for: its refusals and headers are checked in test_events.py (HEAD is kept here).
SCHEMA: Final = schemathesis.openapi.from_dict(
    openapi_document(), config=SchemathesisConfig.from_dict(CONFIG)
).exclude(operation_id="streamEvents")


# Restore is left out of the stateful phase: schemathesis' use-after-free check knows no
# undelete, so a task read after delete -> restore (200, as the contract says) would be
# reported. It still runs in the other phases; the contract tests and the HTTP state
# machine check restoring.
STATEFUL_CONFIG: Final = {
    **CONFIG,
    "operations": [
        CONDITIONAL_WRITES,
        {"include-operation-id": ["restoreTask"], "phases": {"stateful": {"enabled": False}}},
    ],
}
STATEFUL_SCHEMA: Final = schemathesis.openapi.from_dict(
    openapi_document(), config=SchemathesisConfig.from_dict(STATEFUL_CONFIG)
)


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        # Through PgBouncer in transaction mode, as Neon's pooled URLs are.
        pytest.param("pgbouncer", marks=pytest.mark.postgres),
    ],
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A server over each SQL backend, serving the document schemathesis was loaded with."""
    backend: str = request.param
    with serving(backend, tmp_path_factory.mktemp(backend)) as server:
        with urllib.request.urlopen(f"{server.base_url}/api/openapi.json", timeout=10) as got:
            assert orjson.loads(got.read()) == openapi_document()
        yield server


@pytest.fixture(scope="module")
def base_url(served: Served) -> str:
    return served.base_url


async def _empty(database_url: str) -> None:
    """Delete every task and idempotency key, bypassing the API."""
    async with open_store(database_url) as store:
        assert isinstance(store, SqlTaskStore)
        await run_sql(store, sa.delete(tasks))
        await run_sql(store, sa.delete(idempotency_keys))


def _positive_only(case: Case[Any]) -> Case[Any]:
    """Drop a made-up ``cursor`` or ``since`` from a positive request, and give its
    ``Idempotency-Key`` a value no other request used (see the module docstring)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    if case.query:
        case.query.pop("cursor", None)
        case.query.pop("since", None)  # a feed token: as signed as a cursor
    if case.headers:
        case.headers.pop("Last-Event-ID", None)
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid4().hex
    body = case.body
    if (
        case.method == "PATCH"
        and isinstance(body, dict)
        and body.get("recurrence") is not None
        and "due_at" not in body
    ):
        body["due_at"] = _SOME_DUE_AT
    return case


@SCHEMA.parametrize()
def test_every_operation_conforms(case: Case[Any], base_url: str) -> None:
    """Examples, coverage and fuzzing phases, every default check, per operation."""
    _positive_only(case).call_and_validate(base_url=base_url)


def test_stateful_workflows_conform(served: Served) -> None:
    """Chains of calls along the document's links: created tasks are retrievable,
    deleted ones are gone, and every response still conforms."""
    base_url = served.base_url
    linked_successes: Counter[str] = Counter()

    class Workflow(STATEFUL_SCHEMA.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every scenario starts from an empty database. Links draw their values from
            # earlier responses (a listing's tasks among them), so tasks left over from
            # earlier scenarios would make the same choices draw differently when
            # Hypothesis replays a scenario, which it reports as flaky generation.
            asyncio.run(_empty(served.database_url))

        def before_call(self, case: Case[Any]) -> None:
            _positive_only(case)

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"base_url": base_url}

        def after_call(self, response: Response, case: Case[Any]) -> None:
            super().after_call(response, case)
            if case.path.endswith("{task_id}") and response.status_code == 200:
                linked_successes[case.method] += 1
            if case.path.endswith("{task_id}") and case.path.startswith("/api/{user_id}/trash"):
                linked_successes[f"purge {response.status_code}"] += 1

    Workflow.run(settings=STATEFUL_SETTINGS)
    # Random task ids never exist, so these prove that the links were followed.
    assert {"GET", "PUT", "PATCH", "DELETE"} <= set(linked_successes), linked_successes
    assert linked_successes["purge 200"], "a deleted task was purged from the trash"
