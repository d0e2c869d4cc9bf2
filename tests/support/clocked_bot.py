"""The real bot process, on a clock the test moves forward: `python -m tests.support.clocked_bot -c CONFIG
--clock-file F` runs bot/__main__.py's `serve` (the same wiring, loops and log) with a `JumpClock` instead of the
wall clock.

A `JumpClock` runs with the wall clock, shifted by an offset; the test jumps it forward (`ClockedBot.jump_to`):
it writes the moment it wants into the clock file and sends SIGUSR1; the process sets its offset so that « now »
is that moment, and wakes every loop asleep on the clock so that each looks again at what is due. No test waits
for time to pass; everything else in the process (its sync, its retries) runs at the wall clock's pace.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from liaison.clock import to_ms
from tests.support.botproc import BotProcess


class JumpClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._jumped: asyncio.Future[None] | None = None

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def now_ms(self) -> int:
        return to_ms(self.now())

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, when: datetime) -> None:
        while (left := (when - self.now()).total_seconds()) > 0:
            if self._jumped is None or self._jumped.done():
                self._jumped = asyncio.get_running_loop().create_future()
            await asyncio.wait({self._jumped}, timeout=left)   # a jump wakes it early: it looks again
        await asyncio.sleep(0)

    def jump_to(self, moment: datetime) -> None:
        """« now » is `moment` from here on (never back)."""
        self.offset = max(self.offset, moment - datetime.now(timezone.utc))
        if self._jumped is not None and not self._jumped.done():
            self._jumped.set_result(None)


async def _serve(config: str, ready_file: str | None, clock_file: Path) -> int:
    from bot.__main__ import serve

    clock = JumpClock()

    def jump() -> None:
        moment = datetime.fromtimestamp(int(clock_file.read_text()) / 1000, tz=timezone.utc)
        clock.jump_to(moment)
        print("test_clock.jumped", file=sys.stderr, flush=True)   # no moment: a log line holds no date

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, jump)
    return await serve(config, ready_file, clock)


def main(argv: list[str] | None = None) -> int:
    """The bot's own command line (`-c CONFIG [--ready-file F]`, its refusals and exit codes), plus the clock file."""
    from bot.__main__ import ConfigError, DatabaseTooNew, KnobError, ProtocolError, TrustedListError
    from liaison import lifecycle

    parser = argparse.ArgumentParser()
    parser.add_argument("--clock-file", required=True)
    ours, rest = parser.parse_known_args(argv)
    clock_file = Path(ours.clock_file)
    return lifecycle.main("python -m tests.support.clocked_bot", "Le bot Liaison, sur une horloge de test.",
                          "fichier de configuration YAML", lambda config, ready: _serve(config, ready, clock_file),
                          (ConfigError, DatabaseTooNew, KnobError, TrustedListError, ProtocolError), rest)


@dataclass
class ClockedBot(BotProcess):
    """A `BotProcess` started on a `JumpClock`."""

    @property
    def clock_file(self) -> Path:
        return self.workdir / "clock"

    def command(self) -> list[str]:
        return [sys.executable, "-OO", "-m", "tests.support.clocked_bot", "-c", str(self.config_path),
                "--clock-file", str(self.clock_file)]

    def jump_to(self, moment: datetime) -> None:
        """Move the bot's clock forward to `moment`, and wait until the process has done so."""
        before = self.current_log().count("test_clock.jumped")
        self.clock_file.write_text(str(to_ms(moment)))
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while self.current_log().count("test_clock.jumped") <= before:
            if time.monotonic() > deadline:
                raise TimeoutError("the bot did not move its clock")
            time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
