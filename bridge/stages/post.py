"""Stage 5: posted by the sender's puppet (bridge/posting.py), unless a member removed that puppet from the room."""
from __future__ import annotations

from typing import Protocol

from bridge.posting import PostingPorts, post_mail
from bridge.puppets import ShutOut
from bridge.routing import Quarantine, Route
from bridge.stages.judge import Judged
from bridge.stages.outcome import Outcome


class PostPorts(PostingPorts, Protocol):
    """What the post stage uses: posting the mail (`bridge.posting.PostingPorts`), nothing more."""


async def post(d: PostPorts, mail_id: str, judged: Judged, where: Route,
               members_checked: set[tuple[str, str]]) -> Outcome:
    mail = judged.mail
    try:
        event_id = await post_mail(d, mail_id=mail_id, mail=mail, xdm=judged.xdm, route=where,
                                   members_checked=members_checked)
    except ShutOut as out:   # a member removed its correspondent from the room: their will, not a failure
        q = Quarantine("puppet_banned" if out.banned else "puppet_removed", out.sentence())
        return Outcome.quarantined(q, mail.from_address, judged.trusted)
    receipt_to = mail.from_address if mail.mdn_to and not mail.auto_submitted and mail.message_id else None
    return Outcome("posted", pathway_id=where.pathway.id, event_id=event_id, receipt_to=receipt_to)
