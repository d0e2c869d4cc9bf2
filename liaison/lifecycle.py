"""One lifecycle for each service: its background loops started, supervised and stopped in one place.

A service declares its loops to a `Lifecycle` (`add` for a loop that runs for ever, `every` for a job repeated at an
interval), then `run` starts them in the order given and waits for a stop. A loop that crashes or returns is logged
(`lifecycle.loop_crashed`, its name and the error's type) and started again after a back-off that doubles up to a
ceiling (never silently gone); a loop declared `vital` ends the service instead (exit code 1), for the loops a
service is nothing without. At a stop, the loops are cancelled in the reverse order of their start, each awaited,
then the `on_stop` steps run in the reverse order of their declaration (drain the replies, close the clients, …).

Both `python -m bot` and `python -m bridge` go through `main()` here: the same arguments, the same umask, the same
signals, and the same exit code 2 with one French line for a configuration the service refuses.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any
from dataclasses import dataclass
from pathlib import Path

import structlog

from liaison.clock import Clock, SystemClock
from liaison.private import restrict_umask

log = structlog.get_logger("lifecycle")

LoopFactory = Callable[[], Awaitable[None]]
Step = Callable[[], Awaitable[object]]   # what it returns is not used


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    max_s: float = 60.0
    healthy_s: float = 60.0   # a loop that ran this long before it crashed starts again from `first_s`


@dataclass
class _Loop:
    name: str
    factory: LoopFactory
    vital: bool
    task: asyncio.Task[None] | None = None
    crashes: int = 0


class Lifecycle:
    def __init__(self, service: str, clock: Clock | None = None, backoff: Backoff = Backoff()) -> None:
        self.service = service
        self.clock: Clock = clock or SystemClock()
        self.backoff = backoff
        self._loops: list[_Loop] = []
        self._on_stop: list[tuple[str, Step]] = []
        self._stop = asyncio.Event()
        self._failed: asyncio.Event = asyncio.Event()
        self.exit_code = 0

    def add(self, name: str, factory: LoopFactory, *, vital: bool = False) -> None:
        """A loop that runs until the service stops; `factory()` makes a fresh coroutine at each (re)start."""
        if any(existing.name == name for existing in self._loops):
            raise ValueError(f"loop declared twice: {name}")
        self._loops.append(_Loop(name, factory, vital))

    def every(self, name: str, interval_s: float, job: Step, *, first_after_s: float = 0.0) -> None:
        """`job` now (or after `first_after_s`), then every `interval_s` of the clock; a failed run is logged
        and the next one comes at its time."""
        async def repeat() -> None:
            await self.clock.sleep(first_after_s)
            while True:
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:   # noqa: BLE001 — one failed run never stops the next ones
                    log.exception("lifecycle.job_failed", service=self.service, job=name)
                await self.clock.sleep(interval_s)
        self.add(name, repeat)

    def on_stop(self, name: str, step: Step) -> None:
        """A step of the clean stop (after the loops are cancelled); steps run in the reverse order of declaration,
        and one that fails does not keep the others from running."""
        self._on_stop.append((name, step))

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def running(self, name: str) -> bool:
        loop = next((lp for lp in self._loops if lp.name == name), None)
        return bool(loop and loop.task and not loop.task.done())

    def crashes(self, name: str) -> int:
        return next(lp.crashes for lp in self._loops if lp.name == name)

    async def run(self) -> int:
        """Start every loop, wait for a stop (a signal, `stop()`, or a vital loop's end), stop cleanly."""
        for loop in self._loops:
            loop.task = asyncio.create_task(self._supervise(loop), name=f"{self.service}:{loop.name}")
        waiting = [asyncio.create_task(self._stop.wait()), asyncio.create_task(self._failed.wait())]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiting:
                w.cancel()
            await self._shutdown()
        return self.exit_code

    async def _supervise(self, loop: _Loop) -> None:
        while True:
            started = self.clock.now()
            try:
                await loop.factory()
                error = "returned"
            except asyncio.CancelledError:
                raise
            except Exception as err:   # noqa: BLE001 — logged, then restarted (or the service stops)
                error = type(err).__name__
                log.error("lifecycle.loop_crashed", service=self.service, loop=loop.name, error=error,
                          exc_info=True)
            if self._stop.is_set():
                return
            if loop.vital:
                log.error("lifecycle.vital_loop_ended", service=self.service, loop=loop.name, error=error)
                self.exit_code = 1
                self._failed.set()
                return
            ran_s = (self.clock.now() - started).total_seconds()
            loop.crashes = 1 if ran_s >= self.backoff.healthy_s else loop.crashes + 1
            delay = min(self.backoff.max_s, self.backoff.first_s * 2 ** (loop.crashes - 1))
            if error == "returned":
                log.error("lifecycle.loop_returned", service=self.service, loop=loop.name)
            log.info("lifecycle.loop_restarting", service=self.service, loop=loop.name, in_s=delay,
                     crashes=loop.crashes)
            await self.clock.sleep(delay)

    async def _shutdown(self) -> None:
        for loop in reversed(self._loops):
            if loop.task is not None:
                loop.task.cancel()
                await asyncio.gather(loop.task, return_exceptions=True)
        for name, step in reversed(self._on_stop):
            try:
                await step()
            except Exception:   # noqa: BLE001 — the other steps still run
                log.exception("lifecycle.stop_step_failed", service=self.service, step=name)


def when_ready(lifecycle: Lifecycle, ready: asyncio.Event, ready_file: str | None) -> None:
    """Write the process id to `ready_file` once `ready` is set, and remove it at the stop."""
    if not ready_file:
        return
    path = Path(ready_file)

    async def announce() -> None:
        await ready.wait()
        path.write_text(str(os.getpid()))
        await asyncio.Event().wait()   # stays until the stop (a return would be restarted)

    async def remove() -> None:
        path.unlink(missing_ok=True)

    lifecycle.add("ready-file", announce)
    lifecycle.on_stop("ready-file", remove)


def stop_on_signals(lifecycle: Lifecycle) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lifecycle.stop)


def main(prog: str, description: str, config_help: str,
         serve: Callable[[str, str | None], Coroutine[Any, Any, int]],
         refused: Iterable[type[BaseException]], argv: list[str] | None = None) -> int:
    """The command line both services share: `-c CONFIG [--ready-file F]`; the exit code is `serve`'s, or 2 with
    one line on stderr for an error of `refused` (a configuration, database or list the service will not run on)."""

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-c", "--config", required=True, help=config_help)
    parser.add_argument("--ready-file", help="fichier écrit quand le service est prêt")
    args = parser.parse_args(argv)
    restrict_umask()   # before any file is written: the database, the keys, the log are the owner's only
    try:
        return asyncio.run(serve(args.config, args.ready_file))
    except tuple(refused) as err:
        print(f"liaison: {err}", file=sys.stderr)
        return 2


async def close_quietly(*closings: Awaitable[object]) -> None:
    """Close clients at a stop: one that fails to close does not keep the others open."""
    for closing in closings:
        with contextlib.suppress(Exception):
            await closing
