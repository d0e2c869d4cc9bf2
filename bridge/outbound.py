"""Room messages out: only a message that replies to, or is in the thread of, a puppet's mail is mailed,
to that professional, after the sharing decision (data minimisation). New threads asked with
`!mss ecrire` (decided by the bot) are handled here too; mails routed by hand from the quarantine are inbound
mail (bridge/hand_routing.py).
"""
from __future__ import annotations

import asyncio
import time
from typing import Protocol

import structlog

from bridge import corrections, documents_out, outbox, rcp_mail
from bridge.metrics import Metrics
from bridge.mail_out import OutAttachment, as_bytes, compose, message_id_for
from bridge.puppets import Puppets
from bridge.store import BridgeStore, PendingEvent
from liaison.sharing_facts import SharingStores
from liaison.stores.mail import MailStore, Request, Thread
from liaison.stores.rcp import RcpStore
from liaison.matrix import KeysMissing, MatrixError, PushedMessage, notice, redaction, txn_id
from liaison.matrix.content import strip_reply_fallback
from liaison.enforcement import decide_at

log = structlog.get_logger(__name__)

UNDECRYPTABLE_GIVE_UP_MS = 30_000   # an event whose room key has not come by then is told as not relayed
GIVE_UP_MS = 50_000                 # an event that keeps failing is told within the minute
ERROR_GIVE_UP = 5                   # … or after this many failed passes
NOT_RELAYED = "⚠️ non transmis"
DOCUMENT_FETCH_GIVE_UP = 10  # tries at fetching a document to send (!doc envoyer), 2 s to 60 s apart (~4 min)


class OutboundPorts(documents_out.PackPorts, outbox.LaterPorts, corrections.CorrectionPorts, Protocol):
    """What relaying room messages out uses: the pushed events, the mail threads, the sharing law asked again, who
    is ours (puppets), the queue; and packing a document (`documents_out.PackPorts`: settings, roster, clock…)."""

    @property
    def store(self) -> BridgeStore: ...

    @property
    def mail(self) -> MailStore: ...

    @property
    def puppets(self) -> Puppets: ...

    @property
    def sharing(self) -> SharingStores: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def rcp(self) -> RcpStore | None: ...


