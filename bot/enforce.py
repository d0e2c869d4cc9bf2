"""Every path through one decision point: the facts are gathered and decided by `liaison.enforcement`.

After a change of consent or objection every room of the patient (each pathway's clinical room and circle
room) is evaluated again, with who is actually in it (not what the database last recorded), and those now
refused are removed at once — people and the MSSanté puppets of objected addresses — with the rule told in
the room and written to the trace.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from bot.circle import RolesPorts, role_categories
from bot.members import PeoplePorts, Person, kick_reason, naming, person
from bot.room_specs import COORDINATOR_LEVEL, RELAY_LEVEL
from bot.care_plan_post import CarePlanPost
from bot.task_board import TaskBoard
from liaison.enforcement import decide_at
from liaison.matrix import MatrixError
from liaison.sharing_facts import SharingStores
from liaison.stores.pathways import Pathway, PathwayStore
from liaison.stores.tasks import TaskStore

log = structlog.get_logger(__name__)


class EnforcePorts(PeoplePorts, RolesPorts, Protocol):
    """What evaluating a patient's rooms again reads and does (naming whom it removed, handing back their tasks)."""
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def boards(self) -> TaskBoard: ...
    @property
    def plans(self) -> CarePlanPost: ...


@dataclass
class Notices:
    """The rooms' notices of one change across many patients, posted once every removal is done (a removal is what
    the law asks at once; a notice costs an encrypted post, a new room key shared with every device), and the
    names they give, each looked up once."""
    waiting: list[tuple[str, dict, str]] = field(default_factory=list)   # (room, content, transaction id)
    names: dict[str, Person] = field(default_factory=dict)

    async def post(self, services: EnforcePorts, in_flight: int) -> None:
        sem = asyncio.Semaphore(in_flight)

        async def one(room: str, content: dict, txn: str) -> None:
            async with sem:
                try:
                    await services.matrix.send(room, content, txn_id=txn)
                except MatrixError as err:   # the removal is done and traced: a notice lost is logged
                    log.warning("enforce.notice_failed", error=str(err)[:200])
        await asyncio.gather(*(one(*w) for w in self.waiting))
        self.waiting.clear()


async def reevaluate(services: EnforcePorts, pathway: Pathway, actor: str, why: str,
                     only: str | None = None, notices: Notices | None = None) -> list[str]:
    """Remove at once, from every room of this pathway's patient, the members the policy now refuses; their ids.
    `only`: the one whose facts changed (a member's account, a correspondent's address), the others' decisions
    being what they were: only they are decided again. `notices`: the rooms' notices kept for later (`post`);
    without, each is posted after its removal."""
    removed: list[str] = []
    for other in await services.pathways.of_patient(pathway.patient_id):
        for room in (other.room_id, other.circle_room_id):
            if room and other.status in ("open", "closed"):
                removed += await _reevaluate_room(services, other, room, actor, why, only, notices)
    return sorted(set(removed))


async def align_coordination(services: EnforcePorts, pathway: Pathway) -> int:
    """The coordination's power (level 50) in this pathway's rooms follows the roster: a coordinator who lost the
    role loses it, a new one gets it; and only the coordination and the bridge invite (a room made when anyone could
    is raised).
    The number of rooms whose power levels changed."""
    coordinators = {m.user_id for m in await services.roster.members() if m.coordinator}
    bot = services.settings.bot_user_id
    changed = 0
    for room in (pathway.room_id, pathway.circle_room_id):
        if not room:
            continue
        try:
            levels = await services.matrix.state_event(room, "m.room.power_levels") or {}
            if not levels:   # never write power levels from nothing: every other level would fall to its default
                continue
            users = dict(levels.get("users", {}))
            wanted = {u: lvl for u, lvl in users.items() if lvl != COORDINATOR_LEVEL or u in coordinators}
            wanted |= {c: COORDINATOR_LEVEL for c in coordinators if c != bot and users.get(c, 0) < COORDINATOR_LEVEL}
            relay = services.settings.bridge_user_id
            if relay and room == pathway.room_id and users.get(relay, 0) < RELAY_LEVEL:
                wanted[relay] = RELAY_LEVEL   # it invites its puppets
            invite = max(int(levels.get("invite", 0)), RELAY_LEVEL)
            if wanted != users or invite != levels.get("invite"):
                await services.matrix.set_state(room, "m.room.power_levels",
                                                {**levels, "users": wanted, "invite": invite})
                changed += 1
        except MatrixError as err:
            log.warning("enforce.power_levels_failed", pathway_id=pathway.id, error=str(err)[:200])
    return changed


