"""A change in the structure's team is a change of fact: the rooms of every patient the member is in are decided
again, and they are removed where the law no longer admits them (issue 24, item 1: `!equipe retirer`, a change of
profession). On the fakes."""
from __future__ import annotations

import pytest

from policies.ins import nir_key
from tests.fakes import COORD, GP, NURSE, close_services, make_services
from tests.test_subcommands import OPEN, World

SECOND_NIR = "2520619004012"   # another patient, a woman born in June 1952
SECOND = (f"!parcours ouvrir {SECOND_NIR}{nir_key(SECOND_NIR):02d} diabete 12/06/1952 F Petit Jeanne")


@pytest.fixture
async def world(tmp_path):
    services = await make_services(tmp_path)
    yield World(services)
    await close_services(services)


async def _nurse_in(world: World, line: str) -> str:
    room = await world.open(team="medecin,infirmier", line=line)
    world.m.accept(room, NURSE)
    return room


async def test_a_member_removed_from_the_team_leaves_every_patient_s_room(world):
    rooms = [await _nurse_in(world, OPEN), await _nurse_in(world, SECOND)]
    reply = await world.say(COORD, f"!equipe retirer {NURSE}")
    assert reply.text == (f"{NURSE} ne fait plus partie de l'équipe (modification tracée). "
                          "Retiré(e) des salons de 2 parcours où la loi ne l'admet plus.")
    for room in rooms:
        assert world.m.room(room).membership[NURSE] == "leave"
        assert any("a été retiré(e) du salon" in b and "outside.no_consent" in b for b in world.m.bodies(room))
    assert {k[0] for k in world.m.kicked} == set(rooms)
    assert all(k[1] == NURSE for k in world.m.kicked), "nobody else"
    assert world.m.room(rooms[0]).membership[GP] == "join"


async def test_a_member_who_becomes_a_non_health_professional_leaves_the_clinical_rooms(world):
    room = await _nurse_in(world, OPEN)
    reply = await world.say(COORD, f"!equipe ajouter {NURSE} assistante sociale")
    assert reply.text.endswith("Retiré(e) des salons de 1 parcours où la loi ne l'admet plus."), reply.text
    assert world.m.room(room).membership[NURSE] == "leave"


async def test_a_change_that_keeps_the_law_s_answer_removes_nobody(world):
    room = await _nurse_in(world, OPEN)
    reply = await world.say(COORD, f"!equipe ajouter {NURSE} infirmière 10101010105")
    assert "ajouté(e) à l'équipe" in reply.text and "Retiré" not in reply.text, reply.text
    assert world.m.kicked == []
    assert world.m.room(room).membership[NURSE] == "join"


async def test_the_coordination_s_power_follows_the_roster_in_the_member_s_rooms(world):
    room = await world.open()
    levels = lambda: world.m.state_now(room, "m.room.power_levels")["users"]   # noqa: E731
    assert GP not in levels() and levels()[COORD] == 50
    promoted = await world.say(COORD, f"!equipe ajouter {GP} médecin coordination")
    assert "coordination" in promoted.text and levels()[GP] == 50
    demoted = await world.say(COORD, f"!equipe ajouter {GP} médecin")
    assert "Retiré" not in demoted.text, "still in the team of care"
    assert GP not in levels() and levels()[COORD] == 50, "an ex-coordinator is no longer above the others"
    assert world.m.room(room).membership[GP] == "join"


async def test_only_the_coordination_and_the_bridge_invite_in_a_patient_s_rooms_and_an_older_room_is_raised(world):
    """Issue 24, item 10: the power levels say it first (the others ask the bot, `!parcours inviter`; the bridge
    invites its puppets); a room made when any member could invite is raised at the next change of the coordination."""
    from tests.fakes import BRIDGE

    room = await world.open()
    levels = lambda: world.m.state_now(room, "m.room.power_levels")   # noqa: E731
    assert levels()["invite"] == 10 and levels()["kick"] == 50
    assert levels()["users"] == {COORD: 50, BRIDGE: 10}
    world.m.room(room).state[("m.room.power_levels", "")] = {**levels(), "invite": 0, "users": {COORD: 50}}   # made before
    await world.say(COORD, f"!equipe ajouter {GP} médecin coordination")
    assert levels()["invite"] == 10 and levels()["users"] == {COORD: 50, GP: 50, BRIDGE: 10} and levels()["kick"] == 50
