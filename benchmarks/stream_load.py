"""The client side of ``benchmarks.streams``, in a process of its own so that its CPU
is not counted as the server's: ``python -m benchmarks.stream_load idle|deliver ...``.

Streams are raw asyncio connections (an aiohttp client per stream costs several
times the memory and CPU, and 10,000 of them would crowd the two cores the server
needs); the writes of ``deliver`` go through one aiohttp session. Each stream reads
the chunked body, splits it into events and notes when each task's event arrived.

It talks to the driver with lines on stdout, ``STREAMS <phase> <json>``, and waits
for a line on stdin where the driver measures in between (``idle``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import sys
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

__all__ = [
    "LINE_PREFIX",
    "Stream",
    "deliveries",
    "latency_summary",
    "main",
    "split_events",
    "task_id_of",
]

LINE_PREFIX: Final = "STREAMS "
OPENING_AT_ONCE: Final = 200
OPEN_TIMEOUT: Final = 30.0
WRITE_CONNECTIONS: Final = 32
# How long after the last write's acknowledgement an event may still arrive before
# it counts as lost: four times the one-second promise.
GRACE_SECONDS: Final = 4.0
GRACE_TICK: Final = 0.2


def split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Whole server-sent events (keepalive comments included) in ``buffer``, and the
    incomplete rest."""
    *events, rest = buffer.split(b"\n\n")
    return events, rest


def task_id_of(event: bytes) -> str | None:
    """The task an ``upsert`` or ``delete`` event is about; None for a comment."""
    for line in event.split(b"\n"):
        if line.startswith(b"data: "):
            data = json.loads(line[6:])
            found: str = data["task"]["id"] if data["type"] == "upsert" else data["id"]
            return found
    return None


@dataclass
class Stream:
    """One open ``GET /api/{user}/events``: when each task's event arrived, and how many
    keepalives came."""

    user: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    arrived: dict[str, float] = field(default_factory=dict)
    keepalives: int = 0
    ended: str | None = None

    async def follow(self) -> None:
        """Read chunks until the server ends the stream or the task is cancelled."""
        pending = b""
        try:
            while True:
                size = int((await self.reader.readline()).strip() or b"0", 16)
                if size == 0:
                    self.ended = "the server ended the stream"
                    return
                chunk = await self.reader.readexactly(size + 2)
                now = time.monotonic()
                events, pending = split_events(pending + chunk[:-2])
                for event in events:
                    task = task_id_of(event)
                    if task is None:
                        self.keepalives += 1
                    else:
                        self.arrived.setdefault(task, now)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            self.ended = f"{type(error).__name__}: {error}"

    def close(self) -> None:
        self.writer.transport.abort()


async def open_stream(host: str, port: int, user: str) -> Stream:
    """Connect, ask for the user's events, read the answer's head; fail unless 200."""
    reader, writer = await asyncio.open_connection(host, port)
    path = f"/api/{urllib.parse.quote(user, safe='')}/events"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    status = await reader.readline()
    head = []
    while (line := await reader.readline()) not in (b"\r\n", b""):
        head.append(line.lower())
    if b" 200 " not in status or b"transfer-encoding: chunked\r\n" not in head:
        writer.transport.abort()
        raise RuntimeError(f"GET {path} answered {status.decode(errors='replace').strip()!r}")
    return Stream(user, reader, writer)


async def open_streams(base: str, users: Sequence[str]) -> list[Stream]:
    """One stream per entry of ``users`` (a user may come more than once), opened a few
    hundred at a time so that the server's listen backlog never overflows."""
    parsed = urllib.parse.urlsplit(base)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    gate = asyncio.Semaphore(OPENING_AT_ONCE)

    async def one(user: str) -> Stream:
        async with gate:
            return await asyncio.wait_for(open_stream(host, port, user), OPEN_TIMEOUT)

    return list(await asyncio.gather(*(one(user) for user in users)))


