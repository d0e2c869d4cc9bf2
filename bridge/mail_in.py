"""Parse a mail received from an MSSanté mailbox into a safe, frozen value. Pure (bytes in)."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from email import errors, policy
from email.message import Message
from email.parser import BytesParser
from typing import cast

from bridge import mail_headers as headers
from bridge.auth_results import AuthResult, auth_results
from bridge.mail_guard import GuardLimits, SetAside, scan, set_aside
from bridge import msgids
from bridge.receipts import Receipt, parse_receipt
from bridge.sanitize import (clean_html, decode_bytes, fix_surrogates, html_to_text,
                             safe_filename, strip_unsafe)
from liaison.sniff import extension

MAX_RECEIVED = 30
_BARE_CR = re.compile(rb"\r(?!\n)")
_MAX_DEPTH = 16
_SIGNATURE_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature")
_SMIME_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
_FATAL_DEFECTS = (
    errors.NoBoundaryInMultipartDefect,
    errors.StartBoundaryNotFoundDefect,
    errors.CloseBoundaryNotFoundDefect,
    errors.MultipartInvariantViolationDefect,
)


@dataclass(frozen=True)
class MailLimits:
    """Size limits applied before and while parsing."""
    max_bytes: int = 25 * 1024 * 1024
    max_attachments: int = 20
    max_header_bytes: int = 256 * 1024

    @property
    def max_parts(self) -> int:
        """MIME parts (containers included) looked at before parsing: room for the leaves _walk accepts."""
        return 5 * self.max_attachments + 20


@dataclass(frozen=True)
class Attachment:
    """One attached file, with a safe name."""
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class InboundMail:
    """A received mail, decoded and cleaned; see parse_mail."""
    message_id: str | None
    from_address: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    date: datetime | None
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    signed: bool
    auto_submitted: bool
    mdn_to: str | None
    receipt: Receipt | None
    notes: tuple[str, ...]
    content_hash: str
    loop_hops: int
    liaison_loop: bool
    envelope_sender: str | None   # Return-Path as the delivery recorded it; "" for `<>`; None when absent
    auth_results: tuple[AuthResult, ...]


class MailRejected(ValueError):
    """A mail the bridge refuses, with a stable code and a French reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason

    @classmethod
    def of(cls, code: str) -> MailRejected:
        """The refusal for one of the codes below, with its French reason."""
        return cls(code, _REASONS[code])


def _reject(code: str) -> MailRejected:
    return MailRejected.of(code)


_REASONS = {
    "too_big": "Le message dépasse la taille maximale acceptée par Liaison ; "
               "demandez à l'expéditeur d'envoyer les pièces jointes en plusieurs messages.",
    "headers_too_big": "Les en-têtes du message sont anormalement volumineux ; le message a été refusé.",
    "too_many_header_lines": "Les en-têtes du message comptent un nombre anormal de lignes ; "
                             "le message a été refusé sans être lu.",
    "too_many_encoded_words": "Les en-têtes du message contiennent un nombre anormal de mots encodés ; "
                              "le message a été refusé sans être lu.",
    "too_many_addresses": "Les en-têtes du message contiennent un nombre anormal d'adresses ; "
                          "le message a été refusé sans être lu.",
    "too_many_parts": "Le message est découpé en un nombre anormal de parties ; il a été refusé sans être lu. "
                      "Demandez à l'expéditeur de le renvoyer plus simplement.",
    "too_deep": "Les parties du message sont imbriquées anormalement profondément ; "
                "il a été refusé sans être lu.",
    "too_complex": "La lecture du message a demandé trop de temps ou de mémoire ; "
                   "il a été refusé par précaution. "
                   "Demandez à l'expéditeur de le renvoyer plus simplement.",
    "no_from": "Le message n'indique pas d'expéditeur (en-tête From absent) ; il a été refusé.",
    "many_from": "Le message indique plusieurs expéditeurs ; Liaison n'accepte qu'un expéditeur par message.",
    "bad_from": "L'adresse de l'expéditeur est illisible ; le message a été refusé.",
    "malformed": "Le message est mal formé ou tronqué et ne peut pas être lu ; "
                 "demandez à l'expéditeur de le renvoyer.",
    "too_many_attachments": "Le message contient trop de pièces jointes ; "
                            "demandez à l'expéditeur de les répartir en plusieurs messages.",
    "loop": "Le message est passé par trop de serveurs (boucle de messagerie probable) ; il a été refusé.",
    "smime_encrypted": "Le message est chiffré en S/MIME : Liaison ne peut pas le lire. "
                       "Demandez à l'expéditeur de l'envoyer sans chiffrement S/MIME "
                       "(la messagerie MSSanté protège déjà l'acheminement).",
    "unreadable": "Le message n'a pas pu être lu par Liaison ; demandez à l'expéditeur de le renvoyer.",
}


