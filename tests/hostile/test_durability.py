"""A SQLite file deleted while the server runs: no write is acknowledged after that,
and /readyz says the server cannot serve."""

from __future__ import annotations

from pathlib import Path

from tests.hostile.conftest import start
from tests.hostile.wire import JSON, exchange, request_bytes


def test_a_deleted_database_file_answers_503_to_writes_and_readyz(tmp_path: Path) -> None:
    database = tmp_path / "tasks.db"
    with start(("--database-url", f"sqlite:///{database}"), tmp_path) as server:
        create = request_bytes("POST", "/api/d/tasks", [JSON], b'{"title": "kept"}')
        assert exchange(server.port, create).status == 201
        for path in tmp_path.glob("tasks.db*"):
            path.unlink()
        refused = exchange(server.port, create)
        assert refused.status == 503, refused
        assert refused.envelope_error() == "SERVICE_UNAVAILABLE"
        ready = exchange(server.port, request_bytes("GET", "/readyz"))
        assert ready.status == 503, ready
        assert exchange(server.port, request_bytes("GET", "/healthz")).status == 200


def test_a_replaced_database_file_answers_503(tmp_path: Path) -> None:
    database = tmp_path / "tasks.db"
    with start(("--database-url", f"sqlite:///{database}"), tmp_path) as server:
        create = request_bytes("POST", "/api/d/tasks", [JSON], b'{"title": "kept"}')
        assert exchange(server.port, create).status == 201
        database.rename(tmp_path / "moved.db")
        database.write_bytes(b"")
        assert exchange(server.port, create).status == 503
