"""Which room of a pathway a command is typed in, and what that room may show (decided, traced)."""
from __future__ import annotations

from typing import Protocol

from bot.circle import CIRCLE_STATE, RolesPorts, role_categories
from bot.ports import RosterPort
from bot.registry import Context
from liaison.enforcement import Decided, decide_at, decide_many
from liaison.sharing_facts import Question, SharingStores
from liaison.stores.pathways import Pathway, PathwayStore

CIRCLE_NO_CHANGE = ("Ce salon est le cercle élargi du parcours (CSP R.1110-2) : les données cliniques, l'équipe et "
                    "les consentements se gèrent dans le salon clinique.")


def room_kind(pathway: Pathway | None, room_id: str) -> str:
    if pathway is None:
        return "other"
    if room_id == pathway.room_id:
        return "clinical"
    return "circle" if room_id == pathway.circle_room_id else "other"


class CategoriesPorts(RolesPorts, Protocol):
    """What telling the circle room's categories reads: its members, their roles, the knobs."""
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def roster(self) -> RosterPort: ...


class ShowPorts(CategoriesPorts, Protocol):
    """What deciding a command's answer reads: the circle's categories, and the sharing decision."""
    @property
    def sharing(self) -> SharingStores: ...


async def circle_categories(services: CategoriesPorts, pathway: Pathway) -> frozenset[str]:
    """What the circle room shares: the categories of the non-health roles admitted in it."""
    found: set[str] = set()
    for user_id, state, _rule in await services.pathways.members(pathway.id):
        if state == CIRCLE_STATE:
            member = await services.roster.get(user_id)
            found |= set(role_categories(services, member.profession.key if member else None))
    return frozenset(found)


async def may_show(ctx: Context[ShowPorts], pathway: Pathway, category: str = "soins") -> Decided:
    """The answer of a command that shows `category` information of `pathway`, read by everyone in the room it was
    typed in (a direct conversation: by the one who typed it; the coordination's room: by the coordination)."""
    kind = room_kind(pathway, ctx.room_id)
    if kind == "other" and ctx.room_kind in ("direct", "coordination"):
        kind = ctx.room_kind
    return await show_in(ctx.services, kind, pathway, ctx.sender, category)


async def show_in(services: ShowPorts, kind: str, pathway: Pathway | None, reader: str,
                  category: str = "soins") -> Decided:
    """Decide (and trace) `command.show`: `pathway`'s `category` information in a room of `kind`, asked by `reader`."""
    circle = await circle_categories(services, pathway) if kind == "circle" and pathway else frozenset()
    return await decide_at(services.sharing, "command.show", pathway=pathway, recipient=reader, actor=reader,
                           room_kind=kind, circle_categories=circle, data_category=category)


async def may_show_many(ctx: Context[ShowPorts], pathways: list[Pathway], category: str = "soins") -> list[Decided]:
    """`may_show` for each of `pathways` (a list across patients), decided and traced together: one entry per
    pathway, written in one transaction."""
    questions = []
    for pathway in pathways:
        kind = room_kind(pathway, ctx.room_id)
        if kind == "other" and ctx.room_kind in ("direct", "coordination"):
            kind = ctx.room_kind
        circle = await circle_categories(ctx.services, pathway) if kind == "circle" else frozenset()
        questions.append(Question(pathway, ctx.sender, category, kind, circle))
    return await decide_many(ctx.services.sharing, "command.show", questions, actor=ctx.sender)
