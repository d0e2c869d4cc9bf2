"""Post one mail in a pathway room, as its sender's puppet, end-to-end encrypted, in its thread.

Transaction ids derive from the mail's row: after a crash the same mail posts the same events,
which the homeserver recognises, so nothing shows twice.
"""
from __future__ import annotations

from html import escape

import structlog

from bridge import msgids
from bridge.deps import Deps
from bridge.documents_in import check_files, files_of, notice_text, post_file, post_notice
from bridge.mail_in import InboundMail
from bridge.routing import Route
from bridge.xdm import XdmPackage
from liaison.mail_store import Thread
from liaison.matrix import txn_id, with_relation

log = structlog.get_logger(__name__)


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


async def post_mail(d: Deps, *, mail_id: str, mail: InboundMail, xdm: XdmPackage | None, route: Route,
                    members_checked: set[tuple[str, str]] | None = None) -> str:
    """Returns the event id of the mail's text in the room.

    The room's members are read before posting (so every member's device gets the key), once per
    batch of mails: `members_checked` holds the (puppet, room) pairs already read in this batch.
    """
    p = route.pathway
    looked = await check_files(d, mail_id, files_of(mail, xdm))   # first: a refused file is never uploaded
    contact = await d.contacts.get(mail.from_address) if d.contacts else None   # a name the coordination recorded
    puppet, matrix = await d.puppets.get(mail.from_address, mail.from_name,
                                         known_name=(contact.name or None) if contact else None)
    checked = members_checked if members_checked is not None else set()
    if (puppet.user_id, p.room_id) not in checked:
        await d.puppets.enter(puppet, matrix, p.room_id, by_hand=route.basis == "hand")
        checked.add((puppet.user_id, p.room_id))
    allowed = [x for x in looked if x.allowed]
    event_id = await matrix.send(p.room_id, with_relation(message_content(mail, route, len(allowed)), route.thread_root),
                                 txn_id("mss-in", mail_id))
    root = route.thread_root or event_id
    # Known at once, before the files: a member may answer the text while they are still being posted.
    await d.mail.add_thread(Thread(mail.message_id or msgids.local_id(mail_id), p.id, p.room_id, event_id, root,
                                   mail.from_address, mail.subject))
    await d.mail.add_correspondent(p.id, mail.from_address, route.basis)
    indexed = [(x, await post_file(d, matrix, mail_id=mail_id, mail=mail, pathway_id=p.id, room_id=p.room_id,
                                   root=root, x=x)) for x in allowed]
    if looked:
        refused = [x for x in looked if not x.allowed]
        await post_notice(d, mail_id=mail_id, room_id=p.room_id, root=root, text=notice_text(indexed, refused))
        log.info("mail.in_documents", mail_id=mail_id, pathway_id=p.id, indexed=len(indexed), refused=len(refused),
                 rules=sorted({x.checked.decision.rule for x in refused}))
    await d.pathways.touch(p.id)
    return event_id
