"""Several processes migrating one database at once, as an init container per pod
does: the schema and migration tests start them at one instant."""

from __future__ import annotations

import asyncio
import sys
import time

# Each process imports first, then all start migrating at the instant given.
MIGRATOR = (
    "import asyncio, sys, time\n"
    "from todo_core.engine import create_engine\n"
    "from todo_core.migrate import upgrade_schema\n"
    "async def main():\n"
    "    engine = create_engine(sys.argv[1])\n"
    "    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
    "    try:\n"
    "        await upgrade_schema(engine)\n"
    "    finally:\n"
    "        await engine.dispose()\n"
    "asyncio.run(main())\n"
)


async def migrate_at_once(url: str, count: int = 3, delay: float = 2.5) -> None:
    """Upgrade ``url`` to the newest revision from ``count`` processes starting together
    ``delay`` seconds from now; assert that every one of them succeeded."""
    start = str(time.time() + delay)
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", MIGRATOR, url, start, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(count)
    ]
    outcomes = [await worker.communicate() for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * count, outcomes
