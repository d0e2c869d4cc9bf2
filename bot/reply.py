"""Small helpers to shape replies: a plain-text body and its HTML twin."""
from __future__ import annotations

from html import escape


def table(headers: list[str], rows: list[tuple]) -> tuple[str, str]:
    text = "\n".join(" · ".join(str(c) for c in row) for row in rows)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return text, f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def room_link(room_id: str) -> str:
    return f"https://matrix.to/#/{room_id}"
