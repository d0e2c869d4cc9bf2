"""Invitations made in Element, checked by the bot (bot/watch.py), on the fakes: a health professional a team
member invites joins the patient's team of care only once the invitation is decided and allowed; an objection
still wins and leaves the team as it was (issue 24, item 10)."""
from __future__ import annotations

import pytest

from bot.watch import MembershipWatch
from liaison.matrix import Membership
from tests.fakes import COORD, GP, NURSE, close_services, make_services
from tests.test_subcommands import World


@pytest.fixture
async def world(tmp_path):
    services = await make_services(tmp_path)
    yield World(services)
    await close_services(services)


def _invite(room: str, sender: str, user_id: str) -> Membership:
    return Membership(room, f"$invite-{user_id[1:5]}", sender, user_id, "invite", None)


async def test_a_nurse_a_gp_invites_in_element_joins_the_team_of_care(world):
    room = await world.open()   # the GP's team
    world.m.room(room).membership[NURSE] = "invite"
    await MembershipWatch(world.s).handle([_invite(room, GP, NURSE)])
    pathway = await world.pathway(room)
    assert NURSE in await world.s.pathways.usual_team(pathway.patient_id)
    assert world.m.room(room).membership[NURSE] == "invite", "allowed: the invitation stands"


async def test_an_objection_wins_and_the_team_is_not_grown_by_a_refused_invitation(world):
    room = await world.open()
    reply = await world.say(COORD, f"!opposition {NURSE}", room)
    assert reply.text.startswith("Opposition enregistrée"), reply.text
    world.m.room(room).membership[NURSE] = "invite"
    await MembershipWatch(world.s).handle([_invite(room, GP, NURSE)])
    pathway = await world.pathway(room)
    assert world.m.kicked[-1][:2] == (room, NURSE) and "objection.person" in world.m.kicked[-1][2]
    assert NURSE not in await world.s.pathways.usual_team(pathway.patient_id), \
        "the patient's team of care is not grown by an invitation the law refused"


async def test_a_social_worker_who_joins_the_circle_room_keeps_what_her_role_shares_there(world):
    """Her join in the circle room keeps her « circle » state, from which the room's categories are read: the circle
    room then still shows the social information (found by the tasks' journey on Synapse: her join turned her into
    a clinical « joined » member, and the circle room refused everything)."""
    from bot.rooms import circle_categories
    from tests.fakes import SOCIAL
    from tests.test_subcommands import room_of
    room = await world.open()
    await world.consent(room, SOCIAL, "écrit catégories:social")
    circle = room_of((await world.say(COORD, f"!parcours inviter {SOCIAL}", room)).text)
    world.m.accept(circle, SOCIAL)
    await MembershipWatch(world.s).handle([Membership(circle, "$join-social", SOCIAL, SOCIAL, "join", "invite")])
    pathway = await world.pathway(room)
    assert (SOCIAL, "circle") in {(u, state) for u, state, _ in await world.s.pathways.members(pathway.id)}
    assert "social" in await circle_categories(world.s, pathway)
    await MembershipWatch(world.s).handle([Membership(circle, "$leave-social", SOCIAL, SOCIAL, "leave", "join")])
    assert (SOCIAL, "left") in {(u, state) for u, state, _ in await world.s.pathways.members(pathway.id)}
