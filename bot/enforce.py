"""Every path through one decision point: facts are gathered here, `policies.sharing.decide` decides.

After a change of consent or objection the pathway's members are evaluated again and those
now refused are removed at once, with the rule told in the room and written to the trace.
"""
from __future__ import annotations

import structlog

from bot.circle import CIRCLE_STATE, role_categories
from liaison.pathway_store import Pathway
from liaison.matrix import MatrixError
from liaison.sharing_facts import ACTIVE, decide_for
from policies.sharing import Action

log = structlog.get_logger(__name__)


async def decide_for_categories(services, categories: list[str], **kw):
    """For the circle room: allowed when the policy allows at least one of the role's categories."""
    decision = None
    for category in categories or ["social"]:
        decision = await decide_for(services, data_category=category, **kw)
        if decision.allowed:
            break
    return decision


async def reevaluate(services, pathway: Pathway, actor: str, why: str) -> list[str]:
    """Remove at once the members the policy now refuses; returns their ids."""
    removed = []
    for user_id, state, _rule in await services.pathways.members(pathway.id):
        if state not in (*ACTIVE, CIRCLE_STATE) or user_id == services.settings.bot_user_id:
            continue
        room, categories = pathway.room_id, ["soins"]
        if state == CIRCLE_STATE:
            member = await services.roster.get(user_id)
            room = pathway.circle_room_id
            categories = role_categories(services, member.profession.key if member else None)
        decision = await decide_for_categories(services, categories, pathway=pathway, user_id=user_id, actor=actor,
                                               action=Action.JOIN)
        if decision.allowed:
            continue
        ref = await services.trace.append(actor=actor, action="retirer", subject=user_id, decision=decision,
                                          patient_id=pathway.patient_id, pathway_id=pathway.id)
        try:
            await services.matrix.kick(room, user_id, f"{why} : {decision.reason}")
        except MatrixError as err:
            log.warning("enforce.kick_failed", pathway_id=pathway.id, user_id=user_id, error=str(err))
            continue
        await services.pathways.set_member(pathway.id, user_id, "revoked", decision.rule)
        await services.matrix.send(room, {
            "msgtype": "m.notice",
            "body": f"{user_id} a été retiré(e) du salon : {decision.reason} (règle {decision.rule}, "
                    f"{decision.basis} ; trace {ref})."}, txn_id=f"liaison-retrait-{pathway.id}-{ref}")
        removed.append(user_id)
    return removed
