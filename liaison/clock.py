"""The clock port: what time it is, and waiting until a moment.

Everything that depends on time (retention, the quarantine purge, the catch-up window, consents that expire, and
the reminders to come) asks a `Clock` handed over by the wiring, never the wall clock itself: the service runs on
`SystemClock`; tests and the bench run on `MovableClock`, which they move forward (`advance`), waking whoever
waits for a moment that has now passed. No real wait in a test that moves time.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware (UTC)."""
        ...

    def now_ms(self) -> int:
        """The current moment in milliseconds since the epoch (what the database columns hold)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Wait until `when` (at once if it has passed)."""
        ...


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class SystemClock:
    """The wall clock; waits are the event loop's."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def now_ms(self) -> int:
        return to_ms(self.now())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, when: datetime) -> None:
        await self.sleep((when - self.now()).total_seconds())


def system_now_ms() -> int:
    """The wall clock's moment in ms, for a default where no clock was handed over (and for tests' fixtures)."""
    return SystemClock().now_ms()


class MovableClock:
    """A clock that stands still until a test moves it; sleepers wake when their moment is reached.

    Sleepers are woken in the order of their moments (then of their calls); `advance` lets each woken task run
    before it returns, so a loop that sleeps again is asleep at its next moment when the call returns."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
        if self._now.tzinfo is None:
            raise ValueError("MovableClock needs a timezone-aware start")
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    def now_ms(self) -> int:
        return to_ms(self._now)

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)   # still a point where others may run, as a real sleep(0) is
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), woken))
        await woken

    @property
    def sleepers(self) -> int:
        """How many waits are pending (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float = 0.0, *, to: datetime | None = None) -> None:
        """Move time forward by `seconds` (or to `to`), waking in order every sleeper whose moment has come."""
        target = to if to is not None else self._now + timedelta(seconds=seconds)
        if target < self._now:
            raise ValueError("a clock does not go back")
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, woken = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            if not woken.done():
                woken.set_result(None)
                await _settle()
        self._now = target
        await _settle()


async def _settle(rounds: int = 20) -> None:
    """Let the tasks just woken run until they wait again (on I/O, a lock or this clock)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
