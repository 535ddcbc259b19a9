"""Running the server: listening sockets, one process, or worker processes on one port.

With ``workers == 1`` the command line process serves. With more, it becomes a small
supervisor: it binds the port (so a taken port fails once, with one message), starts
the workers with the ``spawn`` start method (no engine, pool or event loop is ever
inherited through ``fork``), forwards SIGTERM and SIGINT to them, and exits non-zero if
one of them dies on its own. On Linux each worker gets its own ``SO_REUSEPORT`` socket,
so the kernel spreads connections evenly; elsewhere the workers share one socket, as
gunicorn's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, Final

from aiohttp import web

from todo_http.app import create_app
from todo_http.connections import ConnectionLimit, GuardedSite, guard_requests, raise_file_limit
from todo_http.logs import AccessLogger, LogFormat, configure_logging
from todo_http.openapi import API_PREFIX
from todo_http.settings import Settings
from todo_http.startup import StartupError, database_name, startup_errors

__all__ = [
    "ServeOptions",
    "StartupError",  # defined in todo_http.startup; here too, where the callers look
    "bind_sockets",
    "freeze_startup_heap",
    "run_workers",
    "serve",
    "streams_within",
    "where_serving",
]

log = logging.getLogger("todo_http.server")

# A worker stopped by the signal its parent forwarded, before it could catch it, is
# stopping as asked; any other death of a worker is a failure.
_STOPPED_BY_SIGNAL: Final = frozenset({-signal.SIGTERM, -signal.SIGINT})
# How long past the shutdown timeout the supervisor waits before killing a worker: its
# store still has to close its pool once the requests are done.
_CLEANUP_GRACE_SECONDS: Final = 5.0
_PARENT_CHECK_SECONDS: Final = 1.0
# Descriptors kept free of connections: the database pool, log files, the listening
# sockets, and what the event loop and the libraries open for themselves.
_RESERVED_DESCRIPTORS: Final = 256
# The share of the connections kept from event streams for other requests: one in this.
_REQUEST_SHARE: Final = 6


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeOptions:
    """How the server listens and stops; ``Settings`` says what it serves."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    shutdown_timeout: float = 8.0  # under Docker's 10 s grace (Kubernetes: 30 s), with room to exit
    keepalive_timeout: float = 75.0  # aiohttp's default; longer than most load balancers'
    # Open connections per process: room for 10,000 event streams and ordinary clients.
    max_connections: int = 12_000
    log_format: LogFormat = "text"


def _addresses(host: str, port: int) -> list[tuple[int, Any]]:
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise StartupError(f"cannot resolve host {host!r}: {error.strerror}") from error
    unique: dict[tuple[int, Any], None] = {}
    for family, _type, _proto, _name, address in found:
        unique.setdefault((family, address), None)
    return list(unique)


