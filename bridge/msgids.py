"""Message-IDs: one rule for the mails that come in and the mails that go out (RFC 5322 §3.6.4).

An id the bridge could not write back in an In-Reply-To or a References is not kept when it comes in,
so a reply never fails on an id that was accepted on the way in. A mail that came without a usable
Message-ID still gets a thread, under a local id that is never written in a mail.
"""
from __future__ import annotations

import re

MAX_LENGTH = 250   # the bridge writes nothing longer; RFC 5322 lines stop at 998 with the header's name
_USABLE = re.compile(rf"^[\x21-\x3b\x3d\x3f-\x7e]{{1,{MAX_LENGTH}}}$")   # printable ASCII without < > and spaces
_BRACKETED = re.compile(r"<([^<>\s]+)>")
_LOCAL_DOMAIN = "@sans-message-id.invalid"   # RFC 2606: never a real domain


def usable(value: object) -> str | None:
    """The bracketless form of one id, or None when it is not one the bridge can write again."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value if _USABLE.match(value) and not is_local(value) else None


def first(value: str | None) -> str | None:
    """The first id of a header value (In-Reply-To, Message-ID), if usable."""
    if not value:
        return None
    found = _BRACKETED.search(value)
    return usable(found.group(1) if found else (value.split() or [""])[0])


def all_of(value: str | None) -> list[str]:
    """Every usable id of a header value (References), in order."""
    if not value:
        return []
    tokens = _BRACKETED.findall(value) or value.split()
    return [i for i in (usable(t) for t in tokens) if i]


def chain(ids: list[str], limit: int) -> list[str]:
    """Ids once each, usable only; over `limit`, the thread's root and the latest ones."""
    out: list[str] = []
    for raw in ids:
        i = usable(raw)
        if i is not None and i not in out:
            out.append(i)
    if len(out) > limit:
        out = [out[0], *out[1 - limit:]] if limit > 1 else out[:1]
    return out


def local_id(mail_id: int | str) -> str:
    """The thread key of a mail that came without a usable Message-ID."""
    return f"mail-{mail_id}{_LOCAL_DOMAIN}"


def is_local(value: str | None) -> bool:
    return value is not None and value.endswith(_LOCAL_DOMAIN)
