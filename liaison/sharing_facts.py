"""Gather the facts of one sharing question from the database, for `policies.sharing.decide`.

Shared by the bot and the bridge: `stores` is anything with `roster`, `consents`,
`pathways` and `knobs` (the bot's Services, the bridge's own wiring).
"""
from __future__ import annotations

from datetime import datetime, timezone

from liaison.pathway_store import Pathway
from policies.professions import Category
from policies.sharing import Action, Facts, Recipient, decide

ACTIVE = ("invited", "joined")


def category_of(knobs, profession) -> Category:
    """The policy says which professions count as health professions; the catalogue says the rest."""
    if profession.key in knobs.health_professions:
        return Category.HEALTH
    return Category.OTHER if profession.category is Category.HEALTH else profession.category


async def facts_for(stores, *, pathway: Pathway, user_id: str, actor: str, action: Action,
                    data_category: str = "soins", correspondent: bool = False, trusted_domain: bool = False) -> Facts:
    """For an external address: `correspondent`, it wrote to this pathway about this patient;
    `trusted_domain`, its domain is on the MSSanté trusted list."""
    roster = stores.roster
    member = await roster.get(user_id)
    actor_member = await roster.get(actor)
    consents, objections = await stores.consents.facts(pathway.patient_id)
    team = set(await stores.pathways.usual_team(pathway.patient_id))
    team |= {u for u, state, rule in await stores.pathways.members(pathway.id)
             if state in ACTIVE and "team." in rule}   # in by a team-of-care rule
    recipient = Recipient(
        kind="member" if user_id.startswith("@") else "external", user_or_address=user_id,
        category=category_of(stores.knobs, member.profession) if member else None, in_roster=member is not None,
        roles=member.roles if member else frozenset(), correspondent=correspondent,
        trusted_domain=trusted_domain)
    return Facts(action=action, actor=actor, actor_roles=actor_member.roles if actor_member else frozenset(),
                 recipient=recipient, recipient_profession=member.profession.key if member else None,
                 recipient_structure=member.structure if member else None, team=frozenset(team),
                 consents=consents, objections=objections, data_category=data_category,
                 now=datetime.now(timezone.utc), knobs=stores.knobs)


async def decide_for(stores, **kw):
    return decide(await facts_for(stores, **kw))
