"""Read receipts owed to senders (MDN "displayed", RFC 8098): sent when a member of the room has actually
read the puppet's message (their Matrix read receipt), to the sender only, once, through the durable outbox
(which decides again as it sends). A mail in quarantine owes nothing until it is routed and read."""
from __future__ import annotations

from typing import Protocol

import structlog

from bridge import outbox
from bridge.deps import BridgeSettings
from bridge.mail_out import as_bytes
from bridge.ports import BridgeMatrix
from bridge.puppets import Puppets
from bridge.receipts import compose_mdn
from bridge.store import BridgeStore, MdnOwed
from liaison.matrix import MatrixError, ReadReceipt
from liaison.stores.pathways import Pathway, PathwayStore

log = structlog.get_logger(__name__)


class ReadReceiptsPorts(outbox.LaterPorts, Protocol):
    """What settling the read receipts owed uses: whose receipt counts, the pathway, the queue."""

    @property
    def settings(self) -> BridgeSettings: ...

    @property
    def matrix(self) -> BridgeMatrix: ...

    @property
    def puppets(self) -> Puppets: ...

    @property
    def pathways(self) -> PathwayStore: ...

    @property
    def store(self) -> BridgeStore: ...


async def on_read(d: ReadReceiptsPorts, receipts: list[ReadReceipt]) -> None:
    """Receipts of people (not our puppets, nor the bot) in pathway rooms settle the read receipts owed there."""
    by_room: dict[str, list[ReadReceipt]] = {}
    for r in receipts:
        if r.user_id not in (d.matrix.user_id, d.settings.bot_user_id) and not d.puppets.is_puppet(r.user_id):
            by_room.setdefault(r.room_id, []).append(r)
    for room_id, seen in by_room.items():
        pathway = await d.pathways.by_room(room_id)
        if pathway is None or pathway.room_id != room_id:
            continue
        owed = await d.store.mdn_owed(pathway.id)
        if not owed:
            continue
        read_up_to = max([await _event_ts(d, room_id, r.event_id) for r in seen], default=0)
        for o in owed:
            if o.event_id in {r.event_id for r in seen} or read_up_to >= o.posted_at:
                await _send(d, pathway, o)


async def _event_ts(d: ReadReceiptsPorts, room_id: str, event_id: str) -> int:
    try:
        origin = await d.matrix.event_origin(room_id, event_id)
        return origin[1] if origin else 0
    except MatrixError as err:
        log.warning("mdn.event_unknown", error=str(err)[:200])
        return 0


async def _send(d: ReadReceiptsPorts, pathway: Pathway, o: MdnOwed) -> None:
    if not await d.store.claim_mdn(o.mail_id):
        return
    s = d.settings
    mdn = compose_mdn(original_message_id=o.message_id, original_recipient=s.address, from_address=s.address,
                      from_name=s.display_name, to=o.to, subject="", date=d.clock.now())
    await d.store.enqueue(source_event_id="mdn:" + o.mail_id, pathway_id=pathway.id, room_id="",
                          message_id=str(mdn["Message-ID"]).strip("<>"), recipient=o.to, raw=as_bytes(mdn),
                          give_up_at=outbox.later_ms(d, s.give_up_seconds))
    log.info("mdn.queued", mail_id=o.mail_id, pathway_id=pathway.id)
