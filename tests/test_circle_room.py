"""The circle room (#13): a social worker there sees nothing clinical and changes nothing clinical; one membership
state per room (leaving the circle room does not shield anyone from a later objection in the clinical room)."""
from __future__ import annotations

from nio import RoomMemberEvent

from liaison.db import open_database
from liaison.stores.trace import Trace
from tests.test_pathways import INS, OPEN, _joined, _room_of, team  # noqa: F401 — the fixture

CLINICAL = ("DURAND", "Marcel", INS, "12/05/1948", "Problèmes", "Traitements", "insuffisance")


async def _circle(team):
    people, bot, desk = team
    coord, gp, social = people["coordination"], people["medecin"], people["social"]
    reply, _ = await coord.ask(desk, f"{OPEN} --equipe medecin", timeout=60)
    room = _room_of(reply)
    await _joined(coord, room)
    await _joined(gp, room)
    await coord.ask(room, "!parcours resume traitements bisoprolol 2,5 mg")
    await coord.ask(room, f"!consentement enregistrer {social.user_id} écrit catégories:social")
    invited, _ = await coord.ask(room, f"!parcours inviter {social.user_id}")
    circle = _room_of(invited)
    await _joined(social, circle)
    return people, bot, room, circle


async def test_a_social_worker_in_the_circle_room_sees_and_changes_nothing_clinical(team):
    people, bot, room, circle = await _circle(team)
    social = people["social"]
    info, _ = await social.ask(circle, "!parcours info")
    assert "Cercle élargi" in info.body and "social" in info.body and "room.circle_category" in info.body
    leaked = [w for w in CLINICAL if w in info.body]
    assert not leaked, f"nothing clinical in the circle room: {leaked}"
    refusals = {
        "!parcours resume traitements aucun": "cercle élargi",
        "!parcours inviter @quelquun:liaison.localhost": "cercle élargi",
        "!parcours clore fin": "coordination",          # not hers anyway
        "!docs": "cercle élargi",
        "!doc 1": "cercle élargi",
        "!consentements": "cercle élargi",
        f"!opposition {people['medecin'].user_id}": "cercle élargi",
    }
    for command, expected in refusals.items():
        answer, _ = await social.ask(circle, command)
        assert expected in answer.body, (command, answer.body)
        assert not [w for w in CLINICAL if w in answer.body], (command, answer.body)
    summary, _ = await people["medecin"].ask(room, "!parcours info")
    assert "bisoprolol 2,5 mg" in summary.body, "the clinical summary is untouched and shown in the clinical room"
    trace = Trace(await open_database(bot.database_url))
    shown = [e for e in await trace.entries() if e.action == "montrer"]
    assert any(e.rule == "room.circle_category" and not e.allowed and e.subject == social.user_id for e in shown)
    assert any(e.rule == "room.clinical" and e.allowed for e in shown), "decided and traced either way"


async def test_leaving_the_circle_room_does_not_shield_from_an_objection(team):
    people, bot, room, circle = await _circle(team)
    coord, gp = people["coordination"], people["medecin"]
    await _joined(gp, circle)
    await gp.client.room_leave(circle)
    await coord.wait_for(lambda r, e: r == circle and isinstance(e, RoomMemberEvent) and e.state_key == gp.user_id
                         and e.membership == "leave", 30)
    objected, _ = await coord.ask(room, f"!opposition {gp.user_id}")
    assert "pour Dr Paul Martin (Médecin)" in objected.body, objected.body
    removed = await coord.wait_for(lambda r, e: r == room and isinstance(e, RoomMemberEvent)
                                   and e.state_key == gp.user_id and e.membership == "leave", 30)
    assert removed.sender == bot.user_id, "removed from the clinical room, though they had left the circle room"