async def _reevaluate_room(services: EnforcePorts, pathway: Pathway, room: str, actor: str, why: str,
                           only: str | None, notices: Notices | None) -> list[str]:
    s = services.settings
    circle = room == pathway.circle_room_id
    try:
        present = await services.matrix.members(room)
    except MatrixError as err:
        log.warning("enforce.members_failed", pathway_id=pathway.id, error=str(err)[:200])
        return []
    removed = []
    for user_id in sorted(present):
        if user_id == s.bot_user_id or user_id == s.bridge_user_id:
            continue
        address = await _puppet_address(services, user_id) if s.is_bridged(user_id) else None
        if s.is_bridged(user_id) and address is None:
            continue
        if only is not None and only.casefold() != (address or user_id).casefold():
            continue
        categories = ["soins"]
        if circle and address is None:
            member = await services.roster.get(user_id)
            if member and not member.coordinator:
                categories = role_categories(services, member.profession.key) or ["soins"]
        decided = await decide_at(services.sharing, "puppet.keep" if address else "room.keep", pathway=pathway,
                                  recipient=address or user_id, actor=actor, categories=categories)
        if decided.allowed:
            continue
        try:
            await services.matrix.kick(room, user_id, kick_reason(why, decided.decision))
        except MatrixError as err:
            log.warning("enforce.kick_failed", pathway_id=pathway.id, error=str(err)[:200])
            continue
        handed: list[int] = []
        if address is None:
            await services.pathways.set_member(pathway.id, user_id, "revoked", decided.decision.rule)
            if not circle:
                handed = await _hand_back(services, pathway, user_id, actor, decided.decision.rule)
                if handed:
                    await services.boards.changed(pathway)
                    await services.plans.changed(pathway)   # a handed-back task of a goal: the plan shows it
        elif services.mail is not None:
            await services.mail.forget_puppet_room(user_id, room)
        who = address or user_id
        names = notices.names if notices is not None else {}
        if who not in names:
            names[who] = await person(services, who)
        tasks = (f" Ses tâches ouvertes (n° {', '.join(map(str, handed))}) sont rendues à la coordination, qui les "
                 "confie à quelqu'un d'autre (!taches)." if handed else "")
        notice = naming(names[who], " a été retiré(e) du salon : ", f"{decided.sentence()}.{tasks}")
        txn = f"liaison-retrait-{pathway.id}-{decided.trace}"
        if notices is not None:
            notices.waiting.append((room, notice, txn))
        else:
            await services.matrix.send(room, notice, txn_id=txn)
        removed.append(who)
    return removed


async def _hand_back(services: EnforcePorts, pathway: Pathway, user_id: str, actor: str, rule: str) -> list[int]:
    """The open tasks `user_id` held in this pathway, handed back to the coordination; their numbers."""
    handed = []
    for task in await services.tasks.of_pathway(pathway.id):
        if task.open and task.owner == user_id and await services.tasks.hand_back(task, actor, rule) is not None:
            handed.append(task.number)
    return handed


async def _puppet_address(services: EnforcePorts, user_id: str) -> str | None:
    """The MSSanté address a puppet stands for (None for the bridge's own account or an unknown one)."""
    return await services.mail.puppet_address(user_id) if services.mail is not None else None
