"""Which release this is: the installed distribution's version, from its metadata.

The version is written once, in pyproject.toml; the code reads it back from what pip
installed rather than repeating it. ``DISTRIBUTION`` is the one place that names the
distribution.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

__all__ = ["DISTRIBUTION", "UNKNOWN_VERSION", "__version__", "installed_version"]

DISTRIBUTION: Final = "todo-core"
# PEP 440's way to say "some version, not a release": the code runs from a source tree
# that pip never installed, so no metadata says which release it is.
UNKNOWN_VERSION: Final = "0+unknown"


def installed_version(distribution: str = DISTRIBUTION) -> str:
    """The version pip installed ``distribution`` at, or ``UNKNOWN_VERSION``."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return UNKNOWN_VERSION


__version__: Final = installed_version()
