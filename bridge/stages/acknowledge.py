"""Stage 6: the mail's end written, once: its state, and for a quarantined mail its raw bytes kept aside and the
coordination told in the quarantine room; for a posted one, the read receipt it asked for owed to its sender."""
from __future__ import annotations

from typing import Protocol

import structlog

from bridge import quarantine_room
from bridge.metrics import Metrics
from bridge.ports import Poster
from bridge.routing import Quarantine, Route
from bridge.stages.outcome import Outcome
from bridge.store import BridgeStore
from liaison.stores.mail import MailStore, Quarantined
from liaison.matrix import txn_id

log = structlog.get_logger(__name__)


class AcknowledgePorts(Protocol):
    """What writing a mail's end uses: its row, the quarantine and its room, the counters."""

    @property
    def store(self) -> BridgeStore: ...

    @property
    def mail(self) -> MailStore: ...

    @property
    def matrix(self) -> Poster: ...

    @property
    def metrics(self) -> Metrics: ...


async def write(d: AcknowledgePorts, mail_id: str, raw: bytes, outcome: Outcome) -> str:
    if outcome.quarantine is not None:
        return await quarantine(d, mail_id, raw, outcome.quarantine, outcome.sender, outcome.trusted)
    if outcome.state == "posted":
        if outcome.receipt_to:   # owed before it counts as posted: a read receipt may come at once
            await d.store.want_mdn(mail_id, outcome.receipt_to)
        await d.store.finish_mail(mail_id, "posted", pathway_id=outcome.pathway_id, event_id=outcome.event_id)
        d.metrics.relayed_in.inc()
        return "posted"
    await d.store.finish_mail(mail_id, outcome.state, reason=outcome.reason)
    return outcome.state


async def write_by_hand(d: AcknowledgePorts, held: Quarantined, where: Route, outcome: Outcome) -> str:
    """A mail routed by hand: posted, it leaves the quarantine; refused now (an objection recorded since, a sender
    banned from the room, a mail that cannot be read), it stays there and the quarantine room is told why."""
    if outcome.quarantine is None:
        state = await write(d, held.mail_in_id, b"", outcome)
        await d.mail.finish_routing(held.number, None)
        log.info("quarantine.routed", number=held.number, pathway_id=where.pathway.id)
        return state
    q = outcome.quarantine
    await d.mail.routing_refused(held.number)
    await tell_quarantine(d, f"Courriel n° {held.number} non déposé dans le parcours {where.pathway.code} : "
                             f"{q.reason.rstrip('.')}. Il reste en quarantaine.",
                          txn_id("mss-q-told", f"{q.code}-{held.number}"))
    log.info("quarantine.routing_refused", number=held.number, code=q.code)
    return "quarantined"


async def quarantine(d: AcknowledgePorts, mail_id: str, raw: bytes, q: Quarantine, sender: str, trusted: bool) -> str:
    number = await d.mail.quarantine(mail_id, reason_code=q.code, reason=q.reason, from_address=sender,
                                     trusted=trusted, raw=raw)
    await d.store.finish_mail(mail_id, "quarantined", reason=q.code)
    d.metrics.quarantined.labels(q.code).inc()
    await notify_quarantine(d, number, q, sender)
    return "quarantined"


async def notify_quarantine(d: AcknowledgePorts, number: int, q: Quarantine, sender: str) -> None:
    """Tell the coordination in the quarantine room (encrypted); the mail stays there until decided."""
    text = (f"Courriel n° {number} mis en quarantaine : {q.reason.rstrip('.')}.\nExpéditeur : {sender or 'illisible'}.\n"
            f"Pour le déposer dans un parcours : !mss router {number} <code du parcours> ; "
            f"pour l'écarter : !mss rejeter {number}. Liste : !mss quarantaine.")
    event_id = await tell_quarantine(d, text, txn_id("mss-q", str(number)))
    if event_id:
        await d.mail.set_quarantine_notice(number, event_id)


async def tell_quarantine(d: AcknowledgePorts, text: str, txn: str) -> str | None:
    """A notice in the quarantine room (bridge/quarantine_room.py), by the bridge's account."""
    return await quarantine_room.tell(d.mail, d.matrix, text, txn)