def _bind(family: int, address: Any, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "posix":  # as asyncio does: restart without waiting out TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:  # "::" must not also take the IPv4 port
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def bind_sockets(host: str, port: int, copies: int = 1) -> list[list[socket.socket]]:
    """``copies`` sets of sockets bound to every address of ``host`` at ``port``.

    One set is plain sockets. Several are ``SO_REUSEPORT`` sets on Linux, one per
    worker; elsewhere the same shared set repeated. The port is first bound without
    ``SO_REUSEPORT``, so a port held by anyone else (another server with
    ``SO_REUSEPORT`` included) is an error rather than silently shared. Port 0 picks a
    free port. Raises ``StartupError``.
    """
    addresses = _addresses(host, port)
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            if port == 0 and sockets:  # every address on the port the first one got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sockets.append(_bind(family, address, reuse_port=False))
        if copies == 1:
            return [sockets]
        if not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")):
            return [sockets] * copies
        chosen = [(sock.family, sock.getsockname()) for sock in sockets]
        for sock in sockets:
            sock.close()
        sockets = []
        groups: list[list[socket.socket]] = []
        for _ in range(copies):
            group = [_bind(family, address, reuse_port=True) for family, address in chosen]
            sockets.extend(group)
            groups.append(group)
        return groups
    except OSError as error:
        for sock in sockets:
            sock.close()
        reason = error.strerror or str(error)
        raise StartupError(f"cannot listen on {_authority(host, port)}: {reason}") from error


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def where_serving(sockets: Sequence[socket.socket], settings: Settings) -> str:
    """Where a server on ``sockets`` answers, where its web app (unless ``--no-ui``) and
    docs page are, and where its tasks are: what someone who just started it needs next."""
    names = [sock.getsockname() for sock in sockets]
    urls = [f"http://{_authority(name[0], name[1])}" for name in names]
    pages = f"web app: {urls[0]}/, " if settings.ui else ""
    return (
        f"{', '.join(urls)} ({pages}API docs: {urls[0]}{API_PREFIX}/docs), "
        f"tasks in {database_name(settings.database_url)}"
    )


class _GracefulStop:
    """Turns the first SIGTERM or SIGINT into aiohttp's graceful shutdown.

    Later signals are ignored rather than aborting the drain: with workers, a terminal's
    Ctrl+C reaches each worker directly and once more through the supervisor, and the
    drain is bounded by the shutdown timeout anyway.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, shutdown_timeout: float) -> None:
        self._loop = loop
        self._shutdown_timeout = shutdown_timeout
        self._requested = False

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self._loop.add_signal_handler(signum, self.request, f"received {signum.name}")
            except NotImplementedError:  # Windows: run_app still shuts down on Ctrl+C
                return

    def watch_parent(self, parent: int) -> None:
        """Stop gracefully when the supervisor ``parent`` is gone (killed with SIGKILL)."""

        def check() -> None:
            if os.getppid() != parent:
                self.request("the supervisor process is gone")
            else:
                self._loop.call_later(_PARENT_CHECK_SECONDS, check)

        self._loop.call_later(_PARENT_CHECK_SECONDS, check)

    def request(self, reason: str) -> None:
        if self._requested:
            log.info("%s: already shutting down", reason)
            return
        self._requested = True
        log.info(
            "%s: shutting down, waiting up to %g s for requests in flight",
            reason,
            self._shutdown_timeout,
        )
        raise web.GracefulExit  # aiohttp's own way out of run_app, into the drain


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (a dependency except on Windows), else asyncio's.

    uvloop's loop and transports are Cython over libuv: the same requests cost the server
    less CPU time (docs/configuration.md, "Event loop").
    """
    try:
        import uvloop  # not installed on Windows
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(
    settings: Settings,
    sockets: Sequence[socket.socket],
    options: ServeOptions,
    *,
    parent: int | None = None,
    name: str = "todo-http",
) -> None:
    """Serve ``create_app(settings=settings)`` on ``sockets`` until SIGTERM or SIGINT.

    Then stop listening, let requests in flight finish for up to
    ``options.shutdown_timeout`` seconds, and close the store. ``parent``: the pid of a
    supervisor to outlive by no more than a second. Raises ``StartupError``.
    """
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)  # as run_app does, for code that asks for "the" loop
    stop = _GracefulStop(loop, options.shutdown_timeout)
    stop.install()
    if parent is not None:
        stop.watch_parent(parent)
    where = where_serving(sockets, settings)
    limit = ConnectionLimit(_connection_limit(options.max_connections, raise_file_limit()))
    settings = streams_within(settings, limit.limit)
    with startup_errors(settings.database_url), _closing(sockets):
        main = loop.create_task(
            _serve_app(
                create_app(settings=settings),
                sockets,
                options,
                limit,
                settings.body_timeout,
                announce=lambda: log.info("%s serving on %s", name, where),
            )
        )
        try:
            loop.run_until_complete(main)
        except web.GracefulExit:  # raised by _GracefulStop's signal handler
            pass
        finally:
            main.cancel()  # into _serve_app's cleanup: the drain, then the store's close
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
            _close_loop(loop)
    log.info("%s stopped", name)


