"""Corrections travel: a room message edited or deleted after it was relayed by mail.

The mail it became (`mail_out`, found by its source event) decides what happens:
- still queued: an edit gives it the new text (decided again, `mail.out.correct`), a deletion withdraws it and the
  room is told (⚠️), nothing leaves;
- already sent: an edit sends a correction in the same mail thread, « Correction du message du … : » and the new text
  verbatim (`mail.out.correct`); a deletion sends « Message retiré par son auteur (envoyé le …) », never the old text
  (`mail.out.retract`). A correction still queued is replaced by a later edit (the latest text wins) and withdrawn
  by a deletion.
Only the author's edit counts (Matrix ignores an edit by anyone else); an edit or deletion of a message that was
never mailed does nothing. Each correction is a mail of its own, deduplicated by its event id like any other.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol

import structlog

from bridge.mail_out import OutAttachment, retext
from bridge.ports import BridgeMatrix
from bridge.store import BridgeStore, Outgoing
from liaison.clock import Clock
from liaison.enforcement import decide_at
from liaison.matrix import MatrixError, PushedMessage, Redaction, txn_id
from liaison.sharing_facts import SharingStores
from liaison.stores.mail import MailStore, Thread
from liaison.stores.pathways import PathwayStore

log = structlog.get_logger(__name__)

SENT_STATES = ("sent", "delivered", "read")   # it reached (or left for) the correspondent
TEXT_TYPES = ("m.text", "m.emote")
WITHDRAWN = "⚠️ retiré"


class CorrectionPorts(Protocol):
    """What following an edit or a deletion reads: the outbox, the mail threads, the law asked again, the room."""

    @property
    def store(self) -> BridgeStore: ...

    @property
    def mail(self) -> MailStore: ...

    @property
    def pathways(self) -> PathwayStore: ...

    @property
    def sharing(self) -> SharingStores: ...

    @property
    def matrix(self) -> BridgeMatrix: ...

    @property
    def clock(self) -> Clock: ...


class Relay(Protocol):
    """What a correction is sent with: the relay out's queue and its notices (bridge/outbound.py)."""

    @property
    def d(self) -> CorrectionPorts: ...

    async def queue(self, *, source: str, sender: str, pathway, room_id: str, address: str, subject: str, text: str,
                    thread_root: str, in_reply_to: str | None = None, references: tuple[str, ...] = (),
                    attachments: tuple[OutAttachment, ...] = (), extra_headers: dict[str, str] | None = None,
                    corrects: str | None = None, correction: str | None = None) -> None: ...

    async def notice(self, room_id: str, root: str, about: str, text: str, key: str = "") -> None: ...


