"""``todo-http serve`` that dies (SIGKILL) right after a keyed create has committed,
before its answer is sent: the lost answer that a client's retry must recover.

Run as ``python -m tests.faults.crash_after_commit serve ...`` with the repository on
``PYTHONPATH``; every other request is served as usual.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from todo_core import Created
from todo_core.sql import SqlTaskStore
from todo_http.cli import main

_create_once = SqlTaskStore.create_once


async def _create_once_then_die(self: SqlTaskStore, *args: Any, **kwargs: Any) -> Created:
    await _create_once(self, *args, **kwargs)  # returns once the transaction committed
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: the process is gone")


SqlTaskStore.create_once = _create_once_then_die  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