@dataclass
class _Body:
    """Accumulator used while walking the MIME tree (private, mutable)."""
    limits: MailLimits
    texts: list[str]
    htmls: list[str]
    attachments: list[Attachment]
    aside: SetAside   # the big base64 bodies, decoded from the raw bytes
    signature: str | None = None
    leaves: int = 0


def parse_mail(raw: bytes, limits: MailLimits = MailLimits(), homeserver: str = "") -> InboundMail:
    """Parse raw RFC 5322 bytes; raise MailRejected (with a French reason) when refused.

    `homeserver`: the bridge's server name; the HTML keeps only images stored there (mxc://homeserver/…)."""
    if len(raw) > limits.max_bytes:
        raise _reject("too_big")
    if _BARE_CR.search(raw):   # the parser breaks lines there too: the raw-byte checks must see the same lines
        raw = _BARE_CR.sub(b"\r\n", raw)
    walked = scan(raw, GuardLimits(max_header_bytes=limits.max_header_bytes, max_parts=limits.max_parts))
    if walked.refused is not None:   # before the stdlib parser, whose cost a hostile mail can make explode
        raise _reject(walked.refused)
    try:
        return _parse(set_aside(raw, walked.big_leaves), limits, homeserver)
    except MailRejected:
        raise
    except RecursionError:
        raise _reject("malformed") from None
    except MemoryError:
        raise _reject("too_complex") from None
    except Exception:  # a bug of the stdlib parser on hostile input: refuse, never crash
        raise _reject("unreadable") from None


def _parse(aside: SetAside, limits: MailLimits, homeserver: str) -> InboundMail:
    msg = BytesParser(policy=policy.default).parsebytes(aside.raw)
    if not msg.keys():
        raise _reject("malformed")
    hops = len(msg.get_all("Received") or [])
    if hops > MAX_RECEIVED:
        raise _reject("loop")
    from_address, from_name = _sender(msg)
    _check_structure(msg)

    body = _Body(limits, [], [], [], aside)
    receipt = parse_receipt(msg)
    if receipt is not None:
        _walk(_part(msg, 0), body, 1)  # the human-readable part only
    else:
        _walk(msg, body, 0)

    notes: list[str] = []
    if body.signature == "smime":
        notes.append("Signature S/MIME présente, non vérifiée par Liaison.")
    elif body.signature == "other":
        notes.append("Signature électronique présente, non vérifiée par Liaison.")
    html: str | None = None
    if body.htmls:
        html, removed = clean_html("\n".join(body.htmls), homeserver)
        if removed:
            notes.append("1 image distante retirée." if removed == 1 else f"{removed} images distantes retirées.")
    texts = [t for t in body.texts if t.strip()]
    text = "\n\n".join(texts).strip("\n") if texts else (html_to_text(html) if html else "")
    subject = headers.subject(msg)
    attachments = tuple(body.attachments)
    auto = headers.auto_submitted(msg) or receipt is not None
    return InboundMail(
        message_id=msgids.first(headers.safe_header(msg, "Message-ID")),
        from_address=from_address,
        from_name=from_name,
        to=headers.recipients(msg),
        subject=subject,
        in_reply_to=msgids.first(headers.safe_header(msg, "In-Reply-To")),
        references=headers.references(headers.safe_header(msg, "References")),
        date=headers.date(headers.raw_header(msg, "Date")),
        text=text,
        html=html,
        attachments=attachments,
        signed=body.signature is not None,
        auto_submitted=auto,
        mdn_to=None if receipt is not None else headers.mdn_to(msg),
        receipt=receipt,
        notes=tuple(notes),
        content_hash=_content_hash(from_address, subject, text, attachments),
        loop_hops=hops,
        liaison_loop=headers.raw_header(msg, "X-Liaison-Event") is not None,
        envelope_sender=headers.envelope_sender(msg),
        auth_results=auth_results(headers.raw_values(msg, "Authentication-Results")),
    )


def _sender(msg: Message) -> tuple[str, str]:
    values = headers.raw_values(msg, "From")
    if not values:
        raise _reject("no_from")
    if len(values) > 1:
        raise _reject("many_from")
    addresses = headers.address_list(values[0])
    if not addresses:
        raise _reject("no_from" if not values[0].strip() else "bad_from")
    if len(addresses) > 1:
        raise _reject("many_from")
    name, spec = addresses[0]
    if spec is None:
        raise _reject("bad_from")
    return spec, name


