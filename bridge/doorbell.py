"""A loop's doorbell: whoever writes work for a waiting loop rings it, the loop wakes at once instead of at its
next timer (the timer stays: a ring is never needed for the work to be done, only for it to be done now)."""
from __future__ import annotations

import asyncio


class Doorbell:
    def __init__(self) -> None:
        self._rung = asyncio.Event()
        self.rings = 0   # since the start (for tests and the curious)

    def ring(self) -> None:
        self.rings += 1
        self._rung.set()

    async def wait(self, timeout: float) -> bool:
        """Until rung or `timeout` seconds; True when rung. The next wait waits for a new ring."""
        try:
            if not self._rung.is_set():
                await asyncio.wait_for(self._rung.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self._rung.clear()
