"""Stage 4: the sharing law, asked now, for this sender and this pathway (an objection keeps the mail out).

A mail a coordinator routed by hand from the quarantine enters the pipeline here (bridge/hand_routing.py): its route
is theirs, and so is the decision (`mail.in.route`, by them), asked again at the moment it is posted."""
from __future__ import annotations

from typing import Protocol

from bridge.deps import BridgeSettings
from bridge.routing import Quarantine, Route
from bridge.stages.outcome import Outcome
from liaison.enforcement import decide_at
from liaison.sharing_facts import SharingStores
from liaison.stores.pathways import PathwayStore


class DecidePorts(Protocol):
    """What the sharing decision on an inbound mail reads: the pathway, the law's stores, the bot's id (the actor of
    a hand route without one)."""

    @property
    def settings(self) -> BridgeSettings: ...

    @property
    def pathways(self) -> PathwayStore: ...

    @property
    def sharing(self) -> SharingStores: ...


async def check(d: DecidePorts, sender: str, trusted: bool, where: Route) -> Outcome | None:
    """None when the mail may be posted; otherwise it goes (or stays) in quarantine with the rule named (and traced)."""
    pathway = await d.pathways.pathway(where.pathway.id)
    if where.basis == "hand":
        decided = await decide_at(d.sharing, "mail.in.route", pathway=pathway, recipient=sender,
                                  actor=where.by or d.settings.bot_user_id, trusted_domain=trusted)
    else:
        decided = await decide_at(d.sharing, "mail.in.post", pathway=pathway, recipient=sender, actor=sender,
                                  trusted_domain=trusted)
    if decided.allowed:
        return None
    return Outcome.quarantined(Quarantine(decided.decision.rule, decided.sentence()), sender, trusted)
