"""The trace's head, anchored outside the database, so that deleting the last entries is seen.

The chain (liaison/stores/trace.py) shows an edited or removed entry, but not a table cut short: what
is left still holds. So the bot writes the head (seq, hash, at) to an anchor file, one JSON line
each time it moved (at most every `anchor_interval_seconds`, and once when it stops), signed with
HMAC-SHA256 under a key the database does not hold. `check` then finds an anchored entry that is
gone or carries another hash (the trace was cut, or cut and written again), and every line whose
signature does not hold (written without the key).

The lines are chained too: each carries, under its signature, the hash of the line before it (`prev`), so a line
removed or changed in the middle of the file breaks the next one's link. And each line written is recorded in the
trace (`trace.anchored`: its number and hash), so a file cut at its end is seen from the trace: a line the trace
names and the file no longer has. That record is itself anchored by the next line; only someone who cuts the file
*and* rewrites the trace after its last surviving anchor, records included, goes unseen by `liaison trace verify`,
which is what the bot's own log of each anchor (`trace.anchored`, the line's number and hash, kept apart from both)
is for. Files written before the lines were chained (no `prev`) are read as they are; the first chained line
follows their last one.
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
from liaison.stores.trace import GENESIS, Fact, Trace, TraceEntry
from policies.records import RECORDS

log = structlog.get_logger(__name__)

ANCHOR = "anchor"          # the trace's fact kind of an anchor line's record
ANCHOR_ACTOR = "ancrage"   # who writes that record: the bot's anchoring job


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: int                  # milliseconds since the epoch
    line: int = 0            # its line number in the file (from 1)
    line_hash: str = ""      # SHA-256 of the line as written (what the next line's `prev` is)
    chained: bool = False    # written with `prev` (False: a line of a file written before the lines were chained)


def line_hash(raw: str) -> str:
    return hashlib.sha256(raw.strip().encode()).hexdigest()


def _signature(key: str, anchor: Anchor, prev: str | None) -> str:
    body = {"seq": anchor.seq, "hash": anchor.hash, "at": anchor.at} | ({"prev": prev} if prev is not None else {})
    signed = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key.encode(), signed.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Reading:
    anchors: tuple[Anchor, ...]       # the lines whose signature holds, in the file's order
    bad_lines: tuple[int, ...]        # line numbers (from 1) unreadable or wrongly signed
    unlinked: tuple[int, ...] = ()    # chained lines whose `prev` is not the line before: one removed or changed
    hashes: tuple[tuple[int, str], ...] = ()   # (number, hash) of every line, in order

    @property
    def last_line(self) -> int:
        return self.hashes[-1][0] if self.hashes else 0


class AnchorFile:
    """The JSON-lines file of signed, chained anchors, only ever appended to."""

    def __init__(self, path: str | Path, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self._end: tuple[int, str, int] | None = None   # after our last write: (last line, its hash, file size)

    def write(self, seq: int, hash_: str, at_ms: int | None = None) -> Anchor:
        """Append the line anchoring (seq, hash), chained to the file's last line; the anchor, with its line."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if self._end is None or self._end[2] != size:
            if self._end is not None and size < self._end[2]:
                log.error("trace.anchor_file_cut", lines_before=self._end[0], size_before=self._end[2], size=size)
            reading = self.read()
            self._end = (reading.last_line, reading.hashes[-1][1] if reading.hashes else GENESIS, size)
        last, prev, _ = self._end
        at = system_now_ms() if at_ms is None else at_ms
        unsigned = Anchor(seq, hash_, at)
        line = json.dumps({"seq": seq, "hash": hash_, "at": at, "prev": prev,
                           "sig": _signature(self.key, unsigned, prev)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        anchor = Anchor(seq, hash_, at, last + 1, line_hash(line), True)
        self._end = (anchor.line, anchor.line_hash, size + len(line) + 1)
        return anchor

    def read(self) -> Reading:
        if not self.path.exists():
            return Reading((), ())
        anchors, bad, unlinked, hashes = [], [], [], []
        before = GENESIS
        for number, raw in enumerate(self.path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not raw.strip():
                continue
            anchor, prev = self._parse(raw, number)
            if anchor is None:
                bad.append(number)
            else:
                anchors.append(anchor)
                if anchor.chained and prev != before:
                    unlinked.append(number)
            before = line_hash(raw)
            hashes.append((number, before))
        return Reading(tuple(anchors), tuple(bad), tuple(unlinked), tuple(hashes))

    def _parse(self, raw: str, number: int) -> tuple[Anchor | None, str | None]:
        """The line's anchor when its signature holds (else None), and the `prev` it names."""
        try:
            fields = json.loads(raw)
            anchor = Anchor(int(fields["seq"]), str(fields["hash"]), int(fields["at"]), number, line_hash(raw),
                            "prev" in fields)
            prev = str(fields["prev"]) if anchor.chained else None
            sig = str(fields["sig"])
        except (ValueError, KeyError, TypeError):
            return None, None
        return (anchor if hmac.compare_digest(sig, _signature(self.key, anchor, prev)) else None), prev


@dataclass(frozen=True)
class AnchorCheck:
    anchors: int                  # lines whose signature holds
    bad_lines: tuple[int, ...]    # lines unreadable or wrongly signed
    latest: Anchor | None         # the highest anchored entry
    last_seq: int                 # the table's last entry (0: empty)
    broken: Anchor | None         # the lowest anchor whose entry is gone or carries another hash
    unlinked: tuple[int, ...] = ()                   # lines that do not follow the line before them
    missing: tuple[tuple[int, int], ...] = ()        # (line, record's seq): lines the trace names, gone or changed
    file_lines: int = 0           # the file's last line number
    newer: int = 0                # entries after the latest anchor, the records of anchors aside

    @property
    def unanchored(self) -> bool:
        """Entries, and not one anchor that holds: the anchors were lost, or never written."""
        return self.latest is None and self.last_seq > 0

    @property
    def ok(self) -> bool:
        return (not self.bad_lines and self.broken is None and not self.unanchored and not self.unlinked
                and not self.missing)


async def check(trace: Trace, anchors: AnchorFile) -> AnchorCheck:
    """Every signed anchor against the table (its entry must still be there, with the anchored hash), every line
    against the one before it, and every line the trace recorded against the file."""
    reading = await asyncio.to_thread(anchors.read)
    entries = await trace.entries()
    hashes = {e.seq: e.hash for e in entries}
    broken = next((a for a in sorted(reading.anchors, key=lambda a: a.seq) if hashes.get(a.seq) != a.hash), None)
    latest = max(reading.anchors, key=lambda a: a.seq, default=None)
    in_file = dict(reading.hashes)
    missing = tuple((_line_of(e), e.seq) for e in entries
                    if e.fact_kind == ANCHOR and in_file.get(_line_of(e)) != e.fact_digest)
    newer = sum(1 for e in entries if e.seq > (latest.seq if latest else 0) and e.fact_kind != ANCHOR)
    return AnchorCheck(len(reading.anchors), reading.bad_lines, latest, max(hashes, default=0), broken,
                       reading.unlinked, missing, reading.last_line, newer)


class Anchorer:
    """The bot's job: anchor the head when it moved (run at an interval by the bot's lifecycle), and once at a stop;
    each line written, recorded in the trace."""

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
        """Anchor the head if it moved since the last anchor (its own record aside); the seq anchored, or None.

        A head that does not extend the last anchor (its entry gone or changed) is never anchored:
        that would hide the cut from `liaison trace verify`."""
        if not self._read:
            reading = await asyncio.to_thread(self.anchors.read)
            self._last, self._read = max(reading.anchors, key=lambda a: a.seq, default=None), True
        head = await self.trace.head()
        if head is None or (self._last and (self._last.seq, self._last.hash) == head):
            return None
        if self._last and head[0] == self._last.seq + 1 and _records(await self.trace.at(head[0]), self._last):
            return None   # only the record of the last line since: nothing new to anchor
        if self._last and await self.trace.hash_at(self._last.seq) != self._last.hash:
            if not self._refused:
                log.error("trace.anchor_refused", anchored_seq=self._last.seq, head_seq=head[0])
                self._refused = True
            return None
        anchor = await asyncio.to_thread(self.anchors.write, *head, self.clock.now_ms())
        self._last = anchor
        record = RECORDS["trace.anchored"]
        await self.trace.append(actor=ANCHOR_ACTOR, action=record.action, subject=f"ligne {anchor.line}",
                                decision=record.decision, fact=Fact(ANCHOR, str(anchor.line), anchor.line_hash))
        log.info("trace.anchored", seq=head[0], line=anchor.line, line_hash=anchor.line_hash)
        return head[0]


def _line_of(entry: TraceEntry) -> int:
    """The line number a record names (0 for one altered into something else: the chain says so too)."""
    try:
        return int(entry.fact_id or 0)
    except ValueError:
        return 0


def _records(entry: TraceEntry | None, anchor: Anchor) -> bool:
    """`entry` is the trace's record of that anchor's line."""
    return bool(entry and entry.fact_kind == ANCHOR and entry.fact_id == str(anchor.line)
                and entry.fact_digest == anchor.line_hash)
