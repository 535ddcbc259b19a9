"""A throwaway PostgreSQL cluster that fault tests may stop, start and restart at will.

``initdb`` into a temporary directory, trust authentication, listening on 127.0.0.1
only on a free port, its unix socket in the same directory; ``pg_ctl`` starts and stops
it. The server binaries come from ``pg_config --bindir`` or Debian's
``/usr/lib/postgresql/<version>/bin``. PostgreSQL refuses to run as root, so when the
tests run as root, the binaries run as the ``postgres`` OS user, who owns the directory.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.backends import unavailable
from tests.http.server_process import free_port

__all__ = ["PostgresServer", "server_binaries", "start_server"]

_NEEDED = ("initdb", "pg_ctl", "postgres", "psql")
_OS_USER = "postgres"  # who runs the server when the tests run as root
_SUPERUSER = "postgres"  # the cluster's superuser role


def _has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in _NEEDED)


def _version(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name))


def server_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when they are missing."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found:
            candidates.append(Path(found))
    # Debian's pg_config may name the client folder; the server's is versioned.
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).parent)
    return next((folder for folder in candidates if _has_binaries(folder)), None)


class PostgresServer:
    """One cluster: ``start()``, ``stop()``, ``restart()``, ``create_database()``, ``close()``."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                owner = pwd.getpwnam(_OS_USER)
            except KeyError:
                unavailable(f"fault tests run as root need an OS user {_OS_USER!r} for PostgreSQL")
        self.base = Path(tempfile.mkdtemp(prefix="todo-faults-pg-"))
        if self.as_root:
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.running = False
        self._databases = 0

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", _OS_USER, "--"] if self.as_root else []
        return subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False
        )

    def _pg_ctl(self, action: str, *options: str) -> float:
        started = time.monotonic()
        result = self._run(str(self.binaries / "pg_ctl"), action, "-D", str(self.data), *options)
        if result.returncode != 0:
            raise AssertionError(
                f"pg_ctl {action} failed ({result.returncode}): {result.stdout}{result.stderr}\n"
                f"server log:\n{self.server_log()}"
            )
        return time.monotonic() - started

    def init(self) -> None:
        """initdb, configured for loopback TCP on ``port`` and a socket in ``base``."""
        result = self._run(
            str(self.binaries / "initdb"),
            "-D",
            str(self.data),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",  # only initdb's own files; the server still fsyncs its commits
        )
        if result.returncode != 0:
            raise AssertionError(f"initdb failed: {result.stdout}{result.stderr}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "max_connections": "50",
            "shared_buffers": "16MB",
            "log_min_messages": "warning",
            "log_checkpoints": "off",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as config:
            config.write("".join(f"{key} = {value}\n" for key, value in settings.items()))

    def start(self) -> float:
        """Start the server and wait until it accepts connections; the seconds it took."""
        took = self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.log))
        self.running = True
        return took

    def stop(self, mode: str = "fast") -> float:
        """Stop the server (``fast``: disconnect clients, roll back; ``immediate``: crash)."""
        took = self._pg_ctl("stop", "-w", "-t", "30", "-m", mode)
        self.running = False
        return took

    def restart(self, mode: str = "fast") -> float:
        """``pg_ctl restart -m mode``: stop, then start again; the seconds it took."""
        self.running = False
        took = self._pg_ctl("restart", "-w", "-t", "30", "-m", mode, "-l", str(self.log))
        self.running = True
        return took

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` through psql over TCP; its unaligned, tuples-only output."""
        result = subprocess.run(
            [
                str(self.binaries / "psql"),
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                _SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"psql {sql!r} failed: {result.stderr}")
        return result.stdout.strip()

    def create_database(self) -> str:
        """A new empty database; its URL."""
        self._databases += 1
        name = f"faults_{self._databases}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def server_log(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def close(self) -> None:
        """Stop the server at once and remove the cluster's directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(
                    str(self.binaries / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "-w",
                    timeout=30,
                )
        finally:
            self.running = False
            shutil.rmtree(self.base, ignore_errors=True)


def start_server() -> PostgresServer:
    """A running cluster; skips (in CI: fails) without the server binaries."""
    binaries = server_binaries()
    if binaries is None:
        unavailable(
            "fault tests need PostgreSQL's server binaries (initdb, pg_ctl, postgres): "
            "apt-get install postgresql"
        )
    server = PostgresServer(binaries)
    try:
        server.init()
        server.start()
    except BaseException:
        server.close()
        raise
    return server
