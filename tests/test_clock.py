"""The clock port: the movable clock wakes sleepers in order when a test moves it, never by a real wait."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from liaison.clock import Clock, MovableClock, SystemClock, to_ms

START = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)


def test_both_clocks_are_clocks():
    for clock in (SystemClock(), MovableClock(START)):
        assert isinstance(clock.now(), datetime) and clock.now().tzinfo is not None
        assert abs(clock.now_ms() - to_ms(clock.now())) < 5_000
    checked: list[Clock] = [SystemClock(), MovableClock(START)]   # the type checker holds both to the port
    assert len(checked) == 2


async def test_a_sleeper_wakes_only_when_time_reaches_its_moment():
    clock = MovableClock(START)
    woke: list[datetime] = []

    async def sleeper() -> None:
        await clock.sleep(3600)
        woke.append(clock.now())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    assert clock.sleepers == 1
    await clock.advance(3599)
    assert woke == [] and not task.done()
    await clock.advance(1)
    assert woke == [START + timedelta(hours=1)]
    await task


async def test_sleepers_wake_in_the_order_of_their_moments_each_seeing_its_own_now():
    clock = MovableClock(START)
    seen: list[tuple[str, datetime]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        seen.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper("tard", 300)), asyncio.create_task(sleeper("tôt", 60)),
             asyncio.create_task(sleeper("midi", 120))]
    await asyncio.sleep(0)
    await clock.advance(3600)
    assert seen == [("tôt", START + timedelta(seconds=60)), ("midi", START + timedelta(seconds=120)),
                    ("tard", START + timedelta(seconds=300))]
    assert clock.now() == START + timedelta(hours=1)
    await asyncio.gather(*tasks)


async def test_a_loop_that_sleeps_again_runs_once_per_interval_crossed():
    clock = MovableClock(START)
    runs: list[datetime] = []

    async def every_ten_minutes() -> None:
        while True:
            runs.append(clock.now())
            await clock.sleep(600)

    task = asyncio.create_task(every_ten_minutes())
    await asyncio.sleep(0)
    await clock.advance(3600)
    assert len(runs) == 7 and runs[-1] == START + timedelta(hours=1)
    task.cancel()


async def test_sleep_until_a_past_moment_returns_at_once_and_time_never_goes_back():
    clock = MovableClock(START)
    await asyncio.wait_for(clock.sleep_until(START - timedelta(days=1)), 1)
    with pytest.raises(ValueError):
        await clock.advance(to=START - timedelta(seconds=1))
    with pytest.raises(ValueError):
        MovableClock(datetime(2027, 1, 1))


async def test_a_cancelled_sleeper_is_not_counted_nor_woken():
    clock = MovableClock(START)
    task = asyncio.create_task(clock.sleep(60))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.sleepers == 0
    await clock.advance(120)   # nothing to wake: no error


async def test_the_system_clock_sleeps_for_real_but_briefly():
    clock = SystemClock()
    before = clock.now()
    await clock.sleep(0.01)
    assert clock.now() > before
    await clock.sleep_until(before)   # past: at once
