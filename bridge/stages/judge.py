"""Stage 2: what the mail is before where it goes: who really sent it, whether it was seen already, whether it is
a receipt, and, its sender trusted, its IHE XDM archive read (or refused) in a parse worker (bridge/parse_pool.py).

An untrusted sender's archive is not read at all: the mail goes to quarantine as untrusted whatever it holds (the
route stage says so first), and is read only if a coordinator routes it by hand (`judged_before`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

from bridge import receipts_in
from bridge.mail_in import InboundMail
from bridge.parse_pool import MailParser, ParserCrashed
from bridge.routing import Quarantine
from bridge.stages.outcome import Outcome
from bridge.xdm import XdmError, XdmPackage, xdm_archive

log = structlog.get_logger(__name__)


class JudgePorts(receipts_in.ReceiptsInPorts, Protocol):
    """What judging a mail uses: the trusted domains, the store (duplicates), the counters, and the receipts it
    applies (`receipts_in.ReceiptsInPorts` holds them all)."""


@dataclass(frozen=True)
class Judged:
    """A mail to route: its sender authenticated, not a duplicate nor a receipt, its archive readable."""
    mail: InboundMail
    xdm: XdmPackage | None
    trusted: bool   # the sender's domain is on the operator's trusted list


async def judge(d: JudgePorts, parser: MailParser, mail_id: str, mail: InboundMail) -> Judged | Outcome:
    trusted = d.trusted.trusts(mail.from_address)
    required = d.settings.sender_authentication_required
    if (mismatch := sender_mismatch(mail, required=required)) is not None:   # never under someone else's name
        return Outcome.quarantined(mismatch, mail.from_address, trusted)
    if await d.store.duplicate_of(mail_id, mail.message_id, mail.content_hash, mail.from_address):
        d.metrics.duplicates.inc()
        return Outcome("duplicate")
    if mail.liaison_loop:
        return Outcome("ignored", reason="loop")
    if mail.receipt is not None:   # listened to only when it cites our mail and comes from who may report on it
        refused = await receipts_in.apply(d, mail.receipt, mail.from_address)
        return Outcome("ignored" if refused == "foreign_sender" else "receipt", reason=refused and f"receipt.{refused}")
    if not trusted:
        return Judged(mail, None, trusted)
    try:
        return Judged(mail, await read_archive(parser, mail), trusted)
    except XdmError as err:
        return Outcome.quarantined(Quarantine(err.code, err.reason), mail.from_address, trusted)


async def judged_before(parser: MailParser, mail: InboundMail, trusted: bool) -> Judged:
    """A mail judged when it came in, read again from the quarantine to be routed by hand: an archive that cannot be
    read does not hold the letter back (its documents are not indexed, the rest of the mail goes)."""
    try:
        xdm = await read_archive(parser, mail)
    except (XdmError, ParserCrashed) as err:   # a reader that died on it is an archive that cannot be read
        log.warning("mail.routed_archive_unread", error=type(err).__name__)
        xdm = None
    return Judged(mail, xdm, trusted)


async def read_archive(parser: MailParser, mail: InboundMail) -> XdmPackage | None:
    """The mail's IHE_XDM.ZIP read in a parse worker, under its deadline and memory ceiling; None without one."""
    archive = xdm_archive(mail)
    return await parser.read_xdm(archive) if archive is not None else None


def sender_mismatch(mail: InboundMail, *, required: bool = True) -> Quarantine | None:
    """From must be the sender the MSSanté operator authenticated: the envelope sender the delivery recorded
    (Return-Path) and the sender of every `pass` of an Authentication-Results. The null sender `<>` is normal for a
    receipt (DSN, MDN) only, whose other identities then need only share its domain. A bare domain (SPF, DMARC) is
    compared to From's.

    `required` (the default; `mailbox.require_authenticated_sender`): a mail with neither a Return-Path nor a `pass`
    is set aside (`identity_unverified`): nothing says who sent it. False only for a gateway that writes neither."""
    claimed = mail.from_address
    null_receipt = mail.receipt is not None and mail.envelope_sender == ""
    authenticated = [] if mail.envelope_sender is None or null_receipt else [mail.envelope_sender]
    authenticated += [v for r in mail.auth_results if r.result == "pass" for v in (r.mailfrom, r.header_from) if v]
    if required and not authenticated and not null_receipt:
        return Quarantine("identity_unverified", f"rien n'atteste que ce courriel vient de {claimed} : la messagerie "
                                                 "ne dit pas quel expéditeur elle a authentifié (ni Return-Path ni "
                                                 "Authentication-Results)")
    for who in authenticated:
        same_domain = who.rpartition("@")[2] == claimed.rpartition("@")[2]
        if who == claimed or (same_domain and ("@" not in who or null_receipt)):
            continue
        return Quarantine("identity_mismatch", f"l'expéditeur affiché ({claimed}) n'est pas celui que la messagerie "
                                               f"MSSanté a authentifié ({who or 'expéditeur vide'}) : le courriel "
                                               "pourrait se faire passer pour un autre correspondant")
    return None
