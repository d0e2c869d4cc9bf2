"""One inbound mail, through named stages called once each, in order:

    parse → judge → route → decide → post → acknowledge

A mail a coordinator routed by hand from the quarantine (`!mss router`) enters at `decide` with the route they chose
(`run_by_hand`): decided again now, read again from the quarantine, then posted and acknowledged like any other.

Each stage (a module here) returns what the next one needs, or an Outcome: the mail's end, which only
`acknowledge` writes (its state, the quarantine and its notice, the read receipt owed). The IMAP loop, the
batches and the poison counter are bridge/inbound.py's; the pure routing rules are bridge/routing.py's.
"""
from __future__ import annotations

from typing import Protocol

from bridge.parse_pool import MailParser
from bridge.routing import Route
from bridge.stages import acknowledge, decide, judge, parse, post, route
from bridge.stages.outcome import Outcome
from liaison.stores.mail import Quarantined

__all__ = ["Outcome", "PipelinePorts", "run", "run_by_hand"]


class PipelinePorts(judge.JudgePorts, route.RoutePorts, decide.DecidePorts, post.PostPorts,
                    acknowledge.AcknowledgePorts, Protocol):
    """What a mail going through every stage uses: the sum of the stages' ports (the raw text of a mail routed by hand
    comes from the mail store, which routing already reads)."""


async def run(d: PipelinePorts, parser: MailParser, mail_id: str, raw: bytes,
              members_checked: set[tuple[str, str]]) -> str:
    """The mail's final state: posted, quarantined, duplicate, ignored or receipt."""
    return await acknowledge.write(d, mail_id, raw, await _through(d, parser, mail_id, raw, members_checked))


async def _through(d: PipelinePorts, parser: MailParser, mail_id: str, raw: bytes,
                   members_checked: set[tuple[str, str]]) -> Outcome:
    """The stages up to the mail's end; the parsed mail (its attachments: up to its size again) dies with this
    call, before acknowledge writes a quarantined mail's raw bytes."""
    mail = await parse.parse(parser, raw)
    if isinstance(mail, Outcome):
        return mail
    judged = await judge.judge(d, parser, mail_id, mail)
    if isinstance(judged, Outcome):
        return judged
    where = await route.route(d, judged)
    if isinstance(where, Outcome):
        return where
    refused = await decide.check(d, judged.mail.from_address, judged.trusted, where)
    if refused is not None:
        return refused
    return await post.post(d, mail_id, judged, where, members_checked)


async def run_by_hand(d: PipelinePorts, parser: MailParser, held: Quarantined, where: Route) -> str:
    """A quarantined mail routed by hand to `where`: « posted », or « quarantined » when it stays there (the room
    told why). AntivirusUnavailable (an OSError) propagates: the mail stays « routing » and is tried again."""
    return await acknowledge.write_by_hand(d, held, where, await _by_hand(d, parser, held, where))


async def _by_hand(d: PipelinePorts, parser: MailParser, held: Quarantined, where: Route) -> Outcome:
    """Decided before it is read again: a mail the law keeps out is not parsed for nothing."""
    refused = await decide.check(d, held.from_address, held.trusted, where)
    if refused is not None:
        return refused
    mail = await parse.parse(parser, await d.mail.quarantine_raw(held.number) or b"")
    if isinstance(mail, Outcome):   # only mails whose reason is routable get here: this one is not readable
        return mail
    return await post.post(d, held.mail_in_id, await judge.judged_before(parser, mail, held.trusted), where, set())
