"""Issue 25 against a real Synapse and the real bot: a request to the nurses of a pathway, taken by the second nurse
while the first is offline; the first, back, finds it taken; each sees their own tasks in a direct conversation."""
from __future__ import annotations

import re

from nio import RoomMemberEvent

from policies.ins import nir_key
from tests.support.clinician import Clinician
from tests.support.element import ElementDevice

NIR = "2480575123456"                      # a woman born in May 1948
INS = f"{NIR}{nir_key(NIR):02d}"
OPEN = f"!parcours ouvrir {INS} insuffisance-cardiaque 12/05/1948 F Durand Jeanne --equipe infirmier"
TEXT = "Peser Mme Durand, noter l'œdème des « chevilles »\net la dyspnée"


async def _joined(client, room: str) -> None:
    await client.wait_for(lambda r, e: r == room and isinstance(e, RoomMemberEvent)
                          and e.state_key == client.user_id and e.membership == "join", 30)


async def test_a_request_to_the_nurses_is_taken_by_the_second_while_the_first_is_offline(clinician, bot_process,
                                                                                         synapse, tmp_path):
    people = {role: await clinician(role) for role in ("coordination", "infirmiere", "infirmier")}
    coord, first, second = people["coordination"], people["infirmiere"], people["infirmier"]
    roster = [{"user_id": coord.user_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True},
              {"user_id": first.user_id, "name": "Sophie Bernard", "profession": "infirmière"},
              {"user_id": second.user_id, "name": "Marc Blanc", "profession": "infirmier"}]
    bot = bot_process(staff=[], roster=roster, pathways={"ins_test_mode": True})
    desk = await coord.create_room([bot.user_id])
    await coord.wait_joined(desk, bot.user_id)
    opened, _ = await coord.ask(desk, OPEN, timeout=60)
    room = re.search(r"matrix\.to/#/(![A-Za-z0-9_\-.:]+)", opened.body).group(1)
    for member in (coord, first, second):
        await _joined(member, room)

    await first.stop()   # offline when the request is made and taken
    asked, _ = await coord.ask(room, f"!tache {TEXT} pour infirmière échéance demain")
    assert asked.decrypted and "Tâche n° 1 créée, demandée aux infirmiers du parcours (2)" in asked.body, asked.body
    assert asked.body.endswith(TEXT), "the text as typed, line break, apostrophe and guillemets included"
    taken, _ = await second.ask(room, "!tache prendre 1")
    assert "Tâche n° 1 prise en charge par Marc Blanc" in taken.body, taken.body

    first = await Clinician(synapse.url, first.user_id, first.password, tmp_path / "back").start()   # a new device
    late, _ = await first.ask(room, "!tache prendre 1", timeout=60)
    assert late.decrypted and "déjà prise en charge par Marc Blanc" in late.body and "rien n'a changé" in late.body

    mine = await second.create_room([bot.user_id])   # a direct conversation with Liaison
    await second.wait_joined(mine, bot.user_id)
    listed, _ = await second.ask(mine, "!taches")
    assert listed.body.startswith("Vos tâches (1) :") and "n° 1" in listed.body and room in listed.body, listed.body
    assert "Durand" not in listed.body.splitlines()[0]
    done, _ = await second.ask(room, "!tache faite 1 pesée faite : 72,4 kg")
    assert "Tâche n° 1 faite" in done.body, done.body
    again, _ = await second.ask(mine, "!taches")
    assert again.body.startswith("Aucune tâche ouverte pour vous."), again.body


async def test_a_late_element_device_reads_the_board_and_its_raised_hand_takes_the_task(clinician, bot_process,
                                                                                        synapse, new_user):
    """Element's own crypto (matrix-js-sdk) on a device that logs in after the board was posted: the board is posted
    again for it and pinned; its ✋ on the task's notice takes the task, and the board is edited in place."""
    coord = await clinician("coordination")
    nurse_id, nurse_password = new_user("infirmiere.element")
    roster = [{"user_id": coord.user_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True},
              {"user_id": nurse_id, "name": "Sophie Bernard", "profession": "infirmière"}]
    bot = bot_process(staff=[], roster=roster, pathways={"ins_test_mode": True})
    desk = await coord.create_room([bot.user_id])
    await coord.wait_joined(desk, bot.user_id)
    opened, _ = await coord.ask(desk, OPEN, timeout=60)
    room = re.search(r"matrix\.to/#/(![A-Za-z0-9_\-.:]+)", opened.body).group(1)
    await _joined(coord, room)
    asked, _ = await coord.ask(room, f"!tache {TEXT} pour infirmière échéance demain")
    assert "✋ sur ce message pour la prendre" in asked.body, asked.body
    first = await coord.wait_for(lambda r, e: r == room and getattr(e, "body", "").startswith("Tableau des tâches"))

    nurse = await ElementDevice.start(synapse.url, nurse_id, nurse_password, room)   # accepts the invitation
    try:
        board = await nurse.wait_for(lambda x: x.get("sender") == bot.user_id and x.get("decrypted") and not
                                     x.get("replaces") and (x.get("body") or "").startswith("Tableau des tâches"), 30)
        assert board["event"] != first.event_id, "posted again, readable by the device that came after it"
        assert "n° 1 · Peser Mme Durand, noter l'œdème des « chevilles »…" in board["body"], board["body"]
        assert "demandée aux infirmiers" in board["body"] and "à faire" in board["body"]

        await nurse.react(asked.event_id, "✋")
        taken = await nurse.wait_for(lambda x: x.get("in_reply_to") == asked.event_id and x.get("decrypted"), 30)
        assert "Tâche n° 1 prise en charge par Sophie Bernard" in taken["body"], taken["body"]
        edit = await nurse.wait_for(lambda x: x.get("replaces") == board["event"] and x.get("decrypted"), 30)
        assert "Sophie Bernard" in edit["new_body"] and "prise en charge" in edit["new_body"], edit["new_body"]
        assert not [e for e in nurse.events(lambda e: e.get("sender") == bot.user_id and e.get("ts", 0) >= board["ts"])
                    if not e["decrypted"]], "what the bot says after the board, the new device reads"
        pinned = (await coord.client.room_get_state_event(room, "m.room.pinned_events")).content["pinned"]
        assert pinned[-1] == board["event"] and first.event_id not in pinned, pinned
    finally:
        await nurse.quit()