def _report(phase: str, data: dict[str, Any]) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    data["load_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    print(f"{LINE_PREFIX}{phase} {json.dumps(data)}", flush=True)


async def _wait_for_driver() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def idle(arguments: argparse.Namespace) -> None:
    """Open ``--warm`` streams, report, wait; open the rest, report, wait; report the
    keepalives every stream got, and close them all."""
    users = [f"idle-{index:05d}" for index in range(arguments.streams)]
    streams = await open_streams(arguments.base, users[: arguments.warm])
    followers = [asyncio.create_task(stream.follow()) for stream in streams]
    _report("warm", {"open": len(streams)})
    await _wait_for_driver()
    rest = await open_streams(arguments.base, users[arguments.warm :])
    followers += [asyncio.create_task(stream.follow()) for stream in rest]
    streams += rest
    _report("open", {"open": len(streams)})
    await _wait_for_driver()
    ended = [stream.ended for stream in streams if stream.ended is not None]
    keepalives = [stream.keepalives for stream in streams]
    for follower in followers:
        follower.cancel()
    for stream in streams:
        stream.close()
    _report(
        "done",
        {
            "keepalives": sum(keepalives),
            "fewest_keepalives": min(keepalives),
            "ended_early": len(ended),
            "first_ending": ended[0] if ended else None,
        },
    )


def latency_summary(samples: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and max of ``samples`` (seconds) in milliseconds: the nearest-rank
    percentiles, so p99 is a latency some delivery really had."""
    if not samples:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(samples)

    def rank(share: float) -> float:
        return round(ordered[max(0, math.ceil(len(ordered) * share / 100) - 1)] * 1000, 1)

    return {"p50_ms": rank(50), "p99_ms": rank(99), "max_ms": round(ordered[-1] * 1000, 1)}


def deliveries(
    acked: Mapping[str, tuple[str, float]], arrivals: Mapping[str, Sequence[Mapping[str, float]]]
) -> dict[str, Any]:
    """Every acknowledged write (task id: its user and when) against what each of its
    user's streams received (task id: when): the latencies' summary, how many arrived,
    how many did not (lost), and how many came before the acknowledgement."""
    latencies: list[float] = []
    early = lost = 0
    for task, (user, at) in acked.items():
        for arrived in arrivals.get(user, ()):
            if task not in arrived:
                lost += 1
                continue
            latency = arrived[task] - at
            # The event can beat the acknowledgement: the commit wakes the stream
            # before the writer's answer is parsed. Zero, not a negative latency.
            early += latency < 0
            latencies.append(max(0.0, latency))
    return {
        "delivered": len(latencies),
        "lost": lost,
        "before_acknowledgement": early,
        **latency_summary(latencies),
    }


async def _write_all(arguments: argparse.Namespace, users: Sequence[str]) -> dict[str, Any]:
    """POST one task every 1/rate seconds, round robin over ``users``, to the writing
    worker; when each was acknowledged, by task id, and how far the sender fell behind."""
    acked: dict[str, tuple[str, float]] = {}
    failures: list[str] = []
    behind = 0.0
    connector = aiohttp.TCPConnector(limit=WRITE_CONNECTIONS)
    async with aiohttp.ClientSession(arguments.writes_base, connector=connector) as session:

        async def write(user: str, index: int) -> None:
            path = f"/api/{urllib.parse.quote(user, safe='')}/tasks"
            try:
                async with session.post(path, json={"title": f"live {index}"}) as response:
                    body = await response.json()
                    at = time.monotonic()
                    if response.status != 201:
                        failures.append(f"{response.status} {body}")
                        return
            except (aiohttp.ClientError, TimeoutError) as error:
                failures.append(f"{type(error).__name__}: {error}")
                return
            acked[body["data"]["id"]] = (user, at)

        writes = round(arguments.rate * arguments.seconds)
        started = time.monotonic()
        pending = []
        for index in range(writes):
            due = started + index / arguments.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind = max(behind, -delay)
            pending.append(asyncio.create_task(write(users[index % len(users)], index)))
        await asyncio.gather(*pending)
        elapsed = time.monotonic() - started
    return {
        "acked": acked,
        "writes": writes,
        "failures": failures,
        "write_rate": round(writes / elapsed, 1),
        "sender_behind_ms": round(behind * 1000, 1),
    }


async def deliver(arguments: argparse.Namespace) -> None:
    """Open the streams (``--streams`` over ``--users``), write at ``--rate`` through the
    other worker, then report the delivery latencies and the events lost."""
    users = [f"{arguments.prefix}-{index:04d}" for index in range(arguments.users)]
    streams = await open_streams(
        arguments.streams_base, [users[index % len(users)] for index in range(arguments.streams)]
    )
    followers = [asyncio.create_task(stream.follow()) for stream in streams]
    _report("open", {"open": len(streams)})
    written = await _write_all(arguments, users)
    acked: dict[str, tuple[str, float]] = written.pop("acked")
    by_user: dict[str, list[dict[str, float]]] = {}
    for stream in streams:
        by_user.setdefault(stream.user, []).append(stream.arrived)
    expected = sum(len(by_user[user]) for user, _at in acked.values())
    # Polled: the arrivals are spread over thousands of streams' dictionaries.
    for _tick in range(round(GRACE_SECONDS / GRACE_TICK)):
        if not deliveries(acked, by_user)["lost"]:
            break
        await asyncio.sleep(GRACE_TICK)
    found = deliveries(acked, by_user)
    for follower in followers:
        follower.cancel()
    ended = [stream.ended for stream in streams if stream.ended is not None]
    for stream in streams:
        stream.close()
    _report(
        "done",
        {
            **written,
            "acknowledged": len(acked),
            "expected_deliveries": expected,
            **found,
            "streams_ended_early": len(ended),
            "first_ending": ended[0] if ended else None,
        },
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_load")
    commands = parser.add_subparsers(dest="command", required=True)
    idle_command = commands.add_parser("idle", help="open idle streams, one per user")
    idle_command.add_argument("--base", required=True)
    idle_command.add_argument("--streams", type=int, required=True)
    idle_command.add_argument("--warm", type=int, required=True)
    deliver_command = commands.add_parser("deliver", help="streams, writes, latencies")
    deliver_command.add_argument("--streams-base", required=True)
    deliver_command.add_argument("--writes-base", required=True)
    deliver_command.add_argument("--streams", type=int, required=True)
    deliver_command.add_argument("--users", type=int, required=True)
    deliver_command.add_argument("--rate", type=float, required=True)
    deliver_command.add_argument("--seconds", type=float, required=True)
    deliver_command.add_argument("--prefix", default="live")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    # Each stream is a socket: raise the soft limit as far as the hard one allows.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(idle(arguments) if arguments.command == "idle" else deliver(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
