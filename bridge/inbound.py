"""Mail in: IMAP IDLE on the applicative mailbox, each mail routed to its pathway room or quarantined.

Store first, acknowledge after: a mail leaves the inbox (moved to « Traités ») only once its
Matrix events are confirmed and its row says so; it is deduped on (UIDVALIDITY, UID),
Message-ID and content hash, so a crash anywhere replays it without posting it twice.
"""
from __future__ import annotations

import asyncio
import re
import secrets
import time

import structlog

from bridge import receipts_in
from bridge.deps import Deps
from bridge.homeserver import HomeserverError
from bridge.imap import Fetched, ImapClient, ImapError
from bridge.mail_guard import without_mime_fields
from bridge.mail_in import InboundMail, MailLimits, MailRejected
from bridge.parse_pool import MailParser
from bridge.posting import post_mail
from bridge.puppets import ShutOut
from bridge.routing import Lookup, Quarantine, Route, ref, route, subaddress_code
from bridge.xdm import XdmError, XdmPackage, xdm_of
from liaison import memory
from liaison.mail_store import QUARANTINE_ROOM
from liaison.matrix import MatrixError, notice, txn_id
from liaison.enforcement import decide_at

log = structlog.get_logger(__name__)

BACKOFF = (1, 2, 5, 10, 30, 60)
CONCURRENCY = 8   # threads handled at once
BATCH = 32        # mails fetched at once: a burst does not make the next mail wait behind 200 others
POISON_AFTER = 5  # failed passes before a mail that keeps breaking the bridge goes to quarantine
TRIM_AFTER_BYTES = 1024 * 1024
_THREAD = re.compile(rb"^(references|in-reply-to|message-id):[ \t]*(?:\r?\n[ \t]+)*(<[^>\r\n]{1,250}>)", re.I | re.M)


def thread_key(raw: bytes, uid: int) -> bytes:
    """The mail's thread, from its raw headers (parsing comes later): the first Message-ID of References,
    else In-Reply-To, else its own. Mails of one thread are handled in order (a reply after its letter)."""
    head = raw[:65536].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = {m.group(1).lower(): m.group(2) for m in reversed(list(_THREAD.finditer(head)))}
    for name in (b"references", b"in-reply-to", b"message-id"):
        if name in found:
            return found[name]
    return b"uid:%d" % uid


