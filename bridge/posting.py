"""Post one mail in a pathway room, as its sender's puppet, end-to-end encrypted, in its thread.

Transaction ids derive from the mail's row: after a crash the same mail posts the same events,
which the homeserver recognises, so nothing shows twice.
"""
from __future__ import annotations

from html import escape
from typing import Protocol

import structlog

from bridge import msgids
from bridge.documents_in import DocumentsInPorts, check_files, files_of, notice_text, post_file, post_notice
from bridge.mail_in import InboundMail
from bridge.ports import BridgeMatrix, PuppetMatrix
from bridge.puppets import Puppets, ShutOut
from bridge.store import Puppet
from bridge.routing import Route
from bridge.xdm import XdmPackage
from liaison.stores.contacts import Contacts
from liaison.stores.directory import Directory, Entry
from liaison.stores.mail import MailStore, Thread
from liaison.stores.pathways import PathwayStore
from liaison.matrix import txn_id, with_relation

log = structlog.get_logger(__name__)

REST_BY_RELAY = ("↪️ L'expéditeur de ce courriel a été retiré du salon pendant son dépôt ; le courriel était arrivé "
                 "avant : ses pièces jointes sont déposées par le relais MSSanté.")


class PostingPorts(DocumentsInPorts, Protocol):
    """What posting a mail uses: its puppet (named from the contacts or the directory), the bridge's account for the
    rest of a cut mail, the thread recorded, the pathway touched; and its files (`DocumentsInPorts`)."""

    @property
    def matrix(self) -> BridgeMatrix: ...

    @property
    def puppets(self) -> Puppets: ...

    @property
    def contacts(self) -> Contacts | None: ...

    @property
    def directory(self) -> Directory | None: ...

    @property
    def mail(self) -> MailStore: ...

    @property
    def pathways(self) -> PathwayStore: ...


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


async def post_mail(d: PostingPorts, *, mail_id: str, mail: InboundMail, xdm: XdmPackage | None, route: Route,
                    members_checked: set[tuple[str, str]] | None = None) -> str:
    """Returns the event id of the mail's text in the room.

    The room's members are read before posting (so every member's device gets the key), once per
    batch of mails: `members_checked` holds the (puppet, room) pairs already read in this batch.

    A mail is never cut in half: once its text is in the room, its files follow (on the next pass if need be), by
    the bridge's own account when a member removed the puppet in between (the mail came before their decision).
    """
    p, by_hand = route.pathway, route.basis == "hand"
    looked = await check_files(d, mail_id, files_of(mail, xdm))   # first: a refused file is never uploaded
    known, listed = await _names_of(d, mail.from_address)
    matrix: PuppetMatrix | BridgeMatrix   # the puppet; the bridge's own account for the rest of a cut mail
    puppet, matrix = await d.puppets.get(mail.from_address, mail.from_name, known_name=known, listed=listed)
    checked = members_checked if members_checked is not None else set()
    mid = mail.message_id or msgids.local_id(mail_id)
    earlier = await _text_posted(d, mid, mail, p.room_id)
    if earlier is None:
        if (puppet.user_id, p.room_id) not in checked:
            await d.puppets.enter(puppet, matrix, p.room_id, by_hand=by_hand)   # ShutOut: nothing of it posted
            checked.add((puppet.user_id, p.room_id))
        allowed = [x for x in looked if x.allowed]
        event_id = await matrix.send(p.room_id, with_relation(message_content(mail, route, len(allowed)),
                                                              route.thread_root), txn_id("mss-in", mail_id))
        root = route.thread_root or event_id
        # Known at once, before the files: a member may answer the text while they are still being posted. The
        # correspondent first: a reply the relay finds a thread for is decided knowing who wrote it (a stop between
        # the two left a thread without its correspondent, and the reply caught up after the restart was refused).
        await d.mail.add_correspondent(p.id, mail.from_address, route.basis)
        await d.mail.add_thread(Thread(mid, p.id, p.room_id, event_id, root, mail.from_address, mail.subject))
    else:   # a pass cut short (crash, homeserver away) posted the text: the rest now, the text not again
        event_id, root = earlier.event_id, earlier.thread_root
        if any(x.allowed for x in looked):
            matrix = await _rest_poster(d, puppet, matrix, p.room_id, by_hand)
        await d.mail.add_correspondent(p.id, mail.from_address, route.basis)
    # Removed between the text and a file, the puppet is refused (M_FORBIDDEN): the pass ends, and the next one
    # asks the sharing law again (an objection removes it too) before it posts the rest.
    indexed = [(x, await post_file(d, matrix, mail_id=mail_id, mail=mail, pathway_id=p.id, room_id=p.room_id,
                                   root=root, x=x)) for x in looked if x.allowed]
    if looked:
        refused = [x for x in looked if not x.allowed]
        text = notice_text(indexed, refused)
        if matrix is d.matrix and indexed:
            text = f"{REST_BY_RELAY}\n{text}"
        await post_notice(d, mail_id=mail_id, room_id=p.room_id, root=root, text=text)
        log.info("mail.in_documents", mail_id=mail_id, pathway_id=p.id, indexed=len(indexed), refused=len(refused),
                 rules=sorted({x.checked.decision.rule for x in refused}), by_relay=matrix is d.matrix)
    await d.pathways.touch(p.id)
    return event_id


async def _names_of(d: PostingPorts, address: str) -> tuple[str | None, Entry | None]:
    """Who the address is, in order of trust: the name the coordination recorded, else the national directory's
    entry; neither: the puppet shows the From name after the address's domain (bridge/puppets.py)."""
    contact = await d.contacts.get(address) if d.contacts else None
    if contact and contact.name:
        return contact.name, None
    return None, await d.directory.by_address(address) if d.directory else None


async def _text_posted(d: PostingPorts, mid: str, mail: InboundMail, room_id: str) -> Thread | None:
    """This mail's text, already in the room (posted by a pass that did not end), or None."""
    t = await d.mail.thread_of_message([mid])
    if t is None or t.room_id != room_id or t.correspondent != mail.from_address.lower():
        return None
    return t


async def _rest_poster(d: PostingPorts, puppet: Puppet, matrix: PuppetMatrix, room_id: str,
                       by_hand: bool) -> PuppetMatrix | BridgeMatrix:
    """Who posts the rest of a mail whose text is in the room: its puppet, or the bridge's own account when a
    member removed the puppet since. Their decision holds for the mails that come after; this one came before."""
    try:
        await d.puppets.enter(puppet, matrix, room_id, by_hand=by_hand)
        return matrix
    except ShutOut:
        log.info("mail.in_rest_by_relay", room_id=room_id)
        return d.matrix
