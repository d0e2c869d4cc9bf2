"""Mail in: IMAP IDLE on the applicative mailbox, each mail routed to its pathway room or quarantined.

This module holds the loop: batches (one thread's mails in order), the durable poison counter, mails too big
to fetch. What happens to one mail is bridge/stages/ (parse, judge, route, decide, post, acknowledge).

Store first, acknowledge after: a mail leaves the inbox (moved to « Traités ») only once its
Matrix events are confirmed and its row says so; it is deduped on (UIDVALIDITY, UID),
Message-ID and content hash, so a crash anywhere replays it without posting it twice.
"""
from __future__ import annotations

import asyncio
import re
import time
from typing import Protocol

import structlog

from bridge import stages
from bridge.homeserver import HomeserverError
from bridge.imap import Fetched, ImapClient, ImapError
from bridge.mail_guard import without_mime_fields
from bridge.mail_in import MailLimits, MailRejected
from bridge.parse_pool import MailParser
from bridge.routing import Quarantine
from bridge.stages import acknowledge
from bridge.stages.judge import sender_mismatch
from liaison import memory
from liaison.logs import new_ref
from liaison.matrix import MatrixError

log = structlog.get_logger(__name__)

BACKOFF = (1, 2, 5, 10, 30, 60)
CONCURRENCY = 8   # threads handled at once
BATCH = 32        # mails fetched at once: a burst does not make the next mail wait behind 200 others
POISON_AFTER = 5  # failed passes before a mail that keeps breaking the bridge goes to quarantine
TRIM_AFTER_BYTES = 1024 * 1024
_THREAD = re.compile(rb"^(references|in-reply-to|message-id):[ \t]*(?:\r?\n[ \t]+)*(<[^>\r\n]{1,250}>)", re.I | re.M)


class InboundPorts(stages.PipelinePorts, Protocol):
    """What the IMAP loop uses besides the stages': the mail rows and poison counter (store), the limits (settings),
    the trusted domains of a mail too big to read, the latency counter; all of them the pipeline's already."""


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
    def __init__(self, d: InboundPorts, imap: ImapClient, mailbox: str, poll_seconds: int) -> None:
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
                return await self._set_aside(f, new_ref(), passes - 1)
            state = await (self.handle(mail_id, f.raw) if f.complete else self._too_big(mail_id, f))
        except (MatrixError, HomeserverError, OSError, asyncio.TimeoutError) as err:
            log.warning("mail.in_retry_later", uid=f.uid, error=str(err)[:200])
            await self._uncount(mail_id)
            return False
        except asyncio.CancelledError:   # the bridge stops: this pass is not the mail's fault
            await asyncio.shield(self._uncount(mail_id))
            raise
        except Exception:   # a mail that breaks the bridge must not stop the others, nor be lost
            ref = new_ref()
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
            required = self.d.settings.sender_authentication_required
            sender = head.from_address if sender_mismatch(head, required=required) is None else ""
        except MailRejected:
            pass
        mib, limit = -(-f.size // 2**20), self.limits.max_bytes // 2**20
        reason = (f"le message ({mib} Mo) dépasse la taille maximale acceptée par Liaison ({limit} Mo) ; demandez à "
                  "l'expéditeur d'envoyer les pièces jointes en plusieurs messages")
        return await self.quarantine(mail_id, f.raw, Quarantine("too_big", reason), sender,
                                     bool(sender) and self.d.trusted.trusts(sender))

    async def handle(self, mail_id: str, raw: bytes) -> str:
        return await stages.run(self.d, self.parser, mail_id, raw, self.members_checked)

    async def quarantine(self, mail_id: str, raw: bytes, q: Quarantine, sender: str, trusted: bool) -> str:
        return await acknowledge.quarantine(self.d, mail_id, raw, q, sender, trusted)
