"""A private PgBouncer in transaction mode in front of the PostgreSQL test database.

Neon's pooled (``-pooler``) URLs go through PgBouncer in transaction mode, which hands
each transaction whichever server connection is free. Running the store and HTTP
suites through one is what shows that the store keeps no session state and uses only
unnamed statements. The configuration is the hard case on purpose: PgBouncer 1.18
tracks no prepared statements at all (``max_prepared_statements`` did not exist yet),
accepts no startup parameter but the ones it knows (no ``ignore_startup_parameters``),
and shares a few server connections between many clients (``POOL_SIZE``).

One PgBouncer serves the whole test session: it is started by the first test that needs
it (``SESSION_PGBOUNCER.url``), because backend URLs are also wanted outside fixtures
(Hypothesis machines, servers started from threads), and stopped by a session fixture.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from tests.http.server_process import free_port

__all__ = ["POOL_SIZE", "SESSION_PGBOUNCER", "PgBouncer", "pgbouncer_binary"]

# Server connections per database and user: fewer than one store's pool, so clients
# really take turns on the same server connections.
POOL_SIZE = 4
# pgbouncer will not run as root; it then drops to this user, which Debian's
# PostgreSQL and PgBouncer packages both create.
ROOT_RUNS_AS = "postgres"
STARTUP_SECONDS = 10.0


def pgbouncer_binary() -> str | None:
    """The ``pgbouncer`` executable, if installed; Debian puts it in /usr/sbin, which a
    non-root PATH often lacks."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("pgbouncer", path=search)


def _configuration(server: URL, port: int, auth_file: Path) -> str:
    """The ini: one database, under the server's own name, on ``server``; clients log in
    without a password, PgBouncer logs in to the server as the same user, and that user
    may also ``SHOW POOLS`` on the admin console (``psql -p PORT pgbouncer``)."""
    database = server.database or "postgres"
    target = f"host={server.host or '127.0.0.1'} port={server.port or 5432} dbname={database}"
    return f"""\
[databases]
{database} = {target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
admin_users = {_user(server)}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 500
log_connections = 0
log_disconnections = 0
"""


def _user(server: URL) -> str:
    """The user a client of ``server`` logs in as: the URL's, else asyncpg's default."""
    return server.username or getpass.getuser()


class PgBouncer:
    """One ``pgbouncer`` process in front of ``server_url``'s database, in a temporary
    directory that holds its ini, its auth file and its log (its stderr)."""

    def __init__(self, binary: str, server_url: str) -> None:
        server = make_url(server_url)
        # Server connections that start later are this PgBouncer's (tests tell them from
        # those of a PgBouncer an interrupted earlier run left behind).
        self.started = datetime.now(UTC)
        self.directory = Path(tempfile.mkdtemp(prefix="todo-pgbouncer-"))
        self.port = free_port()
        # Clients use the server's URL with PgBouncer's address: same user, same name.
        self.url = server.set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False
        )
        auth_file = self.directory / "users.txt"
        # Trust ignores the client's password; the server login uses this one, if any.
        auth_file.write_text(f'"{_user(server)}" "{server.password or ""}"\n')
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(_configuration(server, self.port, auth_file))
        user_option: list[str] = []
        if os.geteuid() == 0:
            user_option = ["-u", ROOT_RUNS_AS]
            for path in (self.directory, auth_file, ini):
                shutil.chown(path, ROOT_RUNS_AS)
        self.log_path = self.directory / "pgbouncer.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, *user_option, str(ini)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_listening()

    @property
    def log(self) -> str:
        """What pgbouncer has logged so far."""
        return self.log_path.read_text(errors="replace")

    def _wait_listening(self) -> None:
        """Return once the port accepts connections; fail with the log if it never does."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}:\n{self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        log = self.log
        self.stop()
        raise RuntimeError(f"pgbouncer not listening after {STARTUP_SECONDS} s:\n{log}")

    def stop(self) -> None:
        """Stop the process (SIGTERM: immediate shutdown) and remove its directory."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


class SessionPgBouncer:
    """The one PgBouncer of a test session: started on first use, stopped by ``stop``."""

    def __init__(self) -> None:
        self.running: PgBouncer | None = None

    def url(self, binary: str, server_url: str) -> str:
        """The database URL through the session's PgBouncer, starting it if need be."""
        if self.running is None:
            self.running = PgBouncer(binary, server_url)
        return self.running.url

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


SESSION_PGBOUNCER = SessionPgBouncer()
