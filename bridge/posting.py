"""Post one mail in a pathway room, as its sender's puppet, end-to-end encrypted, in its thread.

Transaction ids derive from the mail's row: after a crash the same mail posts the same events,
which the homeserver recognises, so nothing shows twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from bridge.deps import Deps
from bridge.mail_in import InboundMail
from bridge.routing import Route
from bridge.sanitize import safe_filename
from bridge.xdm import XdmPackage
from liaison.mail_store import Thread
from liaison.matrix import txn_id

_EXT = {"application/pdf": ".pdf", "text/xml": ".xml", "application/xml": ".xml", "text/plain": ".txt",
        "image/jpeg": ".jpg", "image/png": ".png"}


@dataclass(frozen=True)
class File:
    name: str
    mime: str
    data: bytes


def files_of(mail: InboundMail, xdm: XdmPackage | None) -> list[File]:
    """The mail's attachments, the XDM archive replaced by the documents it carries."""
    out = []
    for a in mail.attachments:
        if xdm is not None and a.filename.upper() == "IHE_XDM.ZIP":
            continue
        out.append(File(a.filename, a.content_type or "application/octet-stream", a.data))
    for doc in xdm.documents if xdm else ():
        ext = _EXT.get(doc.mime_type, "")
        name = doc.title if doc.title.lower().endswith(ext) else doc.title + ext
        out.append(File(safe_filename(name), doc.mime_type or "application/octet-stream", doc.data))
    return out


def message_content(mail: InboundMail, route: Route, files: int) -> dict:
    head = mail.subject or "(sans objet)"
    lines = [f"✉️ {head}", "", mail.text.strip()]
    foot = [f"Courriel MSSanté de {mail.from_address}, déposé {route.how}."]
    if files:
        foot.append(f"{files} pièce(s) jointe(s) ci-dessous.")
    foot += [*mail.notes] + ([route.note] if route.note else [])
    body = "\n".join(lines + ["", *foot])
    html_main = mail.html if mail.html else escape(mail.text.strip()).replace("\n", "<br>")
    html = (f"<p><strong>✉️ {escape(head)}</strong></p><div>{html_main}</div>"
            f"<p><em>{'<br>'.join(escape(f) for f in foot)}</em></p>")
    return {"msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": html}


def in_thread(content: dict, root: str | None) -> dict:
    if root:
        content["m.relates_to"] = {"rel_type": "m.thread", "event_id": root, "is_falling_back": True,
                                   "m.in_reply_to": {"event_id": root}}
    return content


async def post_mail(d: Deps, *, mail_id: str, mail: InboundMail, xdm: XdmPackage | None, route: Route,
                    members_checked: set[tuple[str, str]] | None = None) -> str:
    """Returns the event id of the mail's text in the room.

    The room's members are read before posting (so every member's device gets the key), once per
    batch of mails: `members_checked` holds the (puppet, room) pairs already read in this batch.
    """
    p = route.pathway
    puppet, matrix = await d.puppets.get(mail.from_address, mail.from_name)
    await d.puppets.join(puppet, matrix, p.room_id)
    checked = members_checked if members_checked is not None else set()
    if (puppet.user_id, p.room_id) not in checked:
        await matrix.refresh_members(p.room_id)
        checked.add((puppet.user_id, p.room_id))
    files = files_of(mail, xdm)
    event_id = await matrix.send(p.room_id, in_thread(message_content(mail, route, len(files)), route.thread_root),
                                 txn_id("mss-in", mail_id))
    root = route.thread_root or event_id
    for i, f in enumerate(files):
        file = await matrix.upload_encrypted(f.data, f.name, f.mime)
        msgtype = "m.image" if f.mime.startswith("image/") else "m.file"
        content = {"msgtype": msgtype, "body": f.name, "filename": f.name,
                   "info": {"mimetype": f.mime, "size": len(f.data)}, "file": file}
        await matrix.send(p.room_id, in_thread(content, root), txn_id("mss-in", mail_id, str(i)))
    if mail.message_id:
        await d.mail.add_thread(Thread(mail.message_id, p.id, p.room_id, event_id, root, mail.from_address,
                                       mail.subject))
    await d.mail.add_correspondent(p.id, mail.from_address)
    await d.pathways.touch(p.id)
    return event_id
