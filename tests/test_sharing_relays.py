"""The sharing law at the relays (#13), end to end on real servers: decided when the information moves, both ways,
for every recipient; a refusal leaves nothing behind and tells the room its rule."""
from __future__ import annotations

import asyncio

import pytest
from nio import RoomMemberEvent, RoomMessage, RoomMessageText
from sqlalchemy import text

from liaison.db import create_engine
from tests.support.mss import (box, bridge_outcome, letter, open_structure, open_structure_smtp_down, send_mail,
                               wait_mail, xdm_letter)

CARDIO = "c.lefebvre@chu-demo.mssante.test"
LAB = "resultats@labo-demo.mssante.test"


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")


def _sub(s) -> str:
    return f"liaison+{s.code.lower()}@msp-demo.mssante.test"


async def _mail_from(s, address: str, subject: str, body: str, **kw) -> str:
    sender = box(s.mail, address)
    to = kw.pop("to", None) or _sub(s)
    return await send_mail(s.mail, sender, letter(sender, to, subject=subject, text=body, **kw), to)


def _posted(s, words: str):
    return lambda r, e: r == s.room and isinstance(e, RoomMessageText) and e.sender.startswith("@mss_") \
        and words in e.body


async def _quarantined(s, words: str) -> RoomMessage:
    return await s.coord.wait_for(lambda r, e: isinstance(e, RoomMessage) and e.sender.startswith("@mss_relais")
                                  and "quarantaine" in getattr(e, "body", "") and words in e.body, 30)


async def _rows(s, sql: str, **args) -> list:
    engine = create_engine(s.bot.database_url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(text(sql), args))
    finally:
        await engine.dispose()


async def test_an_objection_against_an_address_stops_mail_both_ways_and_lifting_restores(structure):
    s = structure
    await _mail_from(s, CARDIO, "Lettre", "Première lettre.", xdm=xdm_letter())
    first = await s.gp.wait_for(_posted(s, "Première lettre"), 30)
    objected, _ = await s.coord.ask(s.room, f"!opposition {CARDIO}")
    assert "Opposition enregistrée" in objected.body and CARDIO in objected.body, objected.body
    puppet = first.sender
    left = await s.coord.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMemberEvent)
                                  and e.state_key == puppet and e.membership == "leave", 30)   # at once
    assert left.content.get("reason") == "Opposition du patient (règle objection.person)", \
        "a membership event is in clear: it names no address"

    # In: her next letter is kept out, in quarantine with the rule named; nothing in the patient room.
    await _mail_from(s, CARDIO, "Pendant", "Lettre pendant l'opposition.", xdm=xdm_letter())
    told = await _quarantined(s, "objection.person")
    assert "CSP L.1110-4" in told.body
    # Out: the GP's answer to her first letter is refused, the room told why.
    reply = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Réponse pendant l'opposition",
        "m.relates_to": {"m.in_reply_to": {"event_id": first.event_id}}}, ignore_unverified_devices=True)
    assert await bridge_outcome(s.bot, reply.event_id) == "refused"
    refusal = await s.gp.wait_for(lambda r, e: r == s.room and "Message non transmis" in getattr(e, "body", ""), 30)
    assert "objection.person" in refusal.body
    assert not [e for r, e in s.gp.events if _posted(s, "pendant l'opposition")(r, e)]

    lifted, _ = await s.coord.ask(s.room, f"!opposition lever {CARDIO}")
    assert "levée" in lifted.body
    await _mail_from(s, CARDIO, "Après", "Lettre après la levée.", xdm=xdm_letter())
    after = await s.gp.wait_for(_posted(s, "après la levée"), 30)
    reply = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Réponse après la levée",
        "m.relates_to": {"m.in_reply_to": {"event_id": after.event_id}}}, ignore_unverified_devices=True)
    await wait_mail(s.mail, box(s.mail, CARDIO), lambda m: "après la levée" in m.get_body(("plain",)).get_content(),
                    30)
    sent = await _rows(s, "SELECT state FROM mail_out WHERE source_event_id = :e", e=reply.event_id)
    assert [r.state for r in sent] != ["cancelled"]


async def test_objections_and_consents_by_profession_and_structure_reach_an_external_address(structure):
    s = structure
    recorded, _ = await s.coord.ask(s.room, f"!equipe ajouter {LAB} pharmacien structure:LaboDemo")
    assert "pharmacien" in recorded.body.lower() and "LaboDemo" in recorded.body, recorded.body
    refused, _ = await s.gp.ask(s.room, f"!mss ecrire {LAB} Pouvez-vous refaire le bilan ?")
    assert "outside.no_consent" in refused.body, refused.body
    await s.coord.ask(s.room, "!consentement enregistrer structure:LaboDemo écrit")
    allowed, _ = await s.gp.ask(s.room, f"!mss ecrire {LAB} Pouvez-vous refaire le bilan ?")
    assert "confié au pont" in allowed.body and "outside.consent" not in allowed.body, allowed.body
    await wait_mail(s.mail, box(s.mail, LAB), lambda m: "refaire le bilan" in m.get_body(("plain",)).get_content(), 30)

    objected, _ = await s.coord.ask(s.room, "!opposition pharmacien")
    assert "Opposition enregistrée" in objected.body
    await _mail_from(s, LAB, "Bilan", "Résultats du bilan.", xdm=xdm_letter())
    told = await _quarantined(s, "objection.profession")
    assert LAB in told.body
    again, _ = await s.gp.ask(s.room, f"!mss ecrire {LAB} Encore une question")
    assert "objection.profession" in again.body