def streams_within(settings: Settings, connections: int) -> Settings:
    """``settings`` with at most five sixths of ``connections`` for event streams: a
    stream holds its connection, and the rest must stay free for other requests and
    ``/healthz`` even with every stream slot taken (10,000 of the default 12,000)."""
    allowed = max(connections - max(connections // _REQUEST_SHARE, 1), 1)
    if settings.max_streams <= allowed:
        return settings
    log.warning(
        "serving at most %d event streams, not %d: room must stay for other requests "
        "within the %d connections allowed",
        allowed,
        settings.max_streams,
        connections,
    )
    return dataclasses.replace(settings, max_streams=allowed)


def _connection_limit(wanted: int, open_files: int) -> int:
    """``wanted``, or fewer where the open-file limit would not allow as many."""
    allowed = max(open_files - _RESERVED_DESCRIPTORS, 1)
    if wanted > allowed:
        log.warning(
            "serving at most %d connections, not %d: the open-file limit is %d",
            allowed,
            wanted,
            open_files,
        )
        return allowed
    return wanted


async def _serve_app(
    app: web.Application,
    sockets: Sequence[socket.socket],
    options: ServeOptions,
    limit: ConnectionLimit,
    body_timeout: float,
    *,
    announce: Callable[[], None],
) -> None:
    """What ``web.run_app`` does, with ``GuardedSite``s: serve until cancelled, then drain."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=options.shutdown_timeout)
    await runner.setup()
    try:
        assert runner.server is not None
        guard_requests(runner.server, limit)
        for sock in sockets:
            site = GuardedSite(
                runner,
                sock,
                limit,
                shutdown_timeout=options.shutdown_timeout,
                keepalive_timeout=options.keepalive_timeout,
                # A body left unread after the answer is read (and dropped) for as long
                # as a body may take to arrive, then the connection is closed.
                lingering_time=body_timeout,
                access_log_class=AccessLogger,
                access_log=logging.getLogger("aiohttp.access"),
            )
            await site.start()
        freeze_startup_heap()
        announce()
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()


def freeze_startup_heap() -> None:
    """Collect once, then leave what starting made out of every later collection.

    It (aiohttp, pydantic, SQLAlchemy, the store: ~100k objects) lives as long as the
    process, yet each full collection that serving triggers walked all of it again:
    about 60 ms, one per ~2,000 listings (performance.md). Call it once the app and its
    store are up, before the first request.
    """
    gc.collect()
    gc.freeze()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    asyncio.set_event_loop(None)


@contextmanager
def _closing(sockets: Sequence[socket.socket]) -> Iterator[None]:
    # aiohttp closes the sockets it served on; not those of a start that failed.
    try:
        yield
    finally:
        for sock in sockets:
            sock.close()


def _worker(
    number: int,
    settings: Settings,
    sockets: list[socket.socket],
    options: ServeOptions,
    parent: int,
) -> None:
    """The body of one worker process (started with ``spawn``: it configures itself)."""
    configure_logging(options.log_format)
    try:
        serve(settings, sockets, options, parent=parent, name=f"worker {number}")
    except StartupError as error:
        log.error("worker %d cannot start: %s", number, error)
        sys.exit(1)
    finally:
        gc.freeze()  # the process ends now: skip the final collection (see __main__.py)


class _Supervisor:
    """Waits for the workers; stops them all on a signal or when one dies."""

    def __init__(self, shutdown_timeout: float) -> None:
        self._shutdown_timeout = shutdown_timeout
        self._running: dict[int, BaseProcess] = {}  # by worker number
        self._deadline: float | None = None  # set once stopping
        self.status = 0

    def add(self, number: int, process: BaseProcess) -> None:
        self._running[number] = process
        if self._deadline is not None:  # a signal came while the workers were starting
            process.terminate()

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._deadline is not None:
            log.info("received %s: already stopping the workers", name)
            return
        log.info("received %s: stopping %d workers", name, len(self._running))
        self.stop()

    def stop(self) -> None:
        if self._deadline is None:
            self._deadline = time.monotonic() + self._shutdown_timeout + _CLEANUP_GRACE_SECONDS
            for process in self._running.values():
                process.terminate()  # SIGTERM: the worker drains, then closes its pool

    def wait(self) -> int:
        """Return once every worker has exited: 0 when all stopped as asked, else 1."""
        while self._running:
            sentinels = {process.sentinel: number for number, process in self._running.items()}
            # A short timeout: signals arrive while waiting, and the deadline must be seen.
            ready = multiprocessing.connection.wait(list(sentinels), timeout=0.5)
            for sentinel in ready:
                assert isinstance(sentinel, int)
                self._reap(sentinels[sentinel])
            if self._deadline is not None and time.monotonic() > self._deadline:
                for number, process in self._running.items():
                    log.error("worker %d (pid %s) did not stop: killed", number, process.pid)
                    process.kill()
                self.status = 1
                self._deadline = float("inf")  # killed: now only wait for them to go
        return self.status

    def _reap(self, number: int) -> None:
        process = self._running.pop(number)
        process.join()
        code = process.exitcode
        if self._deadline is None:
            log.error(
                "worker %d (pid %s) exited with status %s: stopping the others",
                number,
                process.pid,
                code,
            )
            self.status = 1
            self.stop()
        elif code != 0 and code not in _STOPPED_BY_SIGNAL:
            log.error("worker %d (pid %s) exited with status %s", number, process.pid, code)
            self.status = 1


def run_workers(
    settings: Settings, groups: Sequence[list[socket.socket]], options: ServeOptions
) -> int:
    """Serve from one worker process per socket group; returns the exit status.

    The schema must already be current: the workers only check it, so that N processes
    never race to migrate.
    """
    supervisor = _Supervisor(options.shutdown_timeout)
    previous = {
        signum: signal.signal(signum, supervisor.on_signal)
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    context = multiprocessing.get_context("spawn")
    where = where_serving(groups[0], settings)
    try:
        for number, sockets in enumerate(groups, start=1):
            process = context.Process(
                target=_worker,
                args=(number, settings, sockets, options, os.getpid()),
                name=f"todo-http worker {number}",
                daemon=True,  # should this process die of a bug, multiprocessing ends them
            )
            process.start()
            supervisor.add(number, process)
    finally:
        # The workers hold their own copies. Closing ours means a worker's death closes
        # its socket for good, instead of leaving connections queued where no one accepts.
        for sockets in groups:
            for sock in sockets:
                sock.close()
    log.info("started %d workers on %s", len(groups), where)
    try:
        status = supervisor.wait()
        log.info("all workers stopped")
        return status
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
