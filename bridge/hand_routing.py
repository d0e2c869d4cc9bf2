"""Mails a coordinator routed by hand from the quarantine (`!mss router <n> <parcours>`), posted in the chosen
pathway: inbound mail, read off the event loop by the inbound side's parser like any other, and decided again
at the moment it is posted (an objection recorded since the coordinator's command wins)."""
from __future__ import annotations

import asyncio

import structlog

from bridge.deps import Deps
from bridge.documents_in import AntivirusUnavailable
from bridge.mail_in import MailRejected
from bridge.parse_pool import MailParser
from bridge.posting import post_mail
from bridge.puppets import ShutOut
from bridge.routing import Route, ref
from bridge.stages.acknowledge import tell_quarantine
from bridge.xdm import XdmError, xdm_of
from liaison.enforcement import decide_at
from liaison.mail_store import Quarantined
from liaison.matrix import txn_id

log = structlog.get_logger(__name__)

POLL_S = 0.5   # the bot writes the coordinator's decision in the database; it is posted within this delay


class HandRouting:
    def __init__(self, d: Deps, parser: MailParser) -> None:
        self.d, self.parser = d, parser

    async def run(self) -> None:
        while True:
            try:
                await self.routed()
            except Exception:   # the database away: the mails stay "routing", tried at the next pass
                log.exception("quarantine.routing_pass_failed")
                await asyncio.sleep(1)
            await asyncio.sleep(POLL_S)

    async def routed(self) -> None:
        """Each mail routed by hand on its own: one that fails stays "routing" and never holds back the next."""
        for q in await self.d.mail.quarantined(("routing",)):
            try:
                await self._route_one(q)
            except Exception:
                log.exception("quarantine.routing_failed", number=q.number)

    async def _route_one(self, q: Quarantined) -> None:
        """One routed mail, decided again now and posted, or told in the quarantine room why not."""
        d = self.d
        pathway = await d.pathways.pathway(q.pathway_id)
        decided = await decide_at(d.sharing, "mail.in.route", pathway=pathway, recipient=q.from_address,
                                  actor=q.decided_by or d.settings.bot_user_id, trusted_domain=q.trusted)
        if not decided.allowed:   # routed by hand, refused now (an objection recorded since)
            await self._refused(q, f"Courriel n° {q.number} non déposé dans le parcours {pathway.code} : "
                                   f"{decided.sentence()}. Il reste en quarantaine.", f"refused-{q.number}")
            log.info("quarantine.routing_refused", number=q.number, rule=decided.decision.rule)
            return
        try:
            mail = await self.parser.parse(await d.mail.quarantine_raw(q.number) or b"")
        except MailRejected as err:   # only mails whose reason is routable get here: this one is not readable
            await self._refused(q, f"Courriel n° {q.number} non déposé dans le parcours {pathway.code} : "
                                   f"{err.reason}. Il reste en quarantaine.", f"unreadable-{q.number}")
            log.info("quarantine.routing_unreadable", number=q.number, code=err.code)
            return
        try:
            xdm = xdm_of(mail)
        except XdmError:   # the letter and its other attachments go; the archive's documents are not indexed
            xdm = None
        where = Route(ref(pathway), None, f"à la main par la coordination (quarantaine n° {q.number})",
                      basis="hand")
        try:
            event_id = await post_mail(d, mail_id=q.mail_in_id, mail=mail, xdm=xdm, route=where)
        except AntivirusUnavailable:
            log.warning("quarantine.routing_waits_antivirus", number=q.number)
            return
        except ShutOut as out:   # banned: routing by hand does not override a ban
            await self._refused(q, f"Courriel n° {q.number} non déposé dans le parcours {pathway.code} : "
                                   f"{out.sentence()}. Il reste en quarantaine.", f"shut-out-{q.number}")
            log.info("quarantine.routing_shut_out", number=q.number, banned=out.banned)
            return
        if mail.mdn_to and not mail.auto_submitted and mail.message_id:   # owed once a member has read it
            await d.store.want_mdn(q.mail_in_id, mail.from_address)
        await d.store.finish_mail(q.mail_in_id, "posted", pathway_id=pathway.id, event_id=event_id)
        await d.mail.finish_routing(q.number, None)
        d.metrics.relayed_in.inc()
        log.info("quarantine.routed", number=q.number, pathway_id=pathway.id)

    async def _refused(self, q: Quarantined, text: str, key: str) -> None:
        await self.d.mail.routing_refused(q.number)
        await tell_quarantine(self.d, text, txn_id("mss-q-told", key))
