"""One inbound mail, through named stages called once each, in order:

    parse → judge → route → decide → post → acknowledge

Each stage (a module here) returns what the next one needs, or an Outcome: the mail's end, which only
`acknowledge` writes (its state, the quarantine and its notice, the read receipt owed). The IMAP loop, the
batches and the poison counter are bridge/inbound.py's; the pure routing rules are bridge/routing.py's.
"""
from __future__ import annotations

from bridge.deps import Deps
from bridge.parse_pool import MailParser
from bridge.stages import acknowledge, decide, judge, parse, post, route
from bridge.stages.outcome import Outcome

__all__ = ["Outcome", "run"]


async def run(d: Deps, parser: MailParser, mail_id: str, raw: bytes, members_checked: set[tuple[str, str]]) -> str:
    """The mail's final state: posted, quarantined, duplicate, ignored or receipt."""
    return await acknowledge.write(d, mail_id, raw, await _through(d, parser, mail_id, raw, members_checked))


async def _through(d: Deps, parser: MailParser, mail_id: str, raw: bytes,
                   members_checked: set[tuple[str, str]]) -> Outcome:
    """The stages up to the mail's end; the parsed mail (its attachments: up to its size again) dies with this
    call, before acknowledge writes a quarantined mail's raw bytes."""
    mail = await parse.parse(parser, raw)
    if isinstance(mail, Outcome):
        return mail
    judged = await judge.judge(d, mail_id, mail)
    if isinstance(judged, Outcome):
        return judged
    where = await route.route(d, judged)
    if isinstance(where, Outcome):
        return where
    refused = await decide.check(d, judged, where)
    if refused is not None:
        return refused
    return await post.post(d, mail_id, judged, where, members_checked)
