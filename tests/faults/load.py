"""A steady mixed load (creates and gets) for fault tests, recording every outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.faults.fault_client import FaultClient, Outcome

__all__ = ["Load"]


class Load:
    """``loops`` concurrent clients, each alternating a create and a get of a task it
    created, with ``pause`` seconds between requests, until ``stop()``.

    Every create has a unique title, so what got stored can be told from what was
    acknowledged: ``acknowledged`` maps title to id for each create answered 201.
    """

    def __init__(
        self, client: FaultClient, user_id: str, *, loops: int = 6, pause: float = 0.02
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.loops = loops
        self.pause = pause
        self.outcomes: list[Outcome] = []
        self.acknowledged: dict[str, str] = {}
        self.unacknowledged: set[str] = set()  # creates answered otherwise, or not at all
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(number)) for number in range(self.loops)]

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks)

    async def _loop(self, number: int) -> None:
        path = f"/api/{self.user_id}/tasks"
        mine: list[str] = []
        count = 0
        while not self._stopping.is_set():
            count += 1
            if count % 2 or not mine:
                title = f"loop {number} task {count}"
                outcome = await self.client.send("POST", path, {"title": title})
                if outcome.status == 201:
                    task_id: str = outcome.json()["data"]["id"]
                    self.acknowledged[title] = task_id
                    mine.append(task_id)
                else:
                    self.unacknowledged.add(title)
            else:
                outcome = await self.client.send("GET", f"{path}/{mine[-1]}")
            self.outcomes.append(outcome)
            await asyncio.sleep(self.pause)

    def since(self, moment: float) -> list[Outcome]:
        """Outcomes of requests sent at or after ``moment`` (time.monotonic())."""
        return [outcome for outcome in self.outcomes if outcome.sent >= moment]

    async def wait_for(
        self, wanted: Callable[[Outcome], bool], after: float, within: float
    ) -> Outcome:
        """The first outcome sent after ``after`` that is ``wanted``, within ``within`` s."""
        deadline = time.monotonic() + within
        while True:
            found = [o for o in self.since(after) if wanted(o)]
            if found:
                return min(found, key=lambda outcome: outcome.answered)
            if time.monotonic() > deadline:
                raise AssertionError(f"no such outcome within {within} s")
            await asyncio.sleep(0.02)
