"""Application factories: the standalone server, and the tasks API to mount elsewhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Middleware

from todo_core import TaskStore, open_store
from todo_http.auth import Authenticator, JwtAuthenticator, auth_middleware
from todo_http.cors import cors_middleware
from todo_http.docs import add_docs_routes, add_docs_shortcuts
from todo_http.envelope import envelope_middleware, success
from todo_http.events import add_event_routes, add_event_streams
from todo_http.housekeeping import housekeeping_context
from todo_http.keys import API, AUTHENTICATED, SETTINGS, STORE
from todo_http.openapi import API_PREFIX
from todo_http.parsing import MAX_BODY_BYTES
from todo_http.routes import add_task_routes
from todo_http.settings import Settings
from todo_http.sync_routes import add_sync_routes
from todo_http.webapp import add_webapp_routes

__all__ = ["create_api", "create_app", "open_settings_store"]


def _middlewares(
    settings: Settings, authenticator: Authenticator | None, *, enveloped: bool
) -> list[Middleware]:
    # The envelope runs outermost so that CORS preflights get a request id as well, and
    # authentication innermost, so that preflights never need a token.
    middlewares: list[Middleware] = [envelope_middleware] if enveloped else []
    cors = cors_middleware(settings.cors_origins)
    if cors is not None:
        middlewares.append(cors)
    if authenticator is not None:
        middlewares.append(auth_middleware(authenticator))
    return middlewares


def create_api(
    store: TaskStore | None = None,
    *,
    settings: Settings | None = None,
    authenticator: Authenticator | None = None,
) -> web.Application:
    """The tasks API as an application to mount: ``app.add_subapp("/api", create_api(store))``.

    Routes are ``/{user_id}/tasks``, ``/{user_id}/tasks/{task_id}``, ``/{user_id}/tags``,
    ``/{user_id}/changes`` and ``/{user_id}/trash`` (and below it) under the mount
    point, plus the API's OpenAPI document at ``/openapi.json`` and its page at
    ``/docs``.
    Without ``store``, one is opened from ``settings`` when the application starts and
    closed when it stops.

    Task requests are authenticated by ``authenticator`` when given, else by a
    ``JwtAuthenticator`` of ``settings.jwt`` when ``settings.auth == "jwt"``, else not at
    all. Raises ``ValueError`` for JWT settings that cannot work.
    """
    return _api(store, settings or Settings(), authenticator, enveloped=True)


def _api(
    store: TaskStore | None,
    settings: Settings,
    authenticator: Authenticator | None,
    *,
    enveloped: bool,
) -> web.Application:
    if authenticator is None and settings.auth == "jwt":
        authenticator = JwtAuthenticator(settings.jwt)
    middlewares = _middlewares(settings, authenticator, enveloped=enveloped)
    api = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    api[SETTINGS] = settings
    api[AUTHENTICATED] = authenticator is not None
    if isinstance(authenticator, JwtAuthenticator):
        api.cleanup_ctx.append(authenticator.cleanup_ctx)
    add_task_routes(api.router)
    add_sync_routes(api.router)
    add_event_routes(api.router)
    add_event_streams(api, settings)
    add_docs_routes(api.router)
    if store is not None:
        api[STORE] = store
    else:
        api.cleanup_ctx.append(_store_context)
    api.cleanup_ctx.append(housekeeping_context)  # after the store's: it uses the store
    return api


def open_settings_store(settings: Settings) -> AbstractAsyncContextManager[TaskStore]:
    """``open_store`` as ``settings`` say: the store an application opens for itself."""
    return open_store(
        settings.database_url,
        create_schema=settings.create_schema,
        cursor_secret=settings.cursor_secret,
        retention=timedelta(days=settings.retention_days),
        **settings.store_options,
    )


async def _store_context(app: web.Application) -> AsyncIterator[None]:
    async with open_settings_store(app[SETTINGS]) as store:
        app[STORE] = store
        yield


async def healthz(request: web.Request) -> web.Response:
    """The process serves; deliberately no database call (a liveness probe)."""
    return success({"status": "ok"}, "Service is alive")


async def readyz(request: web.Request) -> web.Response:
    """The database answers (a readiness probe); else 503 through the envelope."""
    await request.app[API][STORE].ping()
    return success({"status": "ready"}, "Service is ready")


def create_app(
    store: TaskStore | None = None,
    *,
    settings: Settings | None = None,
    authenticator: Authenticator | None = None,
) -> web.Application:
    """The standalone server: the tasks API under ``/api`` plus ``/healthz`` and ``/readyz``,
    the web app at ``/`` with its files under ``/ui/``, and ``/docs`` redirecting to the
    docs page, ``/api/docs``. With ``settings.ui`` false, ``/`` redirects there too.

    ``store``, ``settings`` and ``authenticator`` are as for ``create_api``.
    """
    settings = settings or Settings()
    app = web.Application(middlewares=[envelope_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    # The root's envelope already wraps every request to the sub-application: a second
    # one inside it would only repeat the work on each request.
    api = _api(store, settings, authenticator, enveloped=False)
    app[API] = api
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if settings.ui:
        add_webapp_routes(app, api_url=API_PREFIX, auth=settings.auth)
    add_docs_shortcuts(app.router, root=not settings.ui)
    app.add_subapp(API_PREFIX, api)
    return app