def _part(multipart: Message, index: int) -> Message:
    """A sub-part of a multipart (email's get_payload is typed for every kind of part at once)."""
    return cast(Message, multipart.get_payload(index))


def _parts(multipart: Message) -> list[Message]:
    return cast("list[Message]", multipart.get_payload())


def _check_structure(part: Message, depth: int = 0) -> None:
    """Refuse a broken MIME tree; an attached message/* may be truncated (DSNs often are)."""
    if depth > _MAX_DEPTH or any(isinstance(d, _FATAL_DEFECTS) for d in part.defects):
        raise _reject("malformed")
    if part.get_content_maintype() == "multipart":
        if not (part.is_multipart() and part.get_payload()):
            raise _reject("malformed")
        for sub in _parts(part):
            _check_structure(sub, depth + 1)


def _walk(part: Message, body: _Body, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _reject("malformed")
    ctype = part.get_content_type()
    if ctype in _SMIME_TYPES and str(part.get_param("smime-type", "") or "").lower() != "certs-only":
        raise _reject("smime_encrypted")
    if ctype == "multipart/signed" and part.is_multipart():
        protocol = str(part.get_param("protocol", "") or "").lower()
        signed_kind = "smime" if protocol in _SIGNATURE_TYPES else "other"
        body.signature = body.signature or signed_kind
        _walk(_part(part, 0), body, depth + 1)  # the signed content; the signature is dropped
        return
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for sub in _parts(part):
            _walk(sub, body, depth + 1)
        return
    body.leaves += 1
    if body.leaves > 5 * body.limits.max_attachments + 10:
        raise _reject("too_many_attachments")
    filename = _filename(part)
    disposition = (headers.raw_header(part, "Content-Disposition") or "").split(";")[0].strip().lower()
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = _decode_text(part, body.aside)
        (body.texts if ctype == "text/plain" else body.htmls).append(text)
        return
    if ctype in _SIGNATURE_TYPES:  # a detached signature outside multipart/signed
        body.signature = body.signature or "smime"
        return
    _attach(part, ctype, filename, body)


def _attach(part: Message, ctype: str, filename: str | None, body: _Body) -> None:
    if ctype == "message/rfc822":
        data = _leaf_bytes(part, body.aside)
        name = safe_filename(filename, "message.eml")
        if not name.lower().endswith(".eml"):
            name += ".eml"
    else:
        data = _leaf_bytes(part, body.aside)
        ext = extension(ctype)
        name = safe_filename(filename, "piece-jointe" + (f".{ext}" if ext else ""))
    body.attachments.append(Attachment(filename=name, content_type=ctype, data=data))
    if len(body.attachments) > body.limits.max_attachments:
        raise _reject("too_many_attachments")


def _filename(part: Message) -> str | None:
    raw = [(k, v) for k in ("Content-Disposition", "Content-Type") for v in headers.raw_values(part, k)[:1]]
    if any(fix_surrogates(v) != v for _k, v in raw):  # raw 8-bit name (e.g. Latin-1): decode it first
        part = Message()
        for k, v in raw:
            part[k] = fix_surrogates(v)
    try:
        name = part.get_filename()
    except Exception:  # the stdlib parameter parser fails on some hostile headers: no name then
        name = None
    return str(name) if name else None


def _leaf_bytes(part: Message, aside: SetAside) -> bytes:
    if part.is_multipart():
        return b"\n\n".join(_message_bytes_of(p) for p in part.get_payload() if isinstance(p, Message))
    data = aside.payload(part)
    return data if isinstance(data, bytes) else b""


def _message_bytes_of(msg: Message) -> bytes:
    try:
        return msg.as_bytes(policy=policy.compat32)
    except Exception:  # regeneration of a hostile embedded message failed: keep what decodes
        return str(msg.get_payload() or "").encode("utf-8", "replace")


def _decode_text(part: Message, aside: SetAside) -> str:
    data = aside.payload(part)
    if not isinstance(data, bytes):
        data = str(part.get_payload() or "").encode("utf-8", "replace")
    return strip_unsafe(decode_bytes(data, part.get_content_charset()), keep_newlines=True)


def _content_hash(from_address: str, subject: str, text: str,
                  attachments: tuple[Attachment, ...]) -> str:
    lines = [line.rstrip() for line in text.strip().split("\n")]
    canonical = {
        "from": from_address,
        "subject": subject,
        "text": "\n".join(lines),
        "attachments": sorted(hashlib.sha256(a.data).hexdigest() for a in attachments),
    }
    blob = json.dumps(canonical, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()
