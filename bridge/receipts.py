"""Delivery (RFC 3464) and read (RFC 8098) receipts: recognise them, compose our MDN. Pure."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import format_datetime, make_msgid

from bridge import msgids
from bridge.mail_from import from_field
from bridge.sanitize import header_text, strip_unsafe
from liaison.clock import SystemClock

DSN_ACTIONS = frozenset({"delivered", "failed", "delayed", "relayed", "expanded"})
MDN_DISPOSITIONS = frozenset({"displayed", "deleted", "dispatched", "processed"})
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Receipt:
    """What a DSN or an MDN says about a mail we sent."""
    kind: str                         # "dsn" | "mdn"
    original_message_id: str | None
    envelope_id: str | None
    status: str
    reason: str                       # French reason for a failure or delay, "" otherwise
    recipient: str | None


def parse_receipt(msg: Message) -> Receipt | None:
    """The receipt carried by a multipart/report mail, or None when it is not one."""
    if msg.get_content_type() != "multipart/report" or not msg.is_multipart():
        return None
    report_type = str(msg.get_param("report-type", "") or "").strip().lower()
    parts = [p for p in msg.get_payload() if isinstance(p, Message)]
    if report_type == "delivery-status":
        return _parse_dsn(parts)
    if report_type == "disposition-notification":
        return _parse_mdn(parts)
    return None


def _fields(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or disposition-notification part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    if isinstance(payload, str):
        text = payload.replace("\r\n", "\n")
        return [HeaderParser(policy=policy.default).parsestr(block.strip("\n") + "\n")
                for block in re.split(r"\n\s*\n", text) if block.strip()]
    return []


def _field(block: Message, name: str) -> str:
    """A field's raw value, unfolded and cleaned ("" when absent); never the policy's parser."""
    for key, value in block.raw_items():
        if key.lower() == name.lower():
            return strip_unsafe(" ".join(str(value).split()))
    return ""


def _typed_address(value: str) -> str | None:
    """'rfc822; Jean@Hop.fr' → 'jean@hop.fr'."""
    value = value.split(";", 1)[1] if ";" in value else value
    value = value.strip().strip("<>").strip().lower()
    return value or None


def _original_id(parts: list[Message]) -> str | None:
    for part in parts[2:] if len(parts) > 2 else []:
        ctype = part.get_content_type()
        if ctype in ("text/rfc822-headers", "text/rfc822-header"):
            raw = part.get_payload(decode=True)   # bytes for a part that is not multipart, else None
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
            found = msgids.first(_field(HeaderParser(policy=policy.default).parsestr(text), "Message-ID"))
        elif ctype in ("message/rfc822", "message/global", "message/global-headers") and part.is_multipart():
            inner = part.get_payload(0)   # the enclosed message
            found = msgids.first(_field(inner, "Message-ID")) if isinstance(inner, Message) else None
        else:
            found = None
        if found:
            return found
    return None


def _parse_dsn(parts: list[Message]) -> Receipt | None:
    status_part = next((p for p in parts if p.get_content_type()
                        in ("message/delivery-status", "message/global-delivery-status")), None)
    if status_part is None:
        return None
    blocks = _fields(status_part)
    if not blocks:
        return None
    envelope_id = _field(blocks[0], "Original-Envelope-Id") or None
    recipients = [b for b in blocks if any(_field(b, f) for f in ("Final-Recipient", "Action", "Status"))]
    if not recipients:
        return None
    chosen = _worst(recipients)
    status_code = _field(chosen, "Status")
    action = _field(chosen, "Action").lower().split(" ")[0]
    if action not in DSN_ACTIONS:
        action = {"2": "delivered", "4": "delayed", "5": "failed"}.get(status_code[:1], "")
    if not action:
        return None
    reason = dsn_reason(status_code, _field(chosen, "Diagnostic-Code")) if action in ("failed", "delayed") else ""
    recipient = _typed_address(_field(chosen, "Final-Recipient") or _field(chosen, "Original-Recipient"))
    return Receipt(
        kind="dsn",
        original_message_id=_original_id(parts) or msgids.first(envelope_id),
        envelope_id=envelope_id,
        status=action,
        reason=reason,
        recipient=recipient,
    )


def _worst(blocks: list[Message]) -> Message:
    """The recipient block to report: a failure first, then a delay, else the first one."""
    for wanted in ("failed", "delayed"):
        for block in blocks:
            if _field(block, "Action").lower().startswith(wanted):
                return block
    return blocks[0]


def dsn_reason(status: str, diagnostic: str = "") -> str:
    """Why a DSN failed, in French, from its status code ('5.1.1', else the first one in the diagnostic).

    Our own sentence only: the diagnostic is the reporting server's free text (anyone who can send a DSN writes
    it), so only its status code is read, never shown. Written to follow "Le courriel n'a pas pu être remis : "
    (lower-case start, final period).
    """
    found = _STATUS.search(status or "") or _STATUS.search(diagnostic or "")
    code = found.group(0) if found else ""
    if code == "5.1.1":
        return "la boîte aux lettres du destinataire n'existe pas."
    if code == "5.2.2":
        return "la boîte aux lettres du destinataire est pleine."
    if code.startswith("4."):
        return "échec temporaire, l'opérateur réessaie."
    if code.startswith("5.7."):
        return "refusé par la politique du serveur destinataire."
    base = _DSN_CLASSES.get(code[:4], "le serveur destinataire n'a pas accepté le message")
    return f"{base} (code {code})." if code else f"{base}."


_DSN_CLASSES = {   # RFC 3463 subjects
    "5.1.": "l'adresse du destinataire n'est pas valide",
    "5.2.": "la boîte aux lettres du destinataire ne peut pas recevoir ce message",
    "5.3.": "le système de messagerie du destinataire n'a pas accepté le message",
    "5.4.": "le message n'a pas pu être acheminé jusqu'au destinataire",
    "5.5.": "les serveurs de messagerie n'ont pas pu échanger le message",
    "5.6.": "le contenu du message a été refusé par le serveur destinataire",
}


def _parse_mdn(parts: list[Message]) -> Receipt | None:
    part = next((p for p in parts if p.get_content_type()
                 in ("message/disposition-notification", "message/global-disposition-notification")), None)
    if part is None:
        return None
    fields: dict[str, str] = {}
    for block in _fields(part):
        for name in ("Disposition", "Original-Message-ID", "Final-Recipient", "Original-Recipient"):
            fields[name] = fields.get(name) or _field(block, name)
    disposition = fields.get("Disposition", "")
    kind = disposition.split(";", 1)[-1].strip().split("/")[0].strip().lower()
    if kind not in MDN_DISPOSITIONS:
        return None
    recipient = _typed_address(fields.get("Final-Recipient") or fields.get("Original-Recipient") or "")
    return Receipt(
        kind="mdn",
        original_message_id=msgids.first(fields.get("Original-Message-ID")),
        envelope_id=None,
        status=kind,
        reason="",
        recipient=recipient,
    )


def _clean_id(value: str) -> str:
    token = value.strip().strip("<>")
    if not token or any(c.isspace() or c in "<>" or ord(c) < 32 for c in token):
        raise ValueError("identifiant de message invalide")
    return token


def _addr(value: str) -> str:
    if any(ord(c) < 32 or c.isspace() for c in value):
        raise ValueError("adresse invalide")
    return Address(addr_spec=value).addr_spec


def compose_mdn(*, original_message_id: str, original_recipient: str, from_address: str,
                from_name: str, to: str, subject: str, reporting_ua: str = "Liaison",
                date: datetime | None = None) -> EmailMessage:
    """An RFC 8098 read receipt ('displayed', sent automatically) for a mail we received.

    Raises ValueError on an invalid address or message id (header injection).
    """
    orig_id = _clean_id(original_message_id)
    sender, rcpt, final, dest = (_addr(v) for v in (from_address, original_recipient, from_address, to))
    ua = header_text(reporting_ua) or "Liaison"
    title = header_text(subject)
    msg = EmailMessage(policy=policy.SMTP)
    msg.set_raw("From", from_field(header_text(from_name), sender))   # folded at spaces only
    msg["To"] = dest
    msg["Subject"] = header_text(f"Accusé de lecture : {title}" if title else "Accusé de lecture")
    msg["Date"] = format_datetime(date or SystemClock().now())
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    msg["In-Reply-To"] = f"<{orig_id}>"
    msg["References"] = f"<{orig_id}>"
    msg["Auto-Submitted"] = "auto-replied"
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = 'multipart/report; report-type="disposition-notification"'

    human = EmailMessage(policy=policy.SMTP)
    about = f" « {title} »" if title else ""
    human.set_content(
        f"Votre message{about} a été affiché dans Liaison pour {rcpt}.\n"
        "Cet accusé de lecture ne garantit pas que le message a été lu ni compris.\n",
        cte="quoted-printable",
    )
    machine = EmailMessage(policy=policy.SMTP)
    machine["Content-Type"] = "message/disposition-notification"
    machine.set_payload(
        f"Reporting-UA: {ua}\r\n"
        f"Original-Recipient: rfc822;{rcpt}\r\n"
        f"Final-Recipient: rfc822;{final}\r\n"
        f"Original-Message-ID: <{orig_id}>\r\n"
        "Disposition: automatic-action/MDN-sent-automatically; displayed\r\n"
    )
    msg.attach(human)
    msg.attach(machine)
    return msg
