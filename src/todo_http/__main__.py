"""``python -m todo_http`` and the ``todo-http`` script: the process entry point.

The command line itself is ``todo_http.cli.main``, which tests may call in-process.
The script ships with the library alone too (``pip install todo-core``), where the
server's dependencies are missing: it then says in one line what to install.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["SERVER_EXTRA", "main"]

SERVER_EXTRA: Final = "todo-core[server]"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``todo-http`` in this process, which is about to exit; returns the status."""
    try:
        from todo_http import cli
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] in {"todo_http", "todo_core"}:
            raise  # our own package is broken: a bug, not a missing extra
        print(
            f"todo-http: error: the HTTP server is not installed (no module {error.name!r}): "
            f"pip install '{SERVER_EXTRA}'",
            file=sys.stderr,
        )
        return 1
    try:
        return cli.main(argv)
    finally:
        # The interpreter's last garbage collection over the ~100k objects of aiohttp,
        # SQLAlchemy and pydantic takes about half a second, and only delays the exit
        # that an orchestrator is waiting for: the process ends anyway.
        gc.freeze()


# The guard matters beyond style: worker processes are started with ``spawn``, which
# imports this module again (as ``__mp_main__``) in every worker.
if __name__ == "__main__":
    sys.exit(main())
