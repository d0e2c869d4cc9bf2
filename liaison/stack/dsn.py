"""The delivery status notifications the local mail gateway sends back (RFC 3464), as an operator's gateway does."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, make_msgid


@dataclass(frozen=True)
class Outcome:
    recipient: str
    orcpt: str | None
    delivered: bool
    diagnostic: str


def compose_dsn(*, sender: str, outcome: Outcome, envid: str | None, headers: bytes) -> bytes:
    """An RFC 3464 report (`multipart/report; report-type=delivery-status`) for one recipient."""
    domain = outcome.recipient.rpartition("@")[2]
    boundary = "dsn-" + secrets.token_hex(8)
    if outcome.delivered:
        subject, action, status = "Remis : notification de remise", "delivered", "2.0.0"
        human = f"Votre message a bien été remis à {outcome.recipient}."
    else:
        subject, action, status = "Échec de remise : notification de non-remise", "failed", "5.1.1"
        human = f"Votre message n'a pas pu être remis à {outcome.recipient} : la boîte aux lettres n'existe pas."
    per_message = [f"Reporting-MTA: dns; mx.{domain}", *([f"Original-Envelope-Id: {envid}"] if envid else []),
                   f"Arrival-Date: {formatdate(localtime=True)}"]
    per_rcpt = [*([f"Original-Recipient: {outcome.orcpt}"] if outcome.orcpt else []),f"Final-Recipient: rfc822; {outcome.recipient}", f"Action: {action}",
                 f"Status: {status}", f"Diagnostic-Code: smtp; {outcome.diagnostic}"]
    lines = [
        f"From: mailer-daemon@{domain}", f"To: {sender}",
        f"Subject: {Header(subject, 'utf-8').encode()}", f"Date: {formatdate(localtime=True)}",
        f"Message-ID: {make_msgid(domain=domain)}", "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"', "",
        f"--{boundary}", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "",
        human, "", f"--{boundary}", "Content-Type: message/delivery-status", "",
        *per_message, "", *per_rcpt, "", f"--{boundary}", "Content-Type: text/rfc822-headers", "",
    ]
    head = "\r\n".join(lines).encode() + b"\r\n" + headers.rstrip(b"\r\n") + b"\r\n"
    return head + f"\r\n--{boundary}--\r\n".encode()
