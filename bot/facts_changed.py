"""A change of fact, and everything it re-decides, in one place.

Membership follows the law over time: after any change of a fact a decision reads (a consent recorded, withdrawn
or come to its end; an objection recorded or lifted; a member who leaves the team or changes profession or role;
what the coordination records of a correspondent), every room of every patient concerned is evaluated again with
who is actually in it, and whoever the decision point now refuses is removed, the rule told in the room
(bot/enforce.py). Commands and jobs say which fact changed; this module finds what to re-decide.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from bot.bridge_setup import BridgeSetupPorts, check_quarantine_members
from bot.enforce import EnforcePorts, Notices, align_coordination, reevaluate
from liaison.matrix import MatrixError
from liaison.stores.pathways import Pathway

log = structlog.get_logger(__name__)


class ChangePorts(EnforcePorts, BridgeSetupPorts, Protocol):
    """What re-deciding after a change reads and does: the rooms evaluated again (bot/enforce.py) and the
    coordination's quarantine room (bot/bridge_setup.py)."""


async def patient_changed(services: EnforcePorts, pathway: Pathway, actor: str, why: str) -> list[str]:
    """A fact about this pathway's patient changed (a consent, an objection): every room of the patient decided
    again. Who was removed (user ids, and the addresses of removed puppets)."""
    return await reevaluate(services, pathway, actor, why)


async def member_changed(services: ChangePorts, user_id: str, actor: str, *, coordination: bool = True) -> int:
    """A member's facts changed (left the team, another profession, another role): they are decided again in every
    room of every patient whose pathway they are in, and removed where the law no longer admits them (told in the
    room, with the rule); then, when their place in the coordination changed (`coordination`), its power in those
    rooms and its quarantine room follow the roster. The number of pathways they were removed from. Patients are
    taken a few at a time (IN_FLIGHT)."""
    pathways = [p for p, _ in await services.pathways.visible_to(user_id, everything=False)]
    notices = Notices()

    async def one_patient(theirs: list[Pathway]) -> int:
        removed = await reevaluate(services, theirs[0], actor, "Changement dans l'équipe de la structure",
                                   only=user_id, notices=notices)
        if coordination:
            for pathway in theirs:
                await align_coordination(services, pathway)   # a coordinator demoted is no longer above the others
        return len(theirs) if user_id in removed else 0
    try:
        removed_from = sum(await _by_patient(pathways, one_patient))
    finally:   # every room told, also when one patient failed
        await notices.post(services, IN_FLIGHT)
    if coordination:
        try:
            await check_quarantine_members(services)   # the quarantine room is the coordination's
        except MatrixError as err:
            log.warning("team.quarantine_check_failed", error=str(err)[:200])
    return removed_from


async def correspondent_changed(services: ChangePorts, address: str, actor: str) -> int:
    """An external address's facts changed (its recorded profession or structure, or its record removed): every
    patient it wrote about is decided again for it, and its puppet removed where the law no longer admits it."""
    if services.mail is None:
        return 0
    pathways = [await services.pathways.pathway(p) for p in await services.mail.correspondent_pathways(address)]

    notices = Notices()

    async def one_patient(theirs: list[Pathway]) -> int:
        removed = await reevaluate(services, theirs[0], actor, "Changement d'un correspondant de la structure",
                                   only=address, notices=notices)
        return len(theirs) if address.lower() in {w.lower() for w in removed} else 0
    try:
        removed_from = sum(await _by_patient([p for p in pathways if p.status in ("open", "closed")], one_patient))
    finally:   # every room told, also when one patient failed
        await notices.post(services, IN_FLIGHT)
    return removed_from


IN_FLIGHT = 8   # patients re-decided at once: their rooms are distinct, the homeserver's round trips overlap


async def _by_patient(pathways: list[Pathway], one: Callable[[list[Pathway]], Awaitable[int]]) -> list[int]:
    """`one` for each patient's pathways (in the order first seen), IN_FLIGHT patients at a time."""
    grouped: dict[str, list[Pathway]] = {}
    for pathway in pathways:
        grouped.setdefault(pathway.patient_id, []).append(pathway)
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def bounded(theirs: list[Pathway]) -> int:
        async with sem:
            return await one(theirs)
    done = await asyncio.gather(*(bounded(theirs) for theirs in grouped.values()), return_exceptions=True)
    failed = [d for d in done if isinstance(d, BaseException)]
    if failed:   # every other patient was decided again; the first failure is reported
        raise failed[0]
    return [d for d in done if not isinstance(d, BaseException)]
