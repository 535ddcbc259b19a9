"""A loopback TCP proxy in front of the test database: tests cut it or read through it."""

from __future__ import annotations

import asyncio

from todo_core.engine import database_url

__all__ = ["TcpProxy", "frontend_messages"]


class TcpProxy:
    """Forwards a loopback port to the database; stopping it cuts every connection.

    ``sent`` keeps what each client connection sent, in the order they connected, for
    tests that read the protocol.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.sent: list[bytearray] = []
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.pipes: set[asyncio.Task[None]] = set()

    @classmethod
    def in_front_of(cls, database: str) -> TcpProxy:
        """A proxy to the server that the database URL ``database`` names."""
        target = database_url(database)
        return cls(target.host or "127.0.0.1", target.port or 5432)

    def url(self, database: str, **query: str) -> str:
        """``database`` reached through this (started) proxy, with ``query`` added."""
        through = database_url(database).set(host="127.0.0.1", port=self.port)
        return through.update_query_dict(query).render_as_string(hide_password=False)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        await self.server.wait_closed()
        self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, upstream_writer]
        self.sent.append(sent := bytearray())
        pipes = [
            asyncio.create_task(self._pipe(reader, upstream_writer, sent)),
            asyncio.create_task(self._pipe(upstream_reader, writer, bytearray())),
        ]
        self.pipes.update(pipes)
        for pipe in pipes:
            pipe.add_done_callback(self.pipes.discard)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray
    ) -> None:
        try:
            while data := await reader.read(65536):
                record += data
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def frontend_messages(sent: bytes | bytearray) -> list[bytes]:
    """The type byte of each message a client sent after its startup message.

    Only for one plain-text connection (``sslmode=disable``, trust authentication): the
    startup message is the one untyped message, then every message is a type byte and a
    length that counts itself.
    """
    startup_length = int.from_bytes(sent[:4], "big")
    types = []
    offset = startup_length
    while offset < len(sent):
        types.append(bytes(sent[offset : offset + 1]))
        offset += 1 + int.from_bytes(sent[offset + 1 : offset + 5], "big")
    return types
