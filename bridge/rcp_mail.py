"""Mail for an RCP's external participants (bot/rcp_agenda.py, bot/rcp_minutes.py hand it over in `rcp_mail`).

The invitation names the meeting and its cases by pathway code only, with its `.ics`: it leaves without a pathway.
A case's agenda item or minutes leaves with its pathway: decided again here (`rcp.mail`) as it is queued, and once
more by the outbox as it is sent (`mail.out.send`); its reply, addressed to the pathway's sub-address, comes back in
the thread of the patient room's message it answers. Refused, it is dropped, and the refusal traced.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from bridge import outbox
from bridge.deps import BridgeSettings
from bridge.metrics import Metrics
from bridge.store import BridgeStore
from bridge.mail_out import OutAttachment, as_bytes, compose, message_id_for
from liaison.enforcement import decide_at
from liaison.sharing_facts import SharingStores
from liaison.stores.mail import MailStore, Thread
from liaison.stores.pathways import PathwayStore
from liaison.stores.rcp import RcpMail, RcpStore

log = structlog.get_logger(__name__)


Signer = Callable[[str, str], Awaitable[tuple[str, str]]]   # (account, code) -> (From name, signature)


class RcpMailPorts(outbox.LaterPorts, Protocol):
    """What queuing an RCP mail uses: the meetings' mail, the pathways, the mail threads, the law, the queue."""
    @property
    def settings(self) -> BridgeSettings: ...
    @property
    def store(self) -> BridgeStore: ...
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def rcp(self) -> RcpStore | None: ...
    @property
    def mail(self) -> MailStore: ...
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def metrics(self) -> Metrics: ...


async def send_waiting(d: RcpMailPorts, signer: Signer) -> int:
    """Queue every waiting RCP mail the law still allows; how many were queued. One bad mail never stops the rest."""
    if d.rcp is None:
        return 0
    queued = 0
    for m in await d.rcp.waiting_mail():
        try:
            state = await _one(d, signer, m)
        except ValueError as err:   # an address or a header compose refuses
            log.warning("rcp_mail.unsendable", mail_id=m.id, error=str(err)[:200])
            state = "failed"
        await d.rcp.mail_done(m.id, state)
        queued += state == "queued"
    return queued


async def _one(d: RcpMailPorts, signer: Signer, m: RcpMail) -> str:
    s = d.settings
    pathway = await d.pathways.pathway(m.pathway_id) if m.pathway_id else None
    if pathway is not None:
        if pathway.status != "open":
            return "refused"
        decided = await decide_at(d.sharing, "rcp.mail", pathway=pathway, recipient=m.address, actor=m.sender)
        if not decided.allowed:
            log.info("rcp_mail.refused", mail_id=m.id, rule=decided.decision.rule, trace=decided.trace)
            return "refused"
    source = f"rcp:{m.id}"
    name, signature = await signer(m.sender, pathway.code if pathway else "RCP")
    mid = message_id_for(source, s.domain)
    attachments = (OutAttachment(f"invitation-{m.rcp_id[:8]}.ics", "text/calendar", m.ics.encode()),) if m.ics else ()
    mail = compose(from_address=s.address, from_display=f"{name} — {s.display_name}", to=m.address,
                   subject=m.subject, text=m.body, event_id=source,
                   reply_to=s.subaddress(pathway.code) if pathway else None, signature=signature,
                   attachments=attachments, request_mdn=False, now=d.clock.now())
    if pathway is not None and m.room_id and m.event_id:
        await d.mail.add_thread(Thread(mid, pathway.id, m.room_id, source, m.event_id, m.address, m.subject))
    if await d.store.enqueue(source_event_id=source, pathway_id=pathway.id if pathway else None,
                             room_id=m.room_id or "", message_id=mid, recipient=m.address, raw=as_bytes(mail),
                             give_up_at=outbox.later_ms(d, s.give_up_seconds)):
        d.metrics.relayed_out.inc()
    log.info("rcp_mail.queued", mail_id=m.id, kind=m.kind, with_pathway=pathway is not None)
    return "queued"
