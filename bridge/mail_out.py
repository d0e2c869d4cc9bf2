"""Compose the mails the bridge sends (pure: values in, an EmailMessage or bytes out)."""
from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from bridge import msgids
from bridge.mail_from import from_field
from bridge.sanitize import header_text  # noqa: F401  (one header guard for the bridge)
from liaison.clock import SystemClock
MAX_REFERENCES = 20
SIGNATURE_MARK = "\n\n-- \n"   # the signature follows it, last in the text
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_EXTRA_NAME = re.compile(r"^X-[A-Za-z0-9-]+$")
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_RE_PREFIX = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_RESERVED = frozenset({"x-liaison-event"})


@dataclass(frozen=True)
class OutAttachment:
    filename: str
    content_type: str
    data: bytes


def message_id_for(event_id: str, domain: str) -> str:
    """Message-ID for a Matrix event, WITHOUT angle brackets: `liaison.<32 hex>@<domain>`.

    Deterministic: the same event always gives the same id (a resent mail is recognised as such).
    """
    domain = _domain(domain, "du Message-ID")
    digest = hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:32]
    return f"liaison.{digest}@{domain}"


def _domain(value: str, what: str) -> str:
    if not isinstance(value, str) or not _DOMAIN.match(value) or len(value) > 253:
        raise ValueError(f"Le domaine {what} n'est pas un nom de domaine valide.")
    return value.lower()


def _address(value: str, what: str) -> str:
    """One plain addr-spec (local@domain), ASCII, without spaces or line breaks."""
    if not isinstance(value, str) or any(c in value for c in "\r\n\x00") or value != value.strip():
        raise ValueError(f"L'adresse {what} contient un retour à la ligne ou des espaces : elle est refusée.")
    if value.count("@") != 1:
        raise ValueError(f"L'adresse {what} doit contenir exactement un « @ ».")
    local, domain = value.split("@")
    if not _LOCAL.match(local) or len(local) > 64:
        raise ValueError(f"L'adresse {what} a une partie locale invalide (avant le « @ »).")
    _domain(domain, f"de l'adresse {what}")
    return value


def _references(references: tuple[str, ...], in_reply_to: str | None) -> list[str]:
    return msgids.chain([*references, *((in_reply_to,) if in_reply_to else ())], MAX_REFERENCES)


def _subject(subject: str, replying: bool) -> str:
    subject = header_text(subject)
    if replying and not _RE_PREFIX.match(subject):
        subject = header_text(f"Re: {subject}")
    return subject


def _filename(name: str) -> str:
    cleaned = header_text(name.replace("/", "_").replace("\\", "_")).strip(" .")
    return cleaned or "piece-jointe"


def _extra(extra_headers: dict[str, str] | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in (extra_headers or {}).items():
        if not isinstance(name, str) or not _EXTRA_NAME.match(name):
            raise ValueError(f"L'en-tête « {header_text(str(name))[:60]} » est refusé : seuls les en-têtes "
                             f"X-… (lettres, chiffres, tirets) peuvent être ajoutés.")
        if name.lower() in _RESERVED or name.lower() in seen:
            raise ValueError(f"L'en-tête « {name} » est déjà fixé par Liaison ou donné deux fois.")
        seen.add(name.lower())
        out.append((name, header_text(value)))
    return out


def compose(*, from_address: str, from_display: str, to: str, subject: str, text: str, event_id: str,
            reply_to: str | None = None, in_reply_to: str | None = None, references: tuple[str, ...] = (),
            signature: str = "", attachments: tuple[OutAttachment, ...] = (),
            extra_headers: dict[str, str] | None = None, request_mdn: bool = True,
            now: datetime | None = None) -> EmailMessage:
    """The mail for one Matrix event; ValueError (French) on an invalid address or header."""
    sender = _address(from_address, "de l'expéditeur")
    recipient = _address(to, "du destinataire")
    answer_to = _address(reply_to, "de réponse") if reply_to is not None else None
    if not isinstance(event_id, str) or not re.fullmatch(r"[\x21-\x7e]{1,255}", event_id):
        raise ValueError("L'identifiant d'événement Matrix est invalide : le message n'est pas composé.")
    parent = None
    if in_reply_to is not None:
        parent = msgids.usable(in_reply_to)
        if parent is None and not msgids.is_local(in_reply_to):
            raise ValueError("Le Message-ID du message auquel on répond est invalide.")
    extras = _extra(extra_headers)
    when = now or SystemClock().now()
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)

    msg = EmailMessage(policy=email.policy.SMTP)
    local, domain = sender.split("@")
    msg.set_raw("From", from_field(header_text(from_display), f"{local}@{domain}"))   # folded at spaces only
    msg["To"] = Address(addr_spec=recipient)
    if answer_to:
        msg["Reply-To"] = Address(addr_spec=answer_to)
    msg["Subject"] = _subject(subject, in_reply_to is not None)
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<{message_id_for(event_id, domain)}>"
    if parent:
        msg["In-Reply-To"] = f"<{parent}>"
    chain = _references(references, parent)
    if chain:
        msg["References"] = " ".join(f"<{ref}>" for ref in chain)
    if request_mdn:
        msg["Disposition-Notification-To"] = f"<{sender}>"
    msg["X-Liaison-Event"] = event_id
    for name, value in extras:
        msg[name] = value

    body = str(text).replace("\r\n", "\n").replace("\r", "\n")
    if signature:
        body += SIGNATURE_MARK + str(signature).replace("\r\n", "\n").replace("\r", "\n")
    msg.set_content(body, subtype="plain", charset="utf-8", cte="quoted-printable")
    for attachment in attachments:
        ctype = attachment.content_type.strip().lower()
        if not _MIME_TYPE.match(ctype):
            raise ValueError(f"Le type de pièce jointe « {header_text(ctype)[:60]} » est invalide.")
        maintype, subtype = ctype.split("/")
        msg.add_attachment(bytes(attachment.data), maintype=maintype, subtype=subtype,
                           filename=_filename(attachment.filename), cte="base64")
    return msg


def as_bytes(msg: EmailMessage) -> bytes:
    """The wire form of the message, CRLF line endings (SMTP policy)."""
    return msg.as_bytes(policy=email.policy.SMTP)


def retext(raw: bytes, text: str, now: datetime | None = None) -> bytes | None:
    """The same queued mail (headers, Message-ID, signature) with a new text, for an edit made before it left;
    None for a mail with attachments (a document's text is not edited)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)   # \n inside, CRLF again on the wire
    if msg.is_multipart():
        return None
    body = msg.get_content()
    body = body.replace("\r\n", "\n")
    signature = body[body.rindex(SIGNATURE_MARK):] if SIGNATURE_MARK in body else ""
    new = str(text).replace("\r\n", "\n").replace("\r", "\n") + signature
    if now is not None:
        del msg["Date"]
        msg["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=timezone.utc))
    msg.set_content(new, subtype="plain", charset="utf-8", cte="quoted-printable")
    return as_bytes(msg)
