"""Mails a coordinator routed by hand from the quarantine (`!mss router <n> <parcours>`), posted in the chosen
pathway: they enter the inbound pipeline (bridge/stages/) at `decide` with the coordinator's route, so they are
decided again at the moment they are posted (an objection recorded since the command wins), read off the event loop
by the inbound side's parser, posted and acknowledged like any other mail. This module is the loop that finds them."""
from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from bridge.documents_in import AntivirusUnavailable
from bridge.parse_pool import MailParser
from bridge.routing import Route, ref
from bridge.stages import PipelinePorts, run_by_hand
from liaison.stores.mail import Quarantined

log = structlog.get_logger(__name__)

POLL_S = 0.5   # the bot writes the coordinator's decision in the database; it is posted within this delay


class HandRoutingPorts(PipelinePorts, Protocol):
    """What finding the mails routed by hand uses (the mail store, the pathways) is the pipeline's already."""


class HandRouting:
    def __init__(self, d: HandRoutingPorts, parser: MailParser) -> None:
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
        """One routed mail through the inbound pipeline from `decide`, with the coordinator's route."""
        assert q.pathway_id, "a mail routed by hand has the pathway it was routed to (!mss router)"
        pathway = await self.d.pathways.pathway(q.pathway_id)
        where = Route(ref(pathway), None, f"à la main par la coordination (quarantaine n° {q.number})",
                      basis="hand", by=q.decided_by or "")
        try:
            await run_by_hand(self.d, self.parser, q, where)
        except AntivirusUnavailable:   # stays « routing »: posted once clamd answers
            log.warning("quarantine.routing_waits_antivirus", number=q.number)
