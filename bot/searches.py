"""Each person's last `!annuaire` search in each room, for `!annuaire suite`: in memory only (never written, never
logged), forgotten after some minutes on the clock, and bounded (the oldest dropped first)."""
from __future__ import annotations

from collections import OrderedDict

from liaison.clock import Clock

TTL_MS = 10 * 60_000
SIZE = 1_000


class LastSearches:
    def __init__(self, clock: Clock, ttl_ms: int = TTL_MS, size: int = SIZE) -> None:
        self._clock, self._ttl_ms, self._size = clock, ttl_ms, size
        self._kept: OrderedDict[tuple[str, str], tuple[str, int, int]] = OrderedDict()   # query, offset, until

    def keep(self, room_id: str, sender: str, query: str, offset: int) -> None:
        """`offset`: where the next page begins."""
        key = (room_id, sender)
        self._kept.pop(key, None)
        self._kept[key] = (query, offset, self._clock.now_ms() + self._ttl_ms)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)

    def last(self, room_id: str, sender: str) -> tuple[str, int] | None:
        """The query and where its next page begins; None when there is none, or it is too old."""
        kept = self._kept.get((room_id, sender))
        if kept is None or kept[2] < self._clock.now_ms():
            self._kept.pop((room_id, sender), None)
            return None
        return kept[0], kept[1]
