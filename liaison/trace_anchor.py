"""The trace's head, anchored outside the database, so that deleting the last entries is seen.

The chain (liaison/stores/trace.py) shows an edited or removed entry, but not a table cut short: what
is left still holds. So the bot writes the head (seq, hash, at) to an anchor file, one JSON line
each time it moved (at most every `anchor_interval_seconds`, and once when it stops), signed with
HMAC-SHA256 under a key the database does not hold. `check` then finds an anchored entry that is
gone or carries another hash (the trace was cut, or cut and written again), and every line whose
signature does not hold (written without the key).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from liaison.clock import Clock, SystemClock, system_now_ms
from liaison.stores.trace import Trace

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: int      # milliseconds since the epoch


def _signature(key: str, anchor: Anchor) -> str:
    signed = json.dumps({"seq": anchor.seq, "hash": anchor.hash, "at": anchor.at}, sort_keys=True,
                        separators=(",", ":"))
    return hmac.new(key.encode(), signed.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Reading:
    anchors: tuple[Anchor, ...]     # the lines whose signature holds, in the file's order
    bad_lines: tuple[int, ...]      # line numbers (from 1) unreadable or wrongly signed


class AnchorFile:
    """The JSON-lines file of signed anchors, only ever appended to."""

    def __init__(self, path: str | Path, key: str) -> None:
        self.path = Path(path)
        self.key = key

    def write(self, seq: int, hash_: str, at_ms: int | None = None) -> Anchor:
        anchor = Anchor(seq, hash_, system_now_ms() if at_ms is None else at_ms)
        line = json.dumps({"seq": seq, "hash": hash_, "at": anchor.at, "sig": _signature(self.key, anchor)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return anchor

    def read(self) -> Reading:
        if not self.path.exists():
            return Reading((), ())
        anchors, bad = [], []
        for number, line in enumerate(self.path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            anchor = self._parse(line)
            if anchor is None:
                bad.append(number)
            else:
                anchors.append(anchor)
        return Reading(tuple(anchors), tuple(bad))

    def _parse(self, line: str) -> Anchor | None:
        """The line's anchor when its signature holds, else None."""
        try:
            raw = json.loads(line)
            anchor = Anchor(int(raw["seq"]), str(raw["hash"]), int(raw["at"]))
            sig = str(raw["sig"])
        except (ValueError, KeyError, TypeError):
            return None
        return anchor if hmac.compare_digest(sig, _signature(self.key, anchor)) else None


@dataclass(frozen=True)
class AnchorCheck:
    anchors: int                  # lines whose signature holds
    bad_lines: tuple[int, ...]    # lines unreadable or wrongly signed
    latest: Anchor | None         # the highest anchored entry
    last_seq: int                 # the table's last entry (0: empty)
    broken: Anchor | None         # the lowest anchor whose entry is gone or carries another hash

    @property
    def unanchored(self) -> bool:
        """Entries, and not one anchor that holds: the anchors were lost, or never written."""
        return self.latest is None and self.last_seq > 0

    @property
    def ok(self) -> bool:
        return not self.bad_lines and self.broken is None and not self.unanchored


async def check(trace: Trace, anchors: AnchorFile) -> AnchorCheck:
    """Every signed anchor against the table: its entry must still be there, with the anchored hash."""
    reading = await asyncio.to_thread(anchors.read)
    hashes = {e.seq: e.hash for e in await trace.entries()}
    broken = next((a for a in sorted(reading.anchors, key=lambda a: a.seq) if hashes.get(a.seq) != a.hash), None)
    latest = max(reading.anchors, key=lambda a: a.seq, default=None)
    return AnchorCheck(len(reading.anchors), reading.bad_lines, latest, max(hashes, default=0), broken)


class Anchorer:
    """The bot's job: anchor the head when it moved (run at an interval by the bot's lifecycle), and once at a stop."""

    def __init__(self, trace: Trace, anchors: AnchorFile, clock: Clock | None = None) -> None:
        self.trace = trace
        self.anchors = anchors
        self.clock: Clock = clock or SystemClock()
        self._last: Anchor | None = None
        self._read = False
        self._refused = False

    async def anchor_safely(self) -> None:
        """`anchor_once`, a failure logged rather than raised (the next pass tries again)."""
        try:
            await self.anchor_once()
        except Exception:
            log.exception("trace.anchor_failed")

    async def anchor_once(self) -> int | None:
        """Anchor the head if it moved since the last anchor; the seq anchored, or None.

        A head that does not extend the last anchor (its entry gone or changed) is never anchored:
        that would hide the cut from `liaison trace verify`."""
        if not self._read:
            reading = await asyncio.to_thread(self.anchors.read)
            self._last, self._read = max(reading.anchors, key=lambda a: a.seq, default=None), True
        head = await self.trace.head()
        if head is None or (self._last and (self._last.seq, self._last.hash) == head):
            return None
        if self._last and await self.trace.hash_at(self._last.seq) != self._last.hash:
            if not self._refused:
                log.error("trace.anchor_refused", anchored_seq=self._last.seq, head_seq=head[0])
                self._refused = True
            return None
        self._last = await asyncio.to_thread(self.anchors.write, *head, self.clock.now_ms())
        log.debug("trace.anchored", seq=head[0])
        return head[0]
