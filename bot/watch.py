"""Invitations made directly in Element bypass the bot: check them, and revoke what the policy refuses."""
from __future__ import annotations

from typing import Protocol

import structlog

from bot.circle import CIRCLE_STATE, RolesPorts, role_categories
from bot.members import PeoplePorts, kick_reason, naming, person
from liaison.enforcement import decide_at
from liaison.matrix import Membership, MatrixError
from liaison.sharing_facts import SharingStores
from liaison.stores.pathways import Pathway, PathwayStore
from policies.professions import Category

log = structlog.get_logger(__name__)

_STATES = {"invite": "invited", "join": "joined", "leave": "left", "ban": "left"}


class WatchPorts(PeoplePorts, RolesPorts, Protocol):
    """What checking a membership reads and does (and naming who invited whom)."""
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def sharing(self) -> SharingStores: ...


class MembershipWatch:
    def __init__(self, services: WatchPorts) -> None:
        self.s = services

    async def handle(self, changes: list[Membership]) -> None:
        for change in changes:
            try:
                await self._one(change)
            except MatrixError as err:
                log.warning("watch.failed", room_id=change.room_id, user_id=change.user_id, error=str(err))

    async def _joins_team(self, pathway: Pathway, m: Membership) -> bool:
        """A team member (or the coordination) who invites a health professional of the structure brings them
        into this patient's team of care (CSP L.1110-12); anyone else goes through consent. Only a question:
        the team grows once the invitation is decided and allowed (an objection still wins)."""
        invitee, inviter = await self.s.roster.get(m.user_id), await self.s.roster.get(m.sender)
        team = await self.s.pathways.usual_team(pathway.patient_id)
        return bool(invitee and invitee.profession.category is Category.HEALTH
                    and (m.sender in team or (inviter and inviter.coordinator)))

    async def _circle_only(self, pathway: Pathway, user_id: str) -> bool:
        return any(u == user_id and state == CIRCLE_STATE for u, state, _ in await self.s.pathways.members(pathway.id))

    async def _one(self, m: Membership) -> None:
        bot, bridge = self.s.settings.bot_user_id, self.s.settings.bridge_user_id
        if m.user_id in (bot, bridge) or m.membership not in _STATES:
            return
        if self.s.settings.is_bridged(m.user_id) and (m.membership != "invite" or m.sender == bridge):
            return   # a puppet: the bridge decides and traces its relays, the bot its removal (bot/enforce.py)
        pathway = await self.s.pathways.by_room(m.room_id)
        if pathway is None:
            return
        circle = m.room_id == pathway.circle_room_id
        if m.membership != "invite" or m.sender == bot:
            if m.membership != "invite" and (not circle or await self._circle_only(pathway, m.user_id)):
                # one state per room: leaving the circle room says nothing of one's place in the clinical room
                if circle and m.membership == "join":
                    return   # still « circle »: what its role shares there is read from that state (bot/rooms.py)
                await self.s.pathways.set_member(pathway.id, m.user_id, _STATES[m.membership], "membership")
            return
        joins = await self._joins_team(pathway, m)
        invitee = await self.s.roster.get(m.user_id)
        non_health = bool(invitee and invitee.profession.category is not Category.HEALTH and not invitee.coordinator)
        key = invitee.profession.key if invitee else None
        categories = role_categories(self.s, key) if circle and non_health else ["soins"]
        decided = await decide_at(self.s.sharing, "room.invite", pathway=pathway, recipient=m.user_id, actor=m.sender,
                                  categories=categories, joining_team=joins)
        decision, ref = decided.decision, decided.trace
        if decision.allowed and joins:
            team = await self.s.pathways.usual_team(pathway.patient_id)
            await self.s.pathways.set_usual_team(pathway.patient_id, [*team, m.user_id], actor=m.sender)
        if decision.allowed:
            state = CIRCLE_STATE if circle and non_health else "invited"
            await self.s.pathways.set_member(pathway.id, m.user_id, state, decision.rule)
            return
        await self.s.matrix.kick(m.room_id, m.user_id, kick_reason("Invitation retirée", decision))
        await self.s.pathways.set_member(pathway.id, m.user_id, "revoked", decision.rule)
        told = naming("Invitation de ", await person(self.s, m.user_id), " par ", await person(self.s, m.sender),
                      f" retirée : {decided.sentence()}.")
        await self.s.matrix.send(m.room_id, told, txn_id="revoke-" + m.event_id[1:40])
        log.info("watch.revoked", room_id=m.room_id, user_id=m.user_id, rule=decision.rule, trace=ref)
