"""Room messages the homeserver never pushed. Synapse keeps the events queued for an appservice in memory and
loses them when it restarts (matrix-org/synapse#11637, open): a reply written in the seconds before would never be
mailed. So after the bridge starts, and each time its own sync comes back after the homeserver was away, the
last messages of the rooms it is in that hold a mail thread or a puppet (only there can a message be a reply to
relay; a puppet's room counts too, since a mail's text is posted before its thread is recorded, and a stop between
the two left the room unread) are read back and those it never received are kept as if pushed. Events
are deduplicated by id, forever (as_event keeps every id it saw): nothing is relayed twice, and what is relayed
late is decided at that moment like any other (bridge/outbound.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import structlog
from sqlalchemy.exc import SQLAlchemyError

from bridge.metrics import Metrics
from bridge.ports import BridgeMatrix
from bridge.store import BridgeStore
from liaison.clock import Clock
from liaison.matrix import MatrixError
from liaison.stores.mail import MailStore

log = structlog.get_logger(__name__)

LOOKBACK_MS = 3_600_000   # a homeserver restart loses seconds of events; an hour covers a bridge down meanwhile
PER_ROOM = 200


class CatchUpPorts(Protocol):
    """What reading back the rooms' last messages uses of the bridge's parts (`bridge.deps.Deps` has them)."""

    @property
    def mail(self) -> MailStore: ...

    @property
    def matrix(self) -> BridgeMatrix: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def metrics(self) -> Metrics: ...


async def catch_up(d: CatchUpPorts, store: BridgeStore, wanted: Callable[[dict[str, Any]], bool]) -> int:
    """The number of events found that had not been pushed (they are then pending, and the relay woken)."""
    since, rooms, found = d.clock.now_ms() - LOOKBACK_MS, 0, 0
    try:
        threaded = await d.mail.thread_rooms() | await store.puppet_rooms()
        joined = [r for r in await d.matrix.joined_rooms() if r in threaded]
    except (MatrixError, OSError, SQLAlchemyError) as err:
        log.warning("bridge.catch_up_failed", error=str(err)[:200])
        return 0
    for room_id in joined:
        try:
            events = [e for e in await d.matrix.recent_events(room_id, since, PER_ROOM) if wanted(e)]
        except (MatrixError, OSError) as err:
            log.warning("bridge.catch_up_room_failed", room_id=room_id, error=str(err)[:200])
            continue
        rooms += 1
        if events:
            found += await store.record_events(events)
    if found:
        d.metrics.events_caught_up.inc(found)   # record_events rang the relay's doorbell
    log.info("bridge.caught_up", rooms=rooms, events=found)
    return found
