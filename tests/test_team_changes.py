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


async def test_only_the_coordination_invites_in_a_patient_s_rooms_and_an_older_room_is_raised(world):
    """Issue 24, item 10: the power levels say it first (the others ask the bot, `!parcours inviter`); a room made
    when any member could invite is raised at the next change of the coordination."""
    room = await world.open()
    levels = lambda: world.m.state_now(room, "m.room.power_levels")   # noqa: E731
    assert levels()["invite"] == 50 and levels()["kick"] == 50
    world.m.room(room).state[("m.room.power_levels", "")] = {**levels(), "invite": 0}   # made before
    await world.say(COORD, f"!equipe ajouter {GP} médecin coordination")
    assert levels()["invite"] == 50 and levels()["users"][GP] == 50 and levels()["kick"] == 50


async def test_the_quarantine_room_follows_the_coordination(world):
    """A new coordinator is invited to the quarantine room, an ex-coordinator and anyone else there is removed
    (issue 24, item 5)."""
    from bot.bridge_setup import prepare_bridge
    from tests.fakes import BRIDGE, OUTSIDER

    await prepare_bridge(world.s)
    (made,) = [c for c in world.m.created if c["name"] == "Quarantaine MSSanté"]
    quarantine = made["room_id"]
    world.m.accept(quarantine, COORD)
    await world.say(COORD, f"!equipe ajouter {GP} médecin coordination")
    assert world.m.room(quarantine).membership[GP] == "invite"
    world.m.accept(quarantine, GP)
    world.m.room(quarantine).membership[OUTSIDER] = "join"   # came in before the bot alone could invite
    await world.say(COORD, f"!equipe ajouter {GP} médecin")
    assert world.m.room(quarantine).membership[GP] == "leave" and world.m.room(quarantine).membership[OUTSIDER] == "leave"
    assert world.m.room(quarantine).membership[COORD] == "join" and BRIDGE in world.m.room(quarantine).membership


async def test_recording_what_a_correspondent_is_applies_the_objections_that_now_reach_it(world):
    """A change of what the coordination records of an external address is a change of fact: its puppet is decided
    again in the rooms of the patients it wrote about. An objection to social workers reaches the address once it is
    recorded as one, and its replies are decided under the non-health rules (issue 24, items 1 and 6)."""
    from bridge.store import BridgeStore, Puppet
    from liaison.enforcement import decide_at

    address, puppet = "as@chu.mssante.fr", "@mss_0c6f2a9e:hs"
    room = await world.open()
    pathway = await world.pathway(room)
    await BridgeStore(world.s.pathways.engine).add_puppet(Puppet(address, puppet, "A. S."))
    await world.s.mail.add_correspondent(pathway.id, address, "ins")   # it wrote about this patient
    world.m.add_account(puppet, "A. S.")
    world.m.room(room).membership[puppet] = "join"
    objected = await world.say(COORD, "!opposition assistante sociale", room)
    assert objected.text.startswith("Opposition enregistrée"), objected.text
    assert world.m.room(room).membership[puppet] == "leave", "its profession unknown: the cautious reading"
    assert "objection.unknown_profession" in world.m.kicked[-1][2]

    same = await world.say(COORD, f"!equipe ajouter {address} médecin")
    assert "Retiré" not in same.text
    kept = await decide_at(world.s.sharing, "puppet.keep", pathway=pathway, recipient=address, actor=COORD)
    assert kept.allowed, kept.decision   # its next mail brings it back (the bridge decides then)
    world.m.room(room).membership[puppet] = "join"
    changed = await world.say(COORD, f"!equipe ajouter {address} assistante sociale")
    assert changed.text.endswith("Retiré(e) des salons de 1 parcours où la loi ne l'admet plus."), changed.text
    assert world.m.room(room).membership[puppet] == "leave" and "objection.profession" in world.m.kicked[-1][2]
    await world.say(COORD, "!opposition lever assistante sociale", room)
    reply = await decide_at(world.s.sharing, "mail.out.reply", pathway=pathway, recipient=address, actor=GP)
    assert not reply.decision.allowed and reply.decision.rule.startswith("non_health."), reply.decision
