"""A change of fact, and everything it re-decides, in one place.

Membership follows the law over time: after any change of a fact a decision reads (a consent recorded, withdrawn
or come to its end; an objection recorded or lifted; a member who leaves the team or changes profession or role;
what the coordination records of a correspondent), every room of every patient concerned is evaluated again with
who is actually in it, and whoever the decision point now refuses is removed, the rule told in the room
(bot/enforce.py). Commands and jobs say which fact changed; this module finds what to re-decide.
"""
from __future__ import annotations

from typing import Protocol

import structlog

from bot.bridge_setup import BridgeSetupPorts, check_quarantine_members
from bot.enforce import EnforcePorts, align_coordination, reevaluate
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


async def member_changed(services: ChangePorts, user_id: str, actor: str) -> int:
    """A member's facts changed (left the team, another profession, another role): the coordination's power in the
    rooms of their pathways follows the roster, and every room of every patient whose pathway they are in is
    decided again; they are removed where the law no longer admits them (told in the room, with the rule). The
    number of pathways they were removed from."""
    try:
        await check_quarantine_members(services)   # the quarantine room is the coordination's
    except MatrixError as err:
        log.warning("team.quarantine_check_failed", error=str(err)[:200])
    pathways = [p for p, _ in await services.pathways.visible_to(user_id, everything=False)]
    patients, removed_from = set(), 0
    for pathway in pathways:
        await align_coordination(services, pathway)   # a coordinator demoted is no longer above the others
        if pathway.patient_id in patients:
            continue
        patients.add(pathway.patient_id)
        if user_id in await reevaluate(services, pathway, actor, "Changement dans l'équipe de la structure"):
            removed_from += sum(1 for p in pathways if p.patient_id == pathway.patient_id)
    return removed_from


async def correspondent_changed(services: ChangePorts, address: str, actor: str) -> int:
    """An external address's facts changed (its recorded profession or structure, or its record removed): every
    patient it wrote about is decided again, and its puppet removed where the law no longer admits it."""
    if services.mail is None:
        return 0
    pathways = [await services.pathways.pathway(p) for p in await services.mail.correspondent_pathways(address)]
    patients, removed_from = set(), 0
    for pathway in pathways:
        if pathway.patient_id in patients or pathway.status not in ("open", "closed"):
            continue
        patients.add(pathway.patient_id)
        if address.lower() in {w.lower() for w in await reevaluate(services, pathway, actor,
                                                                    "Changement d'un correspondant de la structure")}:
            removed_from += sum(1 for p in pathways if p.patient_id == pathway.patient_id)
    return removed_from