class Outbound:
    def __init__(self, d: OutboundPorts) -> None:
        self.d = d
        # !doc envoyer request -> (failed fetches, not before): as many as requests waiting, each given up in time
        self.fetch_failures: dict[str, tuple[int, float]] = {}

    async def run(self) -> None:
        while True:
            await self.d.store.new_events.wait(0.5)
            try:
                await self.process_pending()
                await self.new_threads()
                await rcp_mail.send_waiting(self.d, self.signer)
            except Exception:   # one bad event must not stop the relay; it stays pending
                log.exception("outbound.pass_failed")
                await asyncio.sleep(1)

    async def process_pending(self) -> None:
        """Each pushed event on its own: one that fails never holds back the next."""
        for p in await self.d.store.pending():
            event_id = str(p.event.get("event_id", ""))
            try:
                await self._process(p)
            except Exception as err:   # noqa: BLE001 — whatever breaks, the event is told, the others go on
                attempts = await self.d.store.event_attempt(event_id)
                if attempts < ERROR_GIVE_UP and self.d.clock.now_ms() - p.received_at < GIVE_UP_MS:
                    log.warning("outbound.event_failed", event_id=event_id, attempt=attempts, error=type(err).__name__)
                    continue
                log.exception("outbound.event_given_up", event_id=event_id, attempts=attempts)
                await self.not_relayed(p.event, "error", "une erreur interne l'a empêché de partir (le pont l'a "
                                                         f"essayé {attempts} fois) ; renvoyez-le")

    async def _process(self, p: PendingEvent) -> None:
        d, event = self.d, p.event
        event_id = event.get("event_id", "")
        if (deleted := redaction(event)) is not None:   # never encrypted: what it removes is in clear
            await d.store.finish_event(event_id, await corrections.redacted(self, deleted))
            return
        if self._ours(str(event.get("sender", ""))):
            await d.store.finish_event(event_id, "ignored")   # our own posts: nothing to decrypt
            return
        try:
            msg = d.matrix.read_pushed(event)
        except KeysMissing:
            await d.store.event_attempt(event_id)
            if self.d.clock.now_ms() - p.received_at >= UNDECRYPTABLE_GIVE_UP_MS:
                await self.not_relayed(event, "undecryptable", "le pont n'a pas reçu la clé de chiffrement de ce "
                                                               "message (appareil de l'expéditeur non à jour ?) ; "
                                                               "renvoyez-le")
            return
        state = "ignored" if msg is None else await self.relay(msg)
        if state == "retry":   # tried again at the next pass, told as not relayed if it never can be
            await d.store.event_attempt(event_id)
            if self.d.clock.now_ms() - p.received_at >= GIVE_UP_MS:
                await self.not_relayed(event, "thread_unknown", "le courriel auquel il répond n'a pas été "
                                                                "enregistré par le pont ; renvoyez-le")
            return
        await d.store.finish_event(event_id, state)

    async def not_relayed(self, event: dict, reason: str, sentence: str) -> None:
        """An event that will never be relayed: counted, logged, and when it answers a mail, the room is told."""
        d = self.d
        event_id, room_id = str(event.get("event_id", "")), str(event.get("room_id", ""))
        await d.store.finish_event(event_id, "failed" if reason == "error" else reason)
        relates = (event.get("content") or {}).get("m.relates_to") or {}   # in clear, even when encrypted
        targets = [(relates.get("m.in_reply_to") or {}).get("event_id"),
                   relates.get("event_id") if relates.get("rel_type") == "m.thread" else None]
        thread = None
        for target in targets:
            if isinstance(target, str) and (thread := await d.mail.thread_of_event(target)):
                break
        if thread is not None and thread.room_id != room_id:
            thread = None
        if thread is None and reason != "thread_unknown":
            log.info("outbound.not_relayed", event_id=event_id, reason=reason, answers_mail=False)
            return   # not an answer to a mail: nothing was to leave
        d.metrics.not_relayed.labels(reason).inc()
        log.warning("outbound.not_relayed", event_id=event_id, reason=reason, answers_mail=True,
                    pathway_id=thread.pathway_id if thread else None)
        try:
            await d.matrix.react(room_id, event_id, NOT_RELAYED, txn_id("mss-nr", event_id))
        except MatrixError as err:
            log.warning("outbound.notice_failed", room_id=room_id, error=str(err)[:200])
        root = thread.thread_root if thread else (targets[1] or event_id)
        to = f" à {thread.correspondent}" if thread else ""
        await self.notice(room_id, root, event_id, f"Message non transmis{to} : {sentence}.")

    def _ours(self, sender: str) -> bool:
        """The bridge, its puppets and the bot: never relayed."""
        d = self.d
        return sender in (d.matrix.user_id, d.settings.bot_user_id) or d.puppets.is_puppet(sender)

    async def relay(self, msg: PushedMessage) -> str:
        d = self.d
        typed = strip_reply_fallback(msg.body) if msg.reply_to else msg.body   # never the quoted message
        if self._ours(msg.sender) or msg.msgtype == "m.notice" or typed.lstrip().startswith(("!", "/")):
            return "ignored"
        if msg.replaces:   # an edit: its mail is corrected, or nothing (bridge/corrections.py)
            return await corrections.edited(self, msg)
        thread = None
        for target in (msg.reply_to, msg.thread_root):
            if target and (thread := await d.mail.thread_of_event(target)):
                break
        if thread is None:
            return await self._unknown_thread(msg)
        if thread.room_id != msg.room_id:
            return "ignored"
        pathway = await d.pathways.pathway(thread.pathway_id)
        address = thread.correspondent
        decided = await decide_at(d.sharing, "mail.out.reply", pathway=pathway, recipient=address, actor=msg.sender)
        if not decided.allowed:
            d.metrics.not_relayed.labels("refused").inc()
            await self.notice(msg.room_id, thread.thread_root, msg.event_id,
                              f"Message non transmis à {address} : {decided.sentence()}.")
            return "refused"
        attachments: tuple[OutAttachment, ...] = ()
        text = typed
        if msg.file:
            data = await d.matrix.download(msg.file, d.settings.max_mail_bytes)
            attachments = (OutAttachment(msg.body or "document", msg.mimetype or "application/octet-stream", data),)
            text = f"Document joint : {msg.body}"
        refs = tuple(await d.mail.thread_message_ids(thread.thread_root))
        await self.queue(source=msg.event_id, sender=msg.sender, pathway=pathway, room_id=msg.room_id,
                         address=address, subject=thread.subject or f"Parcours {pathway.code}", text=text,
                         thread_root=thread.thread_root, in_reply_to=thread.message_id, references=refs,
                         attachments=attachments)
        return "done"

    async def _unknown_thread(self, msg: PushedMessage) -> str:
        """No mail thread for what it answers: nothing to relay, unless it answers a puppet's message whose
        mail is still being posted (its thread is recorded just after): then it waits for it."""
        for target in {t for t in (msg.reply_to, msg.thread_root) if t}:
            origin = await self.d.matrix.event_origin(msg.room_id, target)
            if origin and self.d.puppets.is_puppet(origin[0]):
                log.info("outbound.waits_for_thread", event_id=msg.event_id)
                return "retry"
        return "ignored"

    async def queue(self, *, source: str, sender: str, pathway, room_id: str, address: str, subject: str, text: str,
                    thread_root: str, in_reply_to: str | None = None, references: tuple[str, ...] = (),
                    attachments: tuple[OutAttachment, ...] = (), extra_headers: dict[str, str] | None = None,
                    corrects: str | None = None, correction: str | None = None) -> None:
        d, s = self.d, self.d.settings
        name, signature = await self.signer(sender, pathway.code)
        mid = message_id_for(source, s.domain)
        mail = compose(from_address=s.address, from_display=f"{name} — {s.display_name}", to=address,
                       subject=subject, text=text, event_id=source, reply_to=s.subaddress(pathway.code),
                       in_reply_to=in_reply_to, references=references, signature=signature,
                       attachments=attachments, extra_headers=extra_headers, now=d.clock.now())
        await d.mail.add_thread(Thread(mid, pathway.id, room_id, source, thread_root, address, subject))
        if await d.store.enqueue(source_event_id=source, pathway_id=pathway.id, room_id=room_id, message_id=mid,
                                 recipient=address, raw=as_bytes(mail),
                                 give_up_at=outbox.later_ms(d, s.give_up_seconds), corrects=corrects,
                                 correction=correction):
            d.metrics.relayed_out.inc()

    async def signer(self, user_id: str, code: str) -> tuple[str, str]:
        """The clinician's name and profession, for the From display name and the signature."""
        member = await self.d.roster.get(user_id)
        structure = self.d.settings.structure or self.d.settings.display_name
        if member is None:
            return user_id, f"{user_id}\n{structure}\nEnvoyé depuis Liaison (parcours {code})"
        return member.label, (f"{member.display_name}, {member.profession_label}\n{member.structure or structure}\n"
                              f"Envoyé depuis Liaison (parcours {code})")

    async def notice(self, room_id: str, root: str, about: str, text: str, key: str = "") -> None:
        """A reply to the message it is about, in its thread; `key` (default: that message) makes it once."""
        try:
            await self.d.matrix.send(room_id, notice(text, thread_root=root, reply_to=about),
                                     txn_id("mss-notice", key or about))
        except MatrixError as err:
            log.warning("outbound.notice_failed", room_id=room_id, error=str(err)[:200])

    async def new_threads(self) -> None:
        """`!mss ecrire` and `!doc envoyer`: the command's event roots the thread; the answer by mail comes back
        in it."""
        d = self.d
        for r in await d.mail.waiting_requests():
            pathway = await d.pathways.pathway(r.pathway_id)
            decided = await decide_at(d.sharing, "doc.send" if r.document_id else "mail.out.write", pathway=pathway,
                                      recipient=r.address, actor=r.sender)
            if not decided.allowed:   # decided when typed, decided again now: what changed in between counts
                await self.notice(r.room_id, r.event_id, r.event_id,
                                  f"Rien n'est parti pour {r.address} : {decided.sentence()}.")
                await d.mail.finish_request(r.event_id, "refused")
                continue
            if r.document_id:
                await self.send_document(r, pathway)
                continue
            await self.queue(source=r.event_id, sender=r.sender, pathway=pathway, room_id=r.room_id,
                             address=r.address, subject=f"Parcours {pathway.code} : message de l'équipe de soins",
                             text=r.body, thread_root=r.event_id)
            await d.mail.finish_request(r.event_id)

    async def send_document(self, r: Request, pathway) -> None:
        """`!doc envoyer` (decided and traced by the bot): the document packed as IHE_XDM.ZIP, or the room told why
        not. A media repository that does not answer leaves the request for the next pass, a while."""
        d = self.d
        tries, not_before = self.fetch_failures.get(r.event_id, (0, 0.0))
        if time.monotonic() < not_before:
            return
        try:
            packed = await documents_out.pack(d, r, pathway)
        except (MatrixError, OSError) as err:
            tries += 1
            log.warning("outbound.document_fetch_failed", event_id=r.event_id, attempt=tries, error=str(err)[:200])
            if tries < DOCUMENT_FETCH_GIVE_UP:
                self.fetch_failures[r.event_id] = (tries, time.monotonic() + min(2 ** tries, 60))
                return
            await self._document_failed(r, "document.unreachable", "le fichier n'a pas pu être relu sur le serveur "
                                        "Matrix après plusieurs essais")
            return
        except documents_out.Unsendable as err:
            await self._document_failed(r, err.code, err.reason)
            return
        self.fetch_failures.pop(r.event_id, None)
        body = (r.body or "").strip()
        text = (f"{body}\n\nDocument joint (IHE_XDM.ZIP) : {packed.doctype.label}." if body
                else documents_out.default_text(packed))
        await self.queue(source=r.event_id, sender=r.sender, pathway=pathway, room_id=r.room_id, address=r.address,
                         subject=documents_out.subject(pathway, packed), text=text, thread_root=r.event_id,
                         attachments=(packed.attachment,), extra_headers=packed.headers)
        await d.mail.finish_request(r.event_id)
        log.info("outbound.document_queued", event_id=r.event_id, document_id=packed.document.id,
                 pathway_id=pathway.id, cda_headers=bool(packed.headers))

    async def _document_failed(self, r: Request, code: str, reason: str) -> None:
        self.fetch_failures.pop(r.event_id, None)
        await self.notice(r.room_id, r.event_id, r.event_id, f"Document non envoyé à {r.address} : {reason}. "
                                                             f"Rien n'est parti (réf. {code}).")
        await self.d.mail.finish_request(r.event_id, "failed")
        log.warning("outbound.document_failed", event_id=r.event_id, document_id=r.document_id, code=code)
