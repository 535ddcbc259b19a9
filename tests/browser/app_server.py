"""Where the browser tests' servers run: a database per test module (the server is
``tests.http.server_process.serving`` on it).

A PostgreSQL database is created and dropped by a thread of its own: Playwright's
sync API marks the main thread's event loop as running between its calls, so no
``asyncio.run`` may happen there while a browser is open.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.backends import fresh_postgres_database, postgres_url
from tests.http.server_process import migrate

__all__ = ["module_database"]


@contextmanager
def _postgres_database() -> Iterator[str]:
    postgres_url()  # skips (fails in CI) here, in the test's thread, without a server
    created: list[str] = []
    failed: list[BaseException] = []
    ready = threading.Event()
    done = threading.Event()

    async def hold() -> None:
        async with fresh_postgres_database() as url:
            created.append(url)
            ready.set()
            await asyncio.to_thread(done.wait)

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as error:  # reported to the test below
            failed.append(error)
        finally:
            ready.set()

    holder = threading.Thread(target=run, name="browser-test-database", daemon=True)
    holder.start()
    ready.wait(60)
    try:
        if failed or not created:
            raise AssertionError(f"no PostgreSQL database: {failed}")
        yield created[0]
    finally:
        done.set()
        holder.join(60)


@contextmanager
def module_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, migrated database of ``backend`` (``sqlite`` or ``postgres``)."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'tasks.db'}"
        migrate(url)
        yield url
        return
    with _postgres_database() as url:
        migrate(url)
        yield url