async def test_a_reply_queued_during_an_outage_is_never_sent_once_an_objection_comes(
        clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    s, switch, mail, cardio = await open_structure_smtp_down(clinician, bot_process, bridge_process, synapse,
                                                             mail_gateway, tmp_path / "bridge")
    await send_mail(mail, cardio, letter(cardio, _sub(s), subject="Question", text="Une question ?", xdm=xdm_letter()),
                    _sub(s))
    question = await s.gp.wait_for(_posted(s, "Une question"), 30)
    reply = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Réponse pendant la panne",
        "m.relates_to": {"m.in_reply_to": {"event_id": question.event_id}}}, ignore_unverified_devices=True)
    await s.gp.wait_for(lambda r, e: r == s.room and "nouvel essai" in getattr(e, "body", ""), 30)
    await s.coord.ask(s.room, f"!opposition {CARDIO}")
    await switch.on()
    cancelled = await s.gp.wait_for(lambda r, e: r == s.room and "annulé avant son envoi" in getattr(e, "body", ""),
                                    30)
    assert "objection.person" in cancelled.body and "trace" in cancelled.body and "Rien n'est parti" in cancelled.body
    rows = await _rows(s, "SELECT state, raw FROM mail_out WHERE source_event_id = :e", e=reply.event_id)
    assert [(r.state, r.raw) for r in rows] == [("cancelled", None)], "nothing left that says otherwise"
    await asyncio.sleep(2)   # past the next retry: still nothing in her box
    with pytest.raises(TimeoutError):
        await wait_mail(mail, cardio, lambda m: "pendant la panne" in m.get_body(("plain",)).get_content(), 2)
    await switch.off()


async def test_threads_are_bound_to_their_parties(structure):
    s = structure
    letter_id = await _mail_from(s, CARDIO, "Suivi", "Lettre du cardiologue.", xdm=xdm_letter())
    await s.gp.wait_for(_posted(s, "Lettre du cardiologue"), 30)
    # The lab quotes her thread, to the bare mailbox: no thread for it, nothing else names the patient.
    await _mail_from(s, LAB, "Re: Suivi", "Je me glisse dans le fil.", to=s.mail["bridge_address"],
                     in_reply_to=letter_id)
    await _quarantined(s, "impossible de savoir")
    # The lab quotes her thread while writing to the pathway's address: a new mail, not her thread, and the lab
    # is no correspondent of the team for it (a pathway code grants nothing).
    await _mail_from(s, LAB, "Re: Suivi", "Deuxième essai par l'adresse du parcours.", in_reply_to=letter_id)
    posted = await s.gp.wait_for(_posted(s, "Deuxième essai"), 30)
    assert (posted.source["content"].get("m.relates_to") or {}).get("rel_type") != "m.thread", "not in her thread"
    reply = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Qui êtes-vous ?", "m.relates_to": {"m.in_reply_to": {"event_id": posted.event_id}}},
        ignore_unverified_devices=True)
    assert await bridge_outcome(s.bot, reply.event_id) == "refused"
    # Her own reply in the thread, sent to another pathway's code: the two disagree, quarantine.
    await _mail_from(s, CARDIO, "Re: Suivi", "Réponse vers un autre parcours.", in_reply_to=letter_id,
                     to="liaison+p-zzzzz@msp-demo.mssante.test")
    await _quarantined(s, "deux parcours différents")


async def test_a_correspondent_removed_by_the_team_is_quarantined_not_retried(structure):
    s = structure
    await _mail_from(s, CARDIO, "Lettre", "Première lettre.", xdm=xdm_letter())
    first = await s.gp.wait_for(_posted(s, "Première lettre"), 30)
    puppet = first.sender
    await s.gp.wait_for(lambda r, e: r == s.room and e.sender.startswith("@mss_relais")
                        and "Document n° 1" in getattr(e, "body", ""), 30)   # the whole letter is in (its PDF too)
    # A coordinator removes her from the room in Element: the next letter is not posted, nor retried.
    await s.coord.client.room_kick(s.room, puppet, "Pas dans ce parcours")
    await _mail_from(s, CARDIO, "Deuxième", "Lettre après l'exclusion.", xdm=xdm_letter())
    told = await _quarantined(s, "retiré du salon par un membre")
    qroom = next(r for r, e in s.coord.events if e is told)
    number = told.body.split("n° ")[1].split(" ")[0]
    rows = await _rows(s, "SELECT id, reason, message_id, sender FROM mail_in WHERE state = 'quarantined'")
    assert len(rows) == 1, rows
    # Routed by hand by the coordination: her puppet comes back and posts it.
    reply, _ = await s.coord.ask(qroom, f"!mss router {number} {s.code}")
    assert "dépôt" in reply.body, reply.body
    await s.gp.wait_for(_posted(s, "après l'exclusion"), 30)
    await s.gp.wait_for(lambda r, e: r == s.room and e.sender.startswith("@mss_relais")
                        and "Document n° 2" in getattr(e, "body", ""), 30)

    # Banned: quarantined, and routing by hand does not pass a ban.
    await s.coord.client.room_ban(s.room, puppet, "Plus de courriels ici")
    await _mail_from(s, CARDIO, "Troisième", "Lettre après le bannissement.", xdm=xdm_letter())
    told = await _quarantined(s, "banni du salon")
    number = told.body.split("n° ")[1].split(" ")[0]
    await s.coord.ask(qroom, f"!mss router {number} {s.code}")
    await s.coord.wait_for(lambda r, e: r == qroom and "non déposé" in getattr(e, "body", "")
                           and "banni" in e.body, 30)
    assert not [e for r, e in s.gp.events if _posted(s, "après le bannissement")(r, e)]
