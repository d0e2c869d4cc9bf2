"""Receipts for the mails the bridge sent (DSN, MDN), shown on the Matrix message they came from."""
from __future__ import annotations

from typing import Protocol

import structlog

from bridge.deps import BridgeSettings
from bridge.metrics import Metrics
from bridge.ports import BridgeMatrix
from bridge.receipts import Receipt
from bridge.store import BridgeStore, Outgoing
from liaison.trusted import TrustedDomains
from liaison.matrix import MatrixError, notice, txn_id

log = structlog.get_logger(__name__)

REACTIONS = {"sent": "📤 envoyé", "delivered": "📬 remis", "displayed": "👁️ lu", "failed": "⚠️ échec"}


class ShowPorts(Protocol):
    """What showing a mail's fate on its message uses (`show`, also the outbox's)."""

    @property
    def matrix(self) -> BridgeMatrix: ...


class ReceiptsInPorts(ShowPorts, Protocol):
    """What listening to a receipt uses: who may report, the outgoing mail it cites, the counters."""

    @property
    def settings(self) -> BridgeSettings: ...

    @property
    def store(self) -> BridgeStore: ...

    @property
    def trusted(self) -> TrustedDomains: ...

    @property
    def metrics(self) -> Metrics: ...


async def show(d: ShowPorts, room_id: str, event_id: str, status: str, reason: str = "") -> None:
    """A reaction on the message (sent, delivered, read, failed) and, on failure, a notice with the reason."""
    try:
        await d.matrix.react(room_id, event_id, REACTIONS[status], txn_id("mss-r", event_id, status))
        if status == "failed":
            await d.matrix.send(room_id, notice(f"Le courriel n'a pas pu être remis : {reason}", reply_to=event_id),
                                txn_id("mss-f", event_id))
    except MatrixError as err:
        log.warning("receipt.show_failed", event_id=event_id, status=status, error=str(err)[:200])


BOUNCE_ADDRESSES = frozenset({"mailer-daemon", "postmaster"})   # who sends delivery status notifications (RFC 3464)


def within(domain: str, parent: str) -> bool:
    """`domain` is `parent` or one of its subdomains (mx.chu.fr within chu.fr; evilchu.fr is not)."""
    domain, parent = domain.lower().rstrip("."), parent.lower().rstrip(".")
    return bool(parent) and (domain == parent or domain.endswith("." + parent))


def sender_may_report(d: ReceiptsInPorts, receipt: Receipt, sender: str, out: Outgoing) -> bool:
    """Who may tell us what became of a mail we sent: for a DSN, our own gateway (the domain of our mailbox at the
    operator, or the SMTP host we send through) or the recipient's domain when it is on the trusted list; for a read
    receipt (MDN), the recipient's domain only. Anyone else (a `mailer-daemon@` of any domain) is not listened to.
    A DSN comes from a mail server's own bounce address: a person of our domain or of theirs cannot report a
    delivery failure, which would tell the room a mail did not arrive."""
    local, _, domain = sender.rpartition("@")
    recipient_domain = out.recipient.rpartition("@")[2]
    theirs = d.trusted.trusts(out.recipient) and within(domain, recipient_domain)
    if receipt.kind == "mdn":
        return theirs
    if local.lower() not in BOUNCE_ADDRESSES:
        return False
    return theirs or within(domain, d.settings.domain) or within(domain, d.settings.gateway_host)


async def apply(d: ReceiptsInPorts, receipt: Receipt, sender: str) -> str | None:
    """Show a receipt on the message it is about; None when shown (or seen before), else why it was not listened to
    (`unmatched`: it cites none of our outgoing mails; `foreign_sender`: see sender_may_report). The notice of a
    failure is our own French sentence (bridge.receipts.dsn_reason), never the reporting server's words."""
    out = None
    if receipt.envelope_id:
        out = await d.store.outgoing_by_id(receipt.envelope_id)
    if out is None and receipt.original_message_id:
        out = await d.store.outgoing_by_message_id(receipt.original_message_id)
    if out is None or out.source_event_id.startswith("mdn:"):
        log.info("receipt.unmatched", kind=receipt.kind, status=receipt.status)
        return "unmatched"
    if not sender_may_report(d, receipt, sender, out):
        log.warning("receipt.refused", out_id=out.id, kind=receipt.kind, status=receipt.status, why="foreign_sender")
        return "foreign_sender"
    d.metrics.receipts.labels(receipt.kind, receipt.status).inc()
    if receipt.status not in REACTIONS or not await d.store.record_receipt(out.id, receipt.kind, receipt.status):
        return None
    await show(d, out.room_id, out.source_event_id, receipt.status, receipt.reason)
    log.info("receipt.shown", out_id=out.id, kind=receipt.kind, status=receipt.status)
    return None
