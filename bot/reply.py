"""Small helpers to shape replies: a plain-text body and its HTML twin."""
from __future__ import annotations

from datetime import datetime
from html import escape

from liaison.matrix.content import as_html


def table(headers: list[str], rows: list[tuple]) -> tuple[str, str]:
    text = "\n".join(" · ".join(str(c) for c in row) for row in rows)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{as_html(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return text, f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def when(ms: int | None) -> str:
    """A moment as a French reader expects it (server's local time): 05/03/2026 14:30."""
    return datetime.fromtimestamp(ms / 1000).strftime("%d/%m/%Y %H:%M") if ms else "—"


def day(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%d/%m/%Y") if ms else "—"


def room_link(room_id: str) -> str:
    return f"https://matrix.to/#/{room_id}"
