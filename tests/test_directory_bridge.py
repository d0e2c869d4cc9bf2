"""The national directory at the bridge (#27), end to end: real Synapse, the real bot and bridge processes, the test
MSSanté gateway. A puppet shows its address's owner as the directory lists them, whatever the From says; an address
the directory does not know shows its domain before its From name; a specialty-scoped objection stops mail to and
from a directory-known cardiologist. The directory's rows are seeded by SQL into the database the processes use."""
from __future__ import annotations

import pytest
from nio import RoomMemberEvent, RoomMessage, RoomMessageText
from sqlalchemy import text

from liaison.db import create_engine
from tests.support.mss import bridge_outcome, box, letter, open_structure, send_mail, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
LAB = "resultats@labo-demo.mssante.test"
LISTED = "Dr Camille Lefebvre (cardiologie, CHU de démonstration) (MSSanté)"
IMPOSTOR = "Pr Jean Autre (cardiologie, CHU de démonstration)"


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    s = await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")
    engine = create_engine(s.bot.database_url)
    try:
        async with engine.begin() as conn:   # what `liaison annuaire importer` writes of the cardiologist's mailbox
            await conn.execute(text(
                "INSERT INTO directory_mailbox (address, kind, national_id, civility, last_name, first_name, "
                "profession_code, profession_label, profession, specialty_label, structure, commune, postcode, "
                "department, active, import_id, updated_at) VALUES (:a, 'PER', '810101234567', 'DR', 'Lefebvre', "
                "'Camille', '10', 'Médecin', 'medecin', 'Cardiologie et maladies vasculaires', "
                "'CHU de démonstration', 'Lyon', '69003', '69', 1, 1, 0)"), {"a": CARDIO})
    finally:
        await engine.dispose()
    return s


def _sub(s) -> str:
    return f"liaison+{s.code.lower()}@msp-demo.mssante.test"


async def _mail_from(s, address: str, subject: str, body: str, name: str | None = None, **kw) -> str:
    sender = box(s.mail, address)
    shown = {**sender, "display_name": name} if name else sender
    return await send_mail(s.mail, sender, letter(shown, _sub(s), subject=subject, text=body, **kw), _sub(s))


def _posted(s, words: str):
    return lambda r, e: r == s.room and isinstance(e, RoomMessageText) and e.sender.startswith("@mss_") \
        and words in e.body


async def test_a_puppet_shows_the_directory_s_name_whatever_its_from_claims(structure):
    s = structure
    await _mail_from(s, CARDIO, "Lettre", "Lettre signée d'un autre nom.", name=IMPOSTOR)
    posted = await s.gp.wait_for(_posted(s, "signée d'un autre nom"), 30)
    assert posted.sender == s.puppet(CARDIO)
    assert s.gp.client.rooms[s.room].user_name(posted.sender) == LISTED
    named = [e for r, e in s.gp.events if r == s.room and isinstance(e, RoomMemberEvent)
             and e.state_key == posted.sender]
    assert named and all("Autre" not in (e.content.get("displayname") or "") for e in named), \
        "the From's name never shown, not even for a moment"

    # An address the directory does not know: its domain first, then what its From claims.
    await _mail_from(s, LAB, "Bilan", "Bilan du laboratoire.", name="Dr Camille Lefebvre (CHU)")
    lab = await s.gp.wait_for(_posted(s, "Bilan du laboratoire"), 30)
    assert s.gp.client.rooms[s.room].user_name(lab.sender) == \
        "labo-demo.mssante.test · Dr Camille Lefebvre (CHU) (MSSanté)"


async def test_a_specialty_objection_stops_mail_to_and_from_a_directory_known_cardiologist(structure):
    s = structure
    await _mail_from(s, CARDIO, "Lettre", "Première lettre.", xdm=xdm_letter())
    first = await s.gp.wait_for(_posted(s, "Première lettre"), 30)
    objected, _ = await s.coord.ask(s.room, "!opposition cardiologue")
    assert "Opposition enregistrée pour la spécialité cardiologie" in objected.body, objected.body
    left = await s.coord.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMemberEvent)
                                  and e.state_key == first.sender and e.membership == "leave", 30)
    assert left.content.get("reason") == "Opposition du patient (règle objection.profession)"
    assert s.gp.client.rooms[s.room].users.get(s.gp.user_id), "the team's GP, a médecin, stays"

    # In: his next letter is kept out, in quarantine with the rule named; nothing in the patient room.
    await _mail_from(s, CARDIO, "Pendant", "Lettre pendant l'opposition.", xdm=xdm_letter())
    told = await s.coord.wait_for(lambda r, e: isinstance(e, RoomMessage) and e.sender.startswith("@mss_relais")
                                  and "quarantaine" in getattr(e, "body", "") and "objection.profession" in e.body, 30)
    assert "CSP L.1110-4" in told.body
    # Out: the GP's answer to his first letter is refused, the room told why.
    reply = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Réponse pendant l'opposition",
        "m.relates_to": {"m.in_reply_to": {"event_id": first.event_id}}}, ignore_unverified_devices=True)
    assert await bridge_outcome(s.bot, reply.event_id) == "refused"
    refusal = await s.gp.wait_for(lambda r, e: r == s.room and "Message non transmis" in getattr(e, "body", ""), 30)
    assert "objection.profession" in refusal.body
    assert not [e for r, e in s.gp.events if _posted(s, "pendant l'opposition")(r, e)]
    written, _ = await s.gp.ask(s.room, f"!mss ecrire {CARDIO} Une question")
    assert "objection.profession" in written.body, written.body