class Inbound:
    def __init__(self, d: Deps, imap: ImapClient, mailbox: str, poll_seconds: int) -> None:
        self.d, self.imap, self.mailbox, self.poll = d, imap, mailbox, poll_seconds
        self.members_checked: set[tuple[str, str]] = set()   # (puppet, room) read during this batch
        self.limits = MailLimits(max_bytes=d.settings.max_mail_bytes, max_attachments=d.settings.max_attachments)
        self.parser = MailParser(self.limits, d.settings.server_name)   # off the event loop, with a deadline

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self.imap.connect()
                failures = 0
                log.info("imap.connected", uidvalidity=self.imap.uidvalidity)
                while True:
                    await self.process_batch(await self.imap.fetch_all(limit=BATCH))
                    await self.imap.wait_for_change(self.poll)
            except (ImapError, OSError, asyncio.TimeoutError) as err:
                delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
                failures += 1
                log.warning("imap.failed", error=str(err)[:200], retry_in=delay)
                await self.imap.close()
                await asyncio.sleep(delay)

    async def process_batch(self, batch: list[Fetched]) -> None:
        """Mails of different threads at once, one thread's mails in their order; they leave the inbox
        together, once each has its final state in the database."""
        by_thread: dict[bytes, list[Fetched]] = {}
        for f in batch:
            by_thread.setdefault(thread_key(f.raw, f.uid), []).append(f)
        self.members_checked = set()
        slots = asyncio.Semaphore(CONCURRENCY)
        done: list[int] = []

        async def in_order(mails: list[Fetched]) -> None:
            async with slots:
                for f in mails:
                    if not await self.process(f):
                        return   # the next ones of this sender wait with it
                    done.append(f.uid)
        await asyncio.gather(*(in_order(m) for m in by_thread.values()))
        await self.imap.move_to_done(*done)

    async def process(self, f: Fetched) -> bool:
        """True once the mail has its final state; False to try it again later (homeserver away…).

        Each pass is counted in the database before it begins and given back when it ends in « later »: a mail
        that broke the bridge POISON_AFTER times, by an error or by the bridge dying on it, is set aside (quarantine)
        instead of being read once more, also after a restart."""
        t0 = time.monotonic()
        mail_id, passes = None, 0
        try:
            known = await self.d.store.mail_state(self.mailbox, f.uidvalidity, f.uid)
            if known and known[1] != "received":
                return True   # handled before a crash, not yet moved
            mail_id = known[0] if known else await self.d.store.begin_mail(self.mailbox, f.uidvalidity, f.uid)
            passes = await self.d.store.count_attempt(mail_id)
            if passes > POISON_AFTER:   # the last passes ended with the bridge itself: not one more
                return await self._set_aside(f, secrets.token_hex(4), passes - 1)
            state = await (self.handle(mail_id, f.raw) if f.complete else self._too_big(mail_id, f))
        except (MatrixError, HomeserverError, OSError, asyncio.TimeoutError) as err:
            log.warning("mail.in_retry_later", uid=f.uid, error=str(err)[:200])
            await self._uncount(mail_id)
            return False
        except asyncio.CancelledError:   # the bridge stops: this pass is not the mail's fault
            await asyncio.shield(self._uncount(mail_id))
            raise
        except Exception:   # a mail that breaks the bridge must not stop the others, nor be lost
            ref = secrets.token_hex(4)
            log.exception("mail.in_failed", uid=f.uid, ref=ref, passes=passes)
            if mail_id is None or passes < POISON_AFTER:
                return False
            return await self._set_aside(f, ref, passes)
        if state == "posted":
            self.d.metrics.inbound_latency.observe(time.monotonic() - t0)
        log.info("mail.in", mail_id=mail_id, uid=f.uid, state=state, ms=round((time.monotonic() - t0) * 1000))
        if len(f.raw) > TRIM_AFTER_BYTES:   # its copies (fetch, parse, quarantine) are freed: hand the pages back
            memory.trim(collect=False)
        return True

    async def _uncount(self, mail_id: str | None) -> None:
        if mail_id is None:
            return
        try:
            await self.d.store.uncount_attempt(mail_id)
        except Exception:   # the database away too: the pass stays counted, the mail is retried all the same
            log.warning("mail.in_uncount_failed", mail_id=mail_id)

    async def _set_aside(self, f: Fetched, ref: str, passes: int) -> bool:
        log.warning("mail.in_poison", uid=f.uid, ref=ref, passes=passes)
        try:
            mail_id = await self.d.store.begin_mail(self.mailbox, f.uidvalidity, f.uid)
            await self.quarantine(mail_id, f.raw, Quarantine("internal", "Liaison n'a pas pu traiter ce courriel "
                                                             f"(erreur interne, réf. {ref})"), "", False)
            return True
        except Exception:
            log.exception("mail.in_set_aside_failed", uid=f.uid, ref=ref)
            return False

    async def _too_big(self, mail_id: str, f: Fetched) -> str:
        """Over max_mail_bytes by its announced size: never fetched whole; set aside from its header block alone,
        the sender named when the header says who it is (and the operator authenticated that sender)."""
        sender = ""
        try:
            head = await self.parser.parse(without_mime_fields(f.raw))
            sender = head.from_address if sender_mismatch(head) is None else ""
        except MailRejected:
            pass
        mib, limit = -(-f.size // 2**20), self.limits.max_bytes // 2**20
        reason = (f"le message ({mib} Mo) dépasse la taille maximale acceptée par Liaison ({limit} Mo) ; demandez à "
                  "l'expéditeur d'envoyer les pièces jointes en plusieurs messages")
        return await self.quarantine(mail_id, f.raw, Quarantine("too_big", reason), sender,
                                     bool(sender) and self.d.trusted.trusts(sender))

    async def handle(self, mail_id: str, raw: bytes) -> str:
        d = self.d
        try:
            mail = await self.parser.parse(raw)
        except MailRejected as err:
            return await self.quarantine(mail_id, raw, Quarantine(err.code, err.reason), "", False)
        trusted = d.trusted.trusts(mail.from_address)
        if (mismatch := sender_mismatch(mail)) is not None:   # never posted under someone else's name
            return await self.quarantine(mail_id, raw, mismatch, mail.from_address, trusted)
        if await d.store.duplicate_of(mail_id, mail.message_id, mail.content_hash, mail.from_address):
            d.metrics.duplicates.inc()
            await d.store.finish_mail(mail_id, "duplicate")
            return "duplicate"
        if mail.liaison_loop:
            await d.store.finish_mail(mail_id, "ignored", reason="loop")
            return "ignored"
        if mail.receipt is not None:   # listened to only when it cites our mail and comes from who may report on it
            refused = await receipts_in.apply(d, mail.receipt, mail.from_address)
            state = "ignored" if refused == "foreign_sender" else "receipt"
            await d.store.finish_mail(mail_id, state, reason=refused and f"receipt.{refused}")
            return state
        try:
            xdm, refused = xdm_of(mail), None
        except XdmError as err:
            xdm, refused = None, Quarantine(err.code, err.reason)
        if refused is not None:   # the parsed mail (its archive: up to the mail's size again) is not kept meanwhile
            sender, mail = mail.from_address, None
            return await self.quarantine(mail_id, raw, refused, sender, trusted)
        where = route(await self.lookup(mail, xdm, trusted))
        if isinstance(where, Quarantine):
            return await self.quarantine(mail_id, raw, where, mail.from_address, trusted)
        return await self.deliver(mail_id, raw, mail, xdm, where, trusted)

    async def deliver(self, mail_id: str, raw: bytes, mail: InboundMail, xdm: XdmPackage | None, where: Route,
                      trusted: bool) -> str:
        d = self.d
        pathway = await d.pathways.pathway(where.pathway.id)
        decided = await decide_at(d, "mail.in.post", pathway=pathway, recipient=mail.from_address,
                                  actor=mail.from_address, trusted_domain=trusted)
        if not decided.allowed:   # an objection: never posted, kept in quarantine with the rule named
            return await self.quarantine(mail_id, raw, Quarantine(decided.decision.rule, decided.sentence()),
                                         mail.from_address, trusted)
        try:
            event_id = await post_mail(d, mail_id=mail_id, mail=mail, xdm=xdm, route=where,
                                       members_checked=self.members_checked)
        except ShutOut as out:   # a member removed its correspondent from the room: their will, not a failure
            return await self.quarantine(mail_id, raw, Quarantine("puppet_banned" if out.banned else "puppet_removed",
                                                                  out.sentence()), mail.from_address, trusted)
        await self.answer_mdn(mail_id, mail)   # owed before it counts as posted: a read receipt may come at once
        await d.store.finish_mail(mail_id, "posted", pathway_id=pathway.id, event_id=event_id)
        d.metrics.relayed_in.inc()
        return "posted"

    async def lookup(self, mail: InboundMail, xdm: XdmPackage | None, trusted: bool) -> Lookup:
        d = self.d
        ids = [i for i in (mail.in_reply_to, *reversed(mail.references)) if i]
        thread = await d.mail.thread_of_message(ids) if ids else None
        foreign = bool(thread) and mail.from_address.lower() not in await d.mail.thread_parties(thread.thread_root)
        if foreign:   # quoting a thread's Message-IDs (they travel in every References) makes no one a party
            log.info("mail.in_foreign_thread", pathway_id=thread.pathway_id)
            thread = None
        thread_ref = (ref(await d.pathways.pathway(thread.pathway_id)), thread.thread_root) if thread else None
        patient_id, unknown, pathways = None, False, ()
        if xdm is not None and xdm.documents:
            patient = await d.pathways.patient_by_ins(xdm.documents[0].patient_ins)
            if patient is None:
                unknown = True
            else:
                patient_id = patient.id
                pathways = tuple(ref(p) for p in await d.pathways.open_for_patient(patient.id))
        code = subaddress_code(mail.to, d.settings.address)
        sub = await d.pathways.by_code(code) if code else None
        return Lookup(trusted=trusted, thread=thread_ref, foreign_thread=foreign, xdm_patient=patient_id,
                      xdm_ins_unknown=unknown,
                      patient_pathways=pathways, subaddress_code=code, subaddress_pathway=ref(sub) if sub else None)

    async def quarantine(self, mail_id: str, raw: bytes, q: Quarantine, sender: str, trusted: bool) -> str:
        d = self.d
        number = await d.mail.quarantine(mail_id, reason_code=q.code, reason=q.reason, from_address=sender,
                                         trusted=trusted, raw=raw)
        await d.store.finish_mail(mail_id, "quarantined", reason=q.code)
        d.metrics.quarantined.labels(q.code).inc()
        await notify_quarantine(d, number, q, sender)
        return "quarantined"

    async def answer_mdn(self, mail_id: str, mail: InboundMail) -> None:
        """A read receipt asked by a professional is owed to the sender (From) only, and sent once a member of the
        room has actually read the mail (bridge/read_receipts.py), never before: a receipt reveals nothing else."""
        if mail.mdn_to and not mail.auto_submitted and mail.message_id:
            await self.d.store.want_mdn(mail_id, mail.from_address)


def sender_mismatch(mail: InboundMail) -> Quarantine | None:
    """From must be the sender the MSSanté operator authenticated: the envelope sender the delivery recorded
    (Return-Path) and the sender of every `pass` of an Authentication-Results. No Return-Path is no mismatch
    (a delivery that does not record it); the null sender `<>` is normal for a receipt (DSN, MDN) only, whose
    other identities then need only share its domain. A bare domain (SPF, DMARC) is compared to From's."""
    claimed = mail.from_address
    null_receipt = mail.receipt is not None and mail.envelope_sender == ""
    authenticated = [] if mail.envelope_sender is None or null_receipt else [mail.envelope_sender]
    authenticated += [v for r in mail.auth_results if r.result == "pass" for v in (r.mailfrom, r.header_from) if v]
    for who in authenticated:
        same_domain = who.rpartition("@")[2] == claimed.rpartition("@")[2]
        if who == claimed or (same_domain and ("@" not in who or null_receipt)):
            continue
        return Quarantine("identity_mismatch", f"l'expéditeur affiché ({claimed}) n'est pas celui que la messagerie "
                                               f"MSSanté a authentifié ({who or 'expéditeur vide'}) : le courriel "
                                               "pourrait se faire passer pour un autre correspondant")
    return None


async def notify_quarantine(d: Deps, number: int, q: Quarantine, sender: str) -> None:
    """Tell the coordination in the quarantine room (encrypted); the mail stays there until decided."""
    room = await d.mail.setting(QUARANTINE_ROOM)
    if not room:
        log.warning("quarantine.no_room", number=number)
        return
    text = (f"Courriel n° {number} mis en quarantaine : {q.reason.rstrip('.')}.\nExpéditeur : {sender or 'illisible'}.\n"
            f"Pour le déposer dans un parcours : !mss router {number} <code du parcours> ; "
            f"pour l'écarter : !mss rejeter {number}. Liste : !mss quarantaine.")
    try:
        event_id = await d.matrix.send(room, notice(text), txn_id("mss-q", str(number)))
        await d.mail.set_quarantine_notice(number, event_id)
    except MatrixError as err:
        log.warning("quarantine.notice_failed", number=number, error=str(err)[:200])