def when(ms: int) -> str:
    """« 06/12/2026 à 15:42 », local time."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone().strftime("%d/%m/%Y à %H:%M")


def correction_text(sent_ms: int, text: str) -> str:
    return f"Correction du message du {when(sent_ms)} :\n\n{text}"


def retract_text(sent_ms: int, by_author: bool) -> str:
    who = "son auteur" if by_author else "un membre de l'équipe de soins"
    return f"Message retiré par {who} (envoyé le {when(sent_ms)})."


def _base_subject(subject: str) -> str:
    while subject[:3].lower() == "re:":
        subject = subject[3:].lstrip()
    return subject


async def _mailed(d: CorrectionPorts, event_id: str, room_id: str) -> tuple[Outgoing, Thread] | None:
    """The mail a room event became, and its thread; None when it never was one (or is itself a correction)."""
    out = await d.store.outgoing_by_event(event_id)
    if out is None or out.corrects is not None or not out.pathway_id or out.room_id != room_id:
        return None
    thread = await d.mail.thread_of_message([out.message_id])
    return (out, thread) if thread is not None else None


async def edited(r: Relay, msg: PushedMessage) -> str:
    """An edit (`m.replace`) of a message: the state of its mail decides (see the module's docstring)."""
    d = r.d
    assert msg.replaces
    found = await _mailed(d, msg.replaces, msg.room_id)
    if found is None:
        return "ignored"
    if await d.store.outgoing_by_event(msg.event_id) is not None:
        return "done"   # this edit was handled before (its correction is queued or sent)
    out, thread = found
    origin = await d.matrix.event_origin(msg.room_id, msg.replaces)
    if origin is None or origin[0] != msg.sender or msg.msgtype not in TEXT_TYPES:
        log.info("corrections.edit_ignored", event_id=msg.event_id, out_id=out.id,
                 reason="not_author" if origin is None or origin[0] != msg.sender else "not_text")
        return "ignored"
    pathway = await d.pathways.pathway(out.pathway_id or "")
    decided = await decide_at(d.sharing, "mail.out.correct", pathway=pathway, recipient=out.recipient,
                              actor=msg.sender)
    if not decided.allowed:
        await r.notice(msg.room_id, thread.thread_root, msg.replaces,
                       f"Correction non transmise à {out.recipient} : {decided.sentence()}.", key=msg.event_id)
        return "refused"
    if out.state == "queued":
        raw = retext(out.raw, msg.body, d.clock.now()) if out.raw else None
        if raw is None:
            log.info("corrections.edit_ignored", event_id=msg.event_id, out_id=out.id, reason="attachment")
            return "ignored"
        if await d.store.replace_queued(out.id, raw):
            log.info("corrections.queued_replaced", event_id=msg.event_id, out_id=out.id)
            return "done"
        out = await d.store.outgoing_by_id(out.id) or out   # it left meanwhile: a correction follows it
    if out.state not in SENT_STATES:
        log.info("corrections.edit_ignored", event_id=msg.event_id, out_id=out.id, reason=out.state)
        return "ignored"   # cancelled, withdrawn or failed: nothing reached the correspondent
    text = correction_text(origin[1] or out.sent_at or 0, msg.body)
    for waiting in reversed(await d.store.corrections_of(out.source_event_id, "edit")):
        if waiting.state != "queued":
            continue
        raw = retext(waiting.raw, text, d.clock.now()) if waiting.raw else None
        if raw is not None and await d.store.replace_queued(waiting.id, raw):
            log.info("corrections.correction_replaced", event_id=msg.event_id, out_id=waiting.id)
            return "done"   # the correction still waiting carries the latest text
    refs = tuple(await d.mail.thread_message_ids(thread.thread_root))
    await r.queue(source=msg.event_id, sender=msg.sender, pathway=pathway, room_id=msg.room_id,
                  address=out.recipient, subject=f"Correction : {_base_subject(thread.subject)}", text=text,
                  thread_root=thread.thread_root, in_reply_to=out.message_id, references=refs,
                  corrects=out.source_event_id, correction="edit")
    log.info("corrections.correction_queued", event_id=msg.event_id, out_id=out.id)
    return "done"


async def redacted(r: Relay, red: Redaction) -> str:
    """A deletion: a queued mail is withdrawn (the room told), a sent one followed by « message retiré »."""
    d = r.d
    own = await d.store.outgoing_by_event(red.redacts)
    if own is not None and own.corrects is not None:   # the edit itself deleted: its correction, if still queued
        withdrawn = own.state == "queued" and await d.store.withdraw(own.id)
        return "done" if withdrawn else "ignored"
    found = await _mailed(d, red.redacts, red.room_id)
    if found is None:
        return "ignored"
    out, thread = found
    for waiting in await d.store.corrections_of(out.source_event_id, "edit"):
        if waiting.state == "queued":
            await d.store.withdraw(waiting.id)
    if out.state == "queued" and await d.store.withdraw(out.id):
        log.info("corrections.withdrawn", event_id=red.event_id, out_id=out.id)
        await _tell_withdrawn(r, red, out, thread)
        return "done"
    out = await d.store.outgoing_by_id(out.id) or out
    if out.state not in SENT_STATES:
        return "ignored"
    if [n for n in await d.store.corrections_of(out.source_event_id, "retract") if n.state != "withdrawn"]:
        return "ignored"   # already said withdrawn (a second deletion of it)
    origin = await d.matrix.event_origin(red.room_id, red.redacts)
    pathway = await d.pathways.pathway(out.pathway_id or "")
    decided = await decide_at(d.sharing, "mail.out.retract", pathway=pathway, recipient=out.recipient,
                              actor=red.sender)
    if not decided.allowed:
        await r.notice(red.room_id, thread.thread_root, red.redacts,
                       f"L'avis de retrait n'est pas transmis à {out.recipient} : {decided.sentence()}.",
                       key=red.event_id)
        return "refused"
    refs = tuple(await d.mail.thread_message_ids(thread.thread_root))
    await r.queue(source=red.event_id, sender=red.sender, pathway=pathway, room_id=red.room_id,
                  address=out.recipient, subject=f"Message retiré : {_base_subject(thread.subject)}",
                  text=retract_text(out.sent_at or (origin[1] if origin else 0),
                                    origin is None or origin[0] == red.sender),
                  thread_root=thread.thread_root, in_reply_to=out.message_id, references=refs,
                  corrects=out.source_event_id, correction="retract")
    log.info("corrections.retract_queued", event_id=red.event_id, out_id=out.id)
    return "done"


async def _tell_withdrawn(r: Relay, red: Redaction, out: Outgoing, thread: Thread) -> None:
    """⚠️ on the deleted message and a notice in its thread, as for a message not relayed."""
    try:
        await r.d.matrix.react(red.room_id, red.redacts, WITHDRAWN, txn_id("mss-withdrawn-r", out.id))
    except MatrixError as err:
        log.warning("corrections.notice_failed", out_id=out.id, error=str(err)[:200])
    await r.notice(red.room_id, thread.thread_root, red.redacts,
                   f"⚠️ Courriel pour {out.recipient} retiré de la boîte d'envoi : le message a été supprimé avant "
                   f"son envoi. Rien n'est parti.", key=red.event_id)
