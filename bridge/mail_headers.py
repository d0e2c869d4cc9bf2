"""The headers of a mail received from an MSSanté mailbox, read safely: one line each, unsafe characters gone,
addresses lower-cased or refused, dates in UTC. Pure; used by bridge/mail_in.py."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email import policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from bridge import msgids
from bridge.sanitize import decode_words, fix_surrogates, strip_unsafe

MAX_REFERENCES = 50   # Message-IDs kept from References, each looked up to find the mail's thread


def one_line(value: object) -> str:
    return " ".join(strip_unsafe(str(value or "")).split()) if value is not None else ""


def raw_header(msg: Message, name: str) -> str | None:
    values = raw_values(msg, name)
    return values[0] if values else None


def subject(msg: Message) -> str:
    raw = raw_header(msg, "Subject") or ""
    if fix_surrogates(raw) == raw:  # ASCII or UTF-8 text: the policy decodes the encoded words
        try:
            return one_line(msg.get("Subject"))
        except (ValueError, TypeError, IndexError, AttributeError):
            pass
    return one_line(decode_words(fix_surrogates(raw)))  # raw 8-bit bytes, e.g. Latin-1


def raw_values(msg: Message, name: str) -> list[str]:
    """The header's raw values, unfolded, without the policy's header objects."""
    return [re.sub(r"\r?\n", "", str(v)) for k, v in msg.raw_items() if k.lower() == name.lower()]


# RFC 2047 §6.2: white space between two adjacent encoded words is not part of the text. The stdlib's
# address parser keeps it, so a long French name folded mid-word would read « démonstrat ion ».
_ADJACENT_WORDS = re.compile(r"(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?)")


def address_list(raw: str) -> list[tuple[str, str | None]]:
    """(display name, lower-cased addr-spec or None when unusable) for each address of a header."""
    raw = _ADJACENT_WORDS.sub(r"\1", raw)
    try:
        addresses = [(a.display_name, a.username, a.domain) for a in policy.default.header_factory("to", raw).addresses]
    except (ValueError, TypeError, IndexError, AttributeError):  # e.g. an encoded CR/LF in a display name
        addresses = [(decode_words(n), *_split(spec)) for n, spec in getaddresses([raw]) if n or spec]
    return [(one_line(n), address(u, d)) for n, u, d in addresses]


def _split(spec: str) -> tuple[str, str]:
    local, _, domain = spec.rpartition("@")
    return local, domain


def address(username: str, domain: str) -> str | None:
    spec = fix_surrogates(f"{username}@{domain}").lower()
    if not username or not domain or strip_unsafe(spec) != spec or any(c.isspace() for c in spec):
        return None
    if not re.fullmatch(r"[^@<>\"(),;\[\]\\]+@[\w.\-\[\]:]+", spec) and "\"" not in username:
        return None
    return spec


def recipients(msg: Message) -> tuple[str, ...]:
    found: list[str] = []
    for raw in raw_values(msg, "To") + raw_values(msg, "Cc"):
        for _name, spec in address_list(raw):
            if spec and spec not in found:
                found.append(spec)
    return tuple(found)


def mdn_to(msg: Message) -> str | None:
    for raw in raw_values(msg, "Disposition-Notification-To"):
        for _name, spec in address_list(raw):
            if spec:
                return spec
    return None


def envelope_sender(msg: Message) -> str | None:
    """The topmost Return-Path: the final delivery writes it from MAIL FROM, above what the mail brought
    (RFC 5321 §4.4). Its address lower-cased, "" for the null sender `<>`, the raw text when unreadable."""
    raw = raw_header(msg, "Return-Path")
    if raw is None:
        return None
    value = one_line(raw)
    inner = re.fullmatch(r"<\s*(?:@[^:<>]*:)?([^<>]*?)\s*>", value)   # an old source route `<@a,@b:x@y>` dropped
    return (inner.group(1) if inner else value).lower()


def safe_header(msg: Message, name: str) -> str | None:
    value = raw_header(msg, name)
    return strip_unsafe(value) if value is not None else None


def references(value: str | None) -> tuple[str, ...]:
    """The usable ids of References: the thread's root and its latest mails, enough to find it."""
    return tuple(msgids.chain(msgids.all_of(value), MAX_REFERENCES))


def date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(strip_unsafe(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def auto_submitted(msg: Message) -> bool:
    auto = (raw_header(msg, "Auto-Submitted") or "").split(";")[0].strip().lower()
    precedence = (raw_header(msg, "Precedence") or "").strip().lower()
    return (bool(auto) and auto != "no") or precedence in ("bulk", "list", "junk")
