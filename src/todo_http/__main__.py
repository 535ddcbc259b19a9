"""``python -m todo_http`` and the ``todo-http`` script: the process entry point.

The command line itself is ``todo_http.cli.main``, which tests may call in-process.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from todo_http import cli

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``todo-http`` in this process, which is about to exit; returns the status."""
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
