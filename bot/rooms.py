"""Which room of a pathway a command is typed in, and what that room may show (decided, traced)."""
from __future__ import annotations

from bot.circle import CIRCLE_STATE, role_categories
from liaison.enforcement import Decided, decide_at
from liaison.stores.pathways import Pathway

CIRCLE_NO_CHANGE = ("Ce salon est le cercle élargi du parcours (CSP R.1110-2) : les données cliniques, l'équipe et "
                    "les consentements se gèrent dans le salon clinique.")


def room_kind(pathway: Pathway | None, room_id: str) -> str:
    if pathway is None:
        return "other"
    if room_id == pathway.room_id:
        return "clinical"
    return "circle" if room_id == pathway.circle_room_id else "other"


async def circle_categories(services, pathway: Pathway) -> frozenset[str]:
    """What the circle room shares: the categories of the non-health roles admitted in it."""
    found: set[str] = set()
    for user_id, state, _rule in await services.pathways.members(pathway.id):
        if state == CIRCLE_STATE:
            member = await services.roster.get(user_id)
            found |= set(role_categories(services, member.profession.key if member else None))
    return frozenset(found)


async def may_show(ctx, pathway: Pathway, category: str = "soins") -> Decided:
    """The answer of a command that shows `category` information, read by everyone in the room it was typed in."""
    kind = room_kind(pathway, ctx.room_id)
    circle = await circle_categories(ctx.services, pathway) if kind == "circle" else frozenset()
    return await decide_at(ctx.services.sharing, "command.show", pathway=pathway, recipient=ctx.sender, actor=ctx.sender,
                           room_kind=kind, circle_categories=circle, data_category=category)
