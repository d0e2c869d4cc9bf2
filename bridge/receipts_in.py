"""Receipts for the mails the bridge sent (DSN, MDN), shown on the Matrix message they came from."""
from __future__ import annotations

import structlog

from bridge.deps import Deps
from bridge.receipts import Receipt
from liaison.matrix import MatrixError, txn_id

log = structlog.get_logger(__name__)

REACTIONS = {"sent": "📤 envoyé", "delivered": "📬 remis", "displayed": "👁️ lu", "failed": "⚠️ échec"}


async def show(d: Deps, room_id: str, event_id: str, status: str, reason: str = "") -> None:
    """A reaction on the message (sent, delivered, read, failed) and, on failure, a notice with the reason."""
    try:
        await d.matrix.react(room_id, event_id, REACTIONS[status], txn_id("mss-r", event_id, status))
        if status == "failed":
            await d.matrix.send(room_id, {
                "msgtype": "m.notice", "body": f"Le courriel n'a pas pu être remis : {reason}",
                "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}, txn_id("mss-f", event_id))
    except MatrixError as err:
        log.warning("receipt.show_failed", event_id=event_id, status=status, error=str(err)[:200])


async def apply(d: Deps, receipt: Receipt) -> None:
    out = None
    if receipt.envelope_id:
        out = await d.store.outgoing_by_id(receipt.envelope_id)
    if out is None and receipt.original_message_id:
        out = await d.store.outgoing_by_message_id(receipt.original_message_id)
    if out is None or out.source_event_id.startswith("mdn:"):
        log.info("receipt.unmatched", kind=receipt.kind, status=receipt.status)
        return
    d.metrics.receipts.labels(receipt.kind, receipt.status).inc()
    if receipt.status not in REACTIONS or not await d.store.record_receipt(out.id, receipt.kind, receipt.status):
        return
    await show(d, out.room_id, out.source_event_id, receipt.status, receipt.reason)
    log.info("receipt.shown", out_id=out.id, kind=receipt.kind, status=receipt.status)
