"""Corrections travel (#24 item 2), end to end: real Synapse, the real bot and bridge, the Dovecot/SMTP gateway.

A reply mailed then edited in Element reaches the correspondent as a correction in the same thread; mailed then
deleted, as « message retiré » without the old text. While SMTP is down, a deleted reply never leaves (⚠️ in the
room) and an edited one leaves with its new text only."""
from __future__ import annotations

import pytest
from nio import ErrorResponse, ReactionEvent, RoomMessageText
from sqlalchemy import text

from liaison.db import create_engine
from tests.support.mss import (box, bridge_outcome, drain, letter, open_structure, open_structure_smtp_down, send_mail,
                               wait_mail, xdm_letter)

CARDIO = "c.lefebvre@chu-demo.mssante.test"


def _sub(s) -> str:
    return f"liaison+{s.code.lower()}@msp-demo.mssante.test"


def _body(m) -> str:
    return m.get_body(("plain",)).get_content().replace("\r\n", "\n")


async def _question(s, mail: dict, subject: str, words: str) -> str:
    """The cardiologist writes; the event of her mail in the room."""
    cardio = box(mail, CARDIO)
    await send_mail(mail, cardio, letter(cardio, _sub(s), subject=subject, text=words, xdm=xdm_letter()), _sub(s))
    posted = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                 and e.sender.startswith("@mss_") and words in e.body, 30)
    return posted.event_id


async def _reply(s, to_event: str, body: str) -> str:
    resp = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": body, "m.relates_to": {"m.in_reply_to": {"event_id": to_event}}},
        ignore_unverified_devices=True)
    assert not isinstance(resp, ErrorResponse), resp
    return resp.event_id


async def _edit(s, event_id: str, body: str) -> str:
    resp = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": f"* {body}", "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}, ignore_unverified_devices=True)
    assert not isinstance(resp, ErrorResponse), resp
    return resp.event_id


async def _delete(s, event_id: str) -> str:
    resp = await s.gp.client.room_redact(s.room, event_id)
    assert not isinstance(resp, ErrorResponse), resp
    return resp.event_id


async def _mail_out(s, event_id: str) -> list[tuple[str, bool]]:
    engine = create_engine(s.bot.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT state, raw FROM mail_out WHERE source_event_id = :e"),
                                      {"e": event_id})
            return [(r.state, r.raw is not None) for r in rows]
    finally:
        await engine.dispose()


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")


async def test_a_mailed_reply_edited_then_another_deleted_reach_the_correspondent(structure):
    s = structure
    cardio = box(s.mail, CARDIO)
    await drain(s.mail, cardio)
    question = await _question(s, s.mail, "Traitement de M. Durand", "Quelle dose de furosémide ?")

    # (a) mailed, then edited: a correction in the same thread, the new text verbatim.
    reply = await _reply(s, question, "Furosémide 40 mg le matin")
    first = await wait_mail(s.mail, cardio, lambda m: "40 mg le matin" in _body(m), 30)
    await s.gp.wait_for(lambda r, e: isinstance(e, ReactionEvent) and e.reacts_to == reply and "envoyé" in e.key, 30)
    new_text = "Furosémide 20 mg le matin — « pas 40 »\nContrôle kaliémie J7"
    edit = await _edit(s, reply, new_text)
    assert await bridge_outcome(s.bot, edit) == "done", "the bridge follows the edit (not ignored, not refused)"
    correction = await wait_mail(s.mail, cardio, lambda m: "Correction du message du" in _body(m), 30)
    assert correction["In-Reply-To"] == first["Message-ID"], "in the same mail thread"
    assert first["Message-ID"] in correction["References"]
    assert "Correction" in correction["Subject"] and "Traitement de M. Durand" in correction["Subject"]
    body = _body(correction)
    assert f" :\n\n{new_text}\n\n-- \n" in body, "the new text byte for byte, after the date of the message"
    assert "40 mg le matin" not in body

    # (b) mailed, then deleted: « message retiré », never the old text.
    other = await _reply(s, question, "Ordonnance de potassium à renouveler")
    sent = await wait_mail(s.mail, cardio, lambda m: "potassium" in _body(m), 30)
    await s.gp.wait_for(lambda r, e: isinstance(e, ReactionEvent) and e.reacts_to == other and "envoyé" in e.key, 30)
    deletion = await _delete(s, other)
    assert await bridge_outcome(s.bot, deletion) == "done", "the bridge follows the deletion"
    retracted = await wait_mail(s.mail, cardio, lambda m: "Message retiré" in _body(m), 30)
    assert retracted["In-Reply-To"] == sent["Message-ID"]
    assert _body(retracted).startswith("Message retiré par son auteur (envoyé le ")
    assert "potassium" not in _body(retracted) and "potassium" not in retracted["Subject"]


async def test_while_smtp_is_down_a_deleted_reply_never_leaves_and_an_edited_one_leaves_with_its_new_text(
        clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    s, switch, mail, cardio = await open_structure_smtp_down(clinician, bot_process, bridge_process, synapse,
                                                             mail_gateway, tmp_path / "bridge")
    question = await _question(s, mail, "Question", "Une question pendant la panne ?")
    gone = await _reply(s, question, "Réponse supprimée avant l'envoi")
    kept = await _reply(s, question, "Rendez-vous lundi")
    await s.gp.wait_for(lambda r, e: r == s.room and "nouvel essai" in getattr(e, "body", ""), 30)

    # (c) deleted while queued: withdrawn, the room told (⚠️), nothing left to send.
    deletion = await _delete(s, gone)
    assert await bridge_outcome(s.bot, deletion) == "done"
    told = await s.gp.wait_for(lambda r, e: r == s.room and "retiré de la boîte d'envoi" in getattr(e, "body", ""),
                               30)
    assert told.body.startswith("⚠️") and "Rien n'est parti" in told.body and CARDIO in told.body
    assert await _mail_out(s, gone) == [("withdrawn", False)], "its text is no longer kept"

    # … and an edit of a queued one: the mail that finally leaves carries the new text only.
    edit = await _edit(s, kept, "Rendez-vous mardi à 14 h")
    assert await bridge_outcome(s.bot, edit) == "done"
    await switch.on()
    try:
        answer = await wait_mail(mail, cardio, lambda m: "Rendez-vous" in _body(m), 30)
        body = _body(answer)
        assert body.startswith("Rendez-vous mardi à 14 h\n\n-- \n") and "lundi" not in body
        assert "Correction" not in body, "replaced in the outbox, not corrected after"
        # sent before it (queued first) had it not been withdrawn: the box, read once the answer is in, lacks it
        assert not await _any_mail(mail, cardio, "supprimée avant"), "the deleted reply never left"
    finally:
        await switch.off()


async def _any_mail(mail: dict, cardio, words: str) -> bool:
    try:
        await wait_mail(mail, cardio, lambda m: words in _body(m), 0.1)
    except TimeoutError:
        return False
    return True
