"""One lifecycle: loops started in order, a crash logged and restarted with back-off (on the movable clock, never a
real wait), a vital loop's end stops the service, and the stop runs in the reverse order of the start."""
from __future__ import annotations

import asyncio

import structlog

from liaison.clock import MovableClock
from liaison.lifecycle import Backoff, Lifecycle


async def _until(condition, rounds: int = 200) -> None:
    """Let the event loop run until `condition()` holds (no time passes on the movable clock)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_a_crashing_loop_is_logged_and_restarted_after_a_doubling_back_off():
    clock = MovableClock()
    life = Lifecycle("test", clock, Backoff(first_s=1, max_s=8, healthy_s=60))
    starts: list[float] = []
    t0 = clock.now()

    async def fragile() -> None:
        starts.append((clock.now() - t0).total_seconds())
        raise RuntimeError("boom")

    life.add("fragile", fragile)
    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(life.run())
        await _until(lambda: len(starts) == 1)
        for _ in range(5):
            await clock.advance(8)
        life.stop()
        assert await running == 0
    assert starts[:5] == [0, 1, 3, 7, 15], "back-off 1, 2, 4, 8 (capped) seconds"
    crashed = [e for e in logs if e["event"] == "lifecycle.loop_crashed"]
    assert crashed and crashed[0]["loop"] == "fragile" and crashed[0]["error"] == "RuntimeError"
    assert life.crashes("fragile") >= 4


async def test_a_loop_that_returns_is_not_silently_gone():
    clock = MovableClock()
    life = Lifecycle("test", clock, Backoff(first_s=1))
    runs = []

    async def quits() -> None:
        runs.append(1)

    life.add("quits", quits)
    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(life.run())
        await _until(lambda: len(runs) == 1)
        await clock.advance(1)
        await _until(lambda: len(runs) == 2)
        life.stop()
        await running
    assert any(e["event"] == "lifecycle.loop_returned" for e in logs)


async def test_the_end_of_a_vital_loop_stops_the_service_with_code_1_and_still_stops_cleanly():
    life = Lifecycle("test", MovableClock())
    stopped: list[str] = []
    other_cancelled = asyncio.Event()

    async def vital() -> None:
        raise ConnectionError("homeserver gone")

    async def other() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            other_cancelled.set()

    async def close() -> None:
        stopped.append("closed")

    life.add("other", other)
    life.add("sync", vital, vital=True)
    life.on_stop("close", close)
    assert await asyncio.wait_for(life.run(), 5) == 1
    assert other_cancelled.is_set() and stopped == ["closed"]


async def test_the_stop_cancels_loops_in_reverse_order_then_runs_the_steps_in_reverse_order():
    life = Lifecycle("test", MovableClock())
    order: list[str] = []
    started = {n: asyncio.Event() for n in ("first", "second")}

    def forever(name: str):
        async def run() -> None:
            started[name].set()
            try:
                await asyncio.Event().wait()
            finally:
                order.append(f"cancel {name}")
        return run

    def step(name: str, fails: bool = False):
        async def run() -> None:
            order.append(f"step {name}")
            if fails:
                raise OSError("close failed")
        return run

    life.add("first", forever("first"))
    life.add("second", forever("second"))
    life.on_stop("database", step("database"))
    life.on_stop("clients", step("clients", fails=True))
    running = asyncio.create_task(life.run())
    await started["first"].wait()
    await started["second"].wait()
    assert life.running("first") and life.running("second")
    life.stop()
    assert await running == 0
    assert order == ["cancel second", "cancel first", "step clients", "step database"], \
        "a failing step does not keep the next one from running"


async def test_a_job_runs_at_each_interval_of_the_clock_and_one_failure_does_not_stop_the_next():
    clock = MovableClock()
    life = Lifecycle("test", clock)
    runs: list[int] = []

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise ValueError("one bad run")

    life.every("purge", 3600, job)
    running = asyncio.create_task(life.run())
    await _until(lambda: len(runs) == 1)
    for _ in range(3):
        await clock.advance(3600)
    await _until(lambda: len(runs) == 4)
    life.stop()
    await running
    assert life.crashes("purge") == 0, "a failed run is the job's, not a crash of its loop"


async def test_a_loop_declared_twice_is_refused():
    life = Lifecycle("test", MovableClock())

    async def nothing() -> None:
        return None

    life.add("one", nothing)
    try:
        life.add("one", nothing)
    except ValueError as err:
        assert "one" in str(err)
    else:
        raise AssertionError("a second loop with the same name was accepted")
