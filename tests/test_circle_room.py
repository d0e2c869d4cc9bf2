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


def _boards(client, room: str) -> tuple[list, list]:
    """The bot's task boards in `room` as `client` read them: the posts, and the in-place edits (m.replace)."""
    posts, edits = [], []
    for r, e in client.events:
        body = getattr(e, "body", "") or ""
        relates = (getattr(e, "source", {}).get("content") or {}).get("m.relates_to") or {}
        if r != room or "Tableau des tâches" not in body:
            continue
        (edits if relates.get("rel_type") == "m.replace" else posts).append(e)
    return posts, edits


async def test_tasks_across_the_rooms_the_board_one_edit_per_change_an_objection_and_the_closing(team):
    """The circle room lists only its social task; each change edits the one board (counted as the coordinator's
    client reads them); an objection hands the GP's open task back to the coordination; closing cancels the rest."""
    people, bot, room, circle = await _circle(team)
    coord, gp, social = people["coordination"], people["medecin"], people["social"]
    blood, _ = await coord.ask(room, f"!tache Bilan sanguin (NFS, iono) pour {gp.user_id} échéance demain")
    assert "Tâche n° 1 créée, Dr Paul Martin" in blood.body, blood.body
    aid, _ = await coord.ask(room, f"!tache Dossier d'aide à domicile pour {social.user_id} catégorie social")
    assert "Tâche n° 2 créée, Nadia Haddad" in aid.body, aid.body
    listed, _ = await social.ask(circle, "!taches")
    assert "n° 2 · Dossier d'aide à domicile" in listed.body and "Bilan sanguin" not in listed.body, listed.body
    await coord.wait_for(lambda r, e: r == room and len(_boards(coord, room)[1]) == 1, 30)

    objected, _ = await coord.ask(room, f"!opposition {gp.user_id}")
    assert "pour Dr Paul Martin (Médecin)" in objected.body, objected.body
    handed = await coord.wait_for(lambda r, e: r == room and "rendues à la coordination" in getattr(e, "body", ""), 30)
    assert "n° 1" in handed.body, handed.body
    await coord.wait_for(lambda r, e: r == room and len(_boards(coord, room)[1]) == 2, 30)
    last = _boards(coord, room)[1][-1]
    assert last.body.startswith("* Tableau des tâches")   # nio reads an edit's fallback: the new text after « * »
    assert "n° 1 · Bilan sanguin (NFS, iono) · demandée aux coordinat" in last.body, last.body

    closed, _ = await coord.ask(room, "!parcours clore fin de prise en charge")
    assert "Tâches ouvertes annulées avec lui : n° 1, 2" in closed.body, closed.body
    posts, edits = _boards(coord, room)
    assert len(posts) == 1 and len(edits) == 2, "one board, one edit per change, nothing else"
