"""The durable outbox: each mail is sent from the database, retried with exponential backoff
(1 min … 1 h by default) and given up after a configurable delay (4 days by default).

The room sees it: a reaction when sent, a notice « nouvel essai » at the first delay, a notice
with the reason when it fails for good.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Protocol

import structlog

from bridge.deps import BridgeSettings
from bridge.metrics import Metrics
from bridge.receipts_in import ShowPorts, show
from bridge.smtp import SmtpClient, SmtpError
from bridge.store import BridgeStore, Outgoing
from liaison.clock import Clock
from liaison.sharing_facts import SharingStores
from liaison.stores.pathways import PathwayStore
from liaison.enforcement import decide_at
from liaison.matrix import MatrixError, notice as _notice, txn_id

log = structlog.get_logger(__name__)


class LaterPorts(Protocol):
    """What `later_ms` reads: the bridge's clock."""

    @property
    def clock(self) -> Clock: ...


class OutboxPorts(LaterPorts, ShowPorts, Protocol):
    """What sending the queued mails uses: the queue, SMTP, the sharing law asked again, the room told."""

    @property
    def settings(self) -> BridgeSettings: ...

    @property
    def store(self) -> BridgeStore: ...

    @property
    def pathways(self) -> PathwayStore: ...

    @property
    def sharing(self) -> SharingStores: ...

    @property
    def smtp(self) -> SmtpClient: ...

    @property
    def metrics(self) -> Metrics: ...


def later_ms(d: LaterPorts, seconds: float) -> int:
    """A moment `seconds` from now on the bridge's clock, in ms."""
    return d.clock.now_ms() + int(seconds * 1000)


def backoff(attempts: int, first: int = 60, most: int = 3600) -> int:
    """Seconds before the next try: first, 2×first, 4×first… up to most."""
    return min(most, first * 2 ** min(attempts, 20))


def _when(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


async def run(d: OutboxPorts) -> None:
    while True:
        try:
            for due in await d.store.due(d.clock.now_ms()):
                async with d.store.claimed(due.id):   # read again once claimed: edited or withdrawn meanwhile
                    out = await d.store.outgoing_by_id(due.id)
                    if out is not None and out.state == "queued":
                        await send_one(d, out)
            next_at = await d.store.next_due_at()
        except Exception:   # the database or the homeserver went away: the rows wait
            log.exception("outbox.pass_failed")
            next_at = later_ms(d, 2)
        wait = 30.0 if next_at is None else max(0.02, min(30.0, (next_at - d.clock.now_ms()) / 1000))
        await d.store.new_mail_out.wait(wait)


async def send_one(d: OutboxPorts, out: Outgoing) -> None:
    s = d.settings
    from_room = not out.source_event_id.startswith(("mdn:", "rcp:"))   # a receipt, an RCP mail: no room event
    if out.pathway_id and not await _still_allowed(d, out):
        return
    try:
        await d.smtp.send(out.raw, sender=s.address, recipients=[out.recipient], envid=out.id)
    except (SmtpError, OSError, asyncio.TimeoutError) as err:
        permanent = isinstance(err, SmtpError) and err.permanent
        await _failed(d, out, str(err), permanent, from_room)
        return
    await d.store.mark_sent(out.id)
    log.info("outbox.sent", out_id=out.id, attempts=out.attempts + 1)
    if from_room:
        await show(d, out.room_id, out.source_event_id, "sent")


async def _still_allowed(d: OutboxPorts, out: Outgoing) -> bool:
    """Decided again as it leaves (it may have waited days): a mail whose decision turned is cancelled, never sent."""
    assert out.pathway_id, "asked only for a mail sent from a pathway"
    pathway = await d.pathways.pathway(out.pathway_id)
    receipt = out.source_event_id.startswith("mdn:")
    decided = await decide_at(d.sharing, "mail.receipt" if receipt else "mail.out.send", pathway=pathway,
                              recipient=out.recipient, actor=d.matrix.user_id)
    if decided.allowed:
        return True
    await d.store.mark_failed(out.id, f"annulé : {decided.decision.rule}", "cancelled")
    log.warning("outbox.cancelled", out_id=out.id, rule=decided.decision.rule, trace=decided.trace)
    if out.room_id and not out.source_event_id.startswith(("mdn:", "rcp:")):
        try:
            await d.matrix.react(out.room_id, out.source_event_id, "⚠️ annulé", txn_id("mss-cancel-r", out.id))
            await d.matrix.send(out.room_id, _notice(f"Courriel pour {out.recipient} annulé avant son envoi : "
                                                     f"{decided.sentence()}. Rien n'est parti.",
                                                     reply_to=out.source_event_id), txn_id("mss-cancel", out.id))
        except MatrixError as err:
            log.warning("outbox.notice_failed", out_id=out.id, error=str(err)[:200])
    return False


async def _failed(d: OutboxPorts, out: Outgoing, error: str, permanent: bool, from_room: bool) -> None:
    s = d.settings
    if permanent or d.clock.now_ms() >= out.give_up_at:
        reason = error if permanent else f"abandonné après {s.give_up_seconds // 3600} h d'échecs ({error})"
        await d.store.mark_failed(out.id, reason, "failed" if permanent else "abandoned")
        log.warning("outbox.failed", out_id=out.id, permanent=permanent, attempts=out.attempts + 1)
        if from_room:
            await show(d, out.room_id, out.source_event_id, "failed", reason)
        return
    delay = backoff(out.attempts, s.retry_first_seconds, s.retry_max_seconds)
    notice = None
    if from_room and out.retry_notice is None:
        until = datetime.fromtimestamp(out.give_up_at / 1000, tz=timezone.utc).astimezone()
        text = (f"Envoi du courriel à {out.recipient} retardé ({error}) : nouvel essai dans {_when(delay)}, "
                f"puis de plus en plus espacés jusqu'au {until:%d/%m/%Y %H:%M}.")
        try:
            notice = await d.matrix.send(out.room_id, _notice(text, reply_to=out.source_event_id),
                                         txn_id("mss-retry", out.id))
        except MatrixError as err:
            log.warning("outbox.notice_failed", out_id=out.id, error=str(err)[:200])
    await d.store.mark_retry(out.id, error=error, next_at=later_ms(d, delay), notice=notice)
    d.metrics.retries.inc()
    log.info("outbox.retry", out_id=out.id, attempts=out.attempts + 1, delay_s=delay)
