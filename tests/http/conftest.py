"""Fixtures: the app over each backend, and over a CORS configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pytest_aiohttp import AiohttpClient

from tests.http.api_client import ORIGIN, ApiClient, ClientFactory
from todo_core import TaskStore
from todo_http import Settings, create_app
from todo_http.auth import Authenticator


@pytest.fixture
async def serve(aiohttp_client: AiohttpClient) -> AsyncIterator[ClientFactory]:
    """Serves ``create_app(store, settings=..., authenticator=...)`` and returns an
    ``ApiClient`` for it.

    At teardown, fails the test if any reply could not be checked against the document.
    """
    clients: list[ApiClient] = []

    async def factory(
        store: TaskStore,
        settings: Settings | None = None,
        authenticator: Authenticator | None = None,
    ) -> ApiClient:
        app = create_app(store, settings=settings, authenticator=authenticator)
        client = ApiClient(await aiohttp_client(app))
        clients.append(client)
        return client

    yield factory
    for client in clients:
        if client.check.unchecked:
            pytest.fail(f"{client.check.problem} ({len(client.check.unchecked)} replies unchecked)")


@pytest.fixture
async def client(store: TaskStore, serve: ClientFactory) -> ApiClient:
    """The app over an empty store of each backend in turn."""
    return await serve(store)


@pytest.fixture
async def cors_client(store: TaskStore, serve: ClientFactory) -> ApiClient:
    """The app with ``ORIGIN`` as its one allowed CORS origin."""
    return await serve(store, Settings(cors_origins=(ORIGIN,)))
