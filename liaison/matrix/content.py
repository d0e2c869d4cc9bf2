"""The content of what Liaison posts: notices, replies and thread messages, in the shapes Element writes today.

One relation builder for all of them. A message in a thread that answers nothing in particular carries the
thread's root as its reply fallback (`is_falling_back: true`: clients without threads show it under the root);
a message that answers one event (a command, a message not relayed) is a real reply inside the thread
(`is_falling_back: false`), so Element quotes that event.
"""
from __future__ import annotations

import hashlib
import re
from html import escape

from liaison.matrix.events import TextMessage

HTML = "org.matrix.custom.html"
# A rule id (outside.no_consent), a reference or a trace number: code, so no client turns « outside.no » into a link.
_CODES = re.compile(r"(règle |réf\. |trace n° |trace )([A-Za-z0-9_.\-]+[A-Za-z0-9_])")


# A link to a room, an event or a person: a short link, not 60 letters wrapping on a phone's 400 px.
_PERMALINK = re.compile(r"https://matrix\.to/#/([!#@][^\s<>&\"]*[^\s<>&\".,;:)])")
_LINK_TEXT = {"!": "ouvrir le salon", "#": "ouvrir le salon", "@": "voir le profil"}


def as_html(text: str) -> str:
    """Plain text as Element shows it best: escaped, line breaks kept, rule ids and references in <code>,
    matrix.to links as short links."""
    html = _CODES.sub(r"\1<code>\2</code>", escape(text)).replace("\n", "<br>")
    return _PERMALINK.sub(_short_link, html)


def _short_link(match: re.Match) -> str:
    words = "ouvrir le message" if "/$" in match.group(1) else _LINK_TEXT[match.group(1)[0]]
    return f'<a href="{match.group(0)}">{words}</a>'



def txn_id(*parts: str) -> str:
    """A transaction id derived from what is being sent, so a resend is deduplicated by the homeserver."""
    return "liaison-" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def reply_txn_id(event_id: str) -> str:
    return txn_id(event_id)


def relation(thread_root: str | None = None, reply_to: str | None = None) -> dict | None:
    """`m.relates_to` for a message in a thread and/or answering one event; None for neither."""
    if thread_root:
        return {"rel_type": "m.thread", "event_id": thread_root, "is_falling_back": reply_to is None,
                "m.in_reply_to": {"event_id": reply_to or thread_root}}
    if reply_to:
        return {"m.in_reply_to": {"event_id": reply_to}}
    return None


def message(text: str, html: str | None = None, *, notice: bool = True, thread_root: str | None = None,
            reply_to: str | None = None) -> dict:
    """A notice (what a bot says) or a text, HTML beside its plain-text body when given."""
    content: dict = {"msgtype": "m.notice" if notice else "m.text", "body": text}
    if html is not None:
        content.update(format=HTML, formatted_body=html)
    return with_relation(content, thread_root, reply_to)


def notice(text: str, html: str | None = None, *, thread_root: str | None = None,
           reply_to: str | None = None) -> dict:
    """What Liaison says: its HTML made from the text when not given (see as_html)."""
    return message(text, as_html(text) if html is None else html, thread_root=thread_root, reply_to=reply_to)


def with_relation(content: dict, thread_root: str | None = None, reply_to: str | None = None) -> dict:
    """`content` placed in a thread and/or as a reply (see relation); unchanged for neither."""
    relates = relation(thread_root, reply_to)
    if relates is not None:
        content["m.relates_to"] = relates
    return content


def file_content(filename: str, mimetype: str, size: int, file: dict, *, image: bool = False) -> dict:
    """A file message: `file` is what Matrix.upload_encrypted returned (the key travels only in this event)."""
    return {"msgtype": "m.image" if image else "m.file", "body": filename, "filename": filename,
            "info": {"mimetype": mimetype, "size": size}, "file": file}


def reply_content(to: TextMessage, text: str, html: str, notice: bool = True) -> dict:
    """A reply to `to`, kept in its thread when it was in one, HTML with a plain-text body."""
    return message(text, html, notice=notice, thread_root=to.thread_root, reply_to=to.reply_to or to.event_id)


def strip_reply_fallback(body: str) -> str:
    """A reply's body may start with the quoted message (`> …` lines, then a blank line): the fallback of
    clients that still write one. What the person typed is the rest."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    return "\n".join(lines[i:]).lstrip("\n")
