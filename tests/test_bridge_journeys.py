"""J4, J5, J7 end to end: real Synapse, the real bot and bridge, real Dovecot and mutual-TLS SMTP."""
from __future__ import annotations

import asyncio
import hashlib

import pytest
from nio import MegolmEvent, ReactionEvent, RoomMessage, RoomMessageFile, RoomMessageText
from nio.crypto.attachments import decrypt_attachment

from tests.support.mss import (PDF, box, bridge_outcome, letter, open_structure, send_mail, wait_mail,
                               xdm_letter)

CARDIO = "c.lefebvre@chu-demo.mssante.test"
STRANGER = "inconnu@messagerie-ordinaire.test"


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")


def _from_puppet(s):
    """The cardiologist's puppet, by its user id (opaque: see Structure.puppet)."""
    return lambda r, e: r == s.room and isinstance(e, (RoomMessage, MegolmEvent)) and e.sender == s.puppet(CARDIO)


async def test_hospital_letter_in_and_reply_out(structure):
    s = structure
    cardio = box(s.mail, CARDIO)
    bridge_address = s.mail["bridge_address"]
    letter_id = await send_mail(s.mail, cardio, letter(cardio, bridge_address, subject="Sortie de M. Durand",
                                                        text="Bonjour, voici la lettre de liaison.",
                                                        xdm=xdm_letter()), bridge_address)

    # J4: in the right room, posted by "Dr … (MSSanté)", encrypted, the PDF attached and encrypted.
    text = await s.gp.wait_for(lambda r, e: _from_puppet(s)(r, e) and isinstance(e, RoomMessageText), 30)
    assert text.decrypted, "the puppet's message travels encrypted"
    assert "Sortie de M. Durand" in text.body and "voici la lettre" in text.body
    assert "selon l'INS du document" in text.body
    name = s.gp.client.rooms[s.room].user_name(text.sender)
    assert name.endswith("(MSSanté)") and "Lefebvre" in name
    file = await s.gp.wait_for(lambda r, e: _from_puppet(s)(r, e) and isinstance(e, RoomMessageFile)
                               or (r == s.room and getattr(e, "source", {}).get("content", {}).get("msgtype")
                                   == "m.file"), 30)
    content = file.source["content"]
    assert content["m.relates_to"]["event_id"] == text.event_id, "the document sits in the mail's thread"
    assert "url" not in content and "key" in content["file"], "uploaded encrypted"
    blob = await s.gp.client.download(mxc=content["file"]["url"])
    data = decrypt_attachment(blob.body, content["file"]["key"]["k"], content["file"]["hashes"]["sha256"],
                              content["file"]["iv"])
    assert hashlib.sha256(data).digest() == hashlib.sha256(PDF).digest()
    assert not [e for r, e in s.coord.events if r == s.room and isinstance(e, MegolmEvent)
                and e.sender.startswith("@mss_")], "members can decrypt every puppet event"

    # J5: the GP replies in the room; the cardiologist gets a mail in the same thread, from the MSP's mailbox.
    reply_id = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Merci, je le vois jeudi.",
        "m.relates_to": {"m.in_reply_to": {"event_id": text.event_id}}}, ignore_unverified_devices=True)
    assert await bridge_outcome(s.bot, reply_id.event_id) == "done", "the bridge relays the reply (not ignored)"
    answer = await wait_mail(s.mail, cardio, lambda m: letter_id in str(m.get("In-Reply-To", "")), 20)
    assert "Merci, je le vois jeudi." in answer.get_body(("plain",)).get_content()
    assert answer["From"].addresses[0].addr_spec == bridge_address
    assert "Paul Martin" in answer["From"].addresses[0].display_name
    assert answer["Reply-To"].addresses[0].addr_spec == f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    assert answer["Disposition-Notification-To"]
    # … and the receipts show on the GP's message: sent, then delivered (the gateway's DSN).
    for key in ("envoyé", "remis"):
        await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, ReactionEvent) and key in e.key
                            and e.reacts_to == reply_id.event_id, 30)

    # The cardiologist answers by mail: the answer lands in the same Matrix thread.
    await send_mail(s.mail, cardio, letter(cardio, str(answer["Reply-To"]), subject="Re: Sortie de M. Durand",
                                           text="Parfait, merci.", in_reply_to=str(answer["Message-ID"]).strip("<>")),
                    answer["Reply-To"].addresses[0].addr_spec)
    second = await s.gp.wait_for(lambda r, e: _from_puppet(s)(r, e) and isinstance(e, RoomMessageText)
                                 and "Parfait" in e.body, 30)
    assert second.source["content"]["m.relates_to"]["event_id"] == text.event_id


async def test_stranger_and_unknown_patient_go_to_quarantine(structure):
    s = structure
    bridge_address = s.mail["bridge_address"]
    stranger = box(s.mail, STRANGER)
    await send_mail(s.mail, stranger, letter(stranger, bridge_address, subject="Résultats", text="Voir PJ",
                                             xdm=xdm_letter()), bridge_address)
    cardio = box(s.mail, CARDIO)
    other = "2690299123456"
    from policies.ins import nir_key
    await send_mail(s.mail, cardio, letter(cardio, bridge_address, subject="Autre patient", text="…",
                                           xdm=xdm_letter(ins=f"{other}{nir_key(other):02d}")), bridge_address)
    notices = []
    for _ in range(2):
        notices.append(await s.coord.wait_for(lambda r, e: isinstance(e, RoomMessage) and "quarantaine" in
                                              getattr(e, "body", "") and e.sender.startswith("@mss_relais")
                                              and e not in notices, 30))
    bodies = " ".join(n.body for n in notices)
    assert "liste blanche" in bodies and "aucun patient" in bodies
    quarantine_room = next(r for r, e in s.coord.events if e is notices[0])
    reply, _ = await s.coord.ask(quarantine_room, "!mss quarantaine")
    assert STRANGER in reply.body and CARDIO in reply.body
    number = next(n.body.split("n° ")[1].split(" ")[0] for n in notices if STRANGER in n.body)
    reply, _ = await s.coord.ask(quarantine_room, f"!mss router {number} {s.code}")
    assert "Refusé" in reply.body and "mail.untrusted_domain" in reply.body, reply.body
    await asyncio.sleep(1)
    assert not [e for r, e in s.gp.events if r == s.room and getattr(e, "sender", "").startswith("@mss_")
                and not e.sender.startswith("@mss_relais")], "nothing reached the patient room"
    reply, _ = await s.coord.ask(quarantine_room, f"!mss rejeter {number}")
    assert "écarté" in reply.body


async def test_a_file_posted_in_the_thread_leaves_as_an_attachment(structure):
    """A GP drops an (encrypted) PDF in the thread of the cardiologist's mail: it leaves attached to a reply."""
    import io

    s = structure
    cardio = box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    await send_mail(s.mail, cardio, letter(cardio, to, subject="Bilan ?", text="Avez-vous le bilan ?",
                                           xdm=xdm_letter()), to)
    question = await s.gp.wait_for(lambda r, e: _from_puppet(s)(r, e) and isinstance(e, RoomMessageText)
                                   and "le bilan" in e.body, 30)
    pdf = b"%PDF-1.4\nbilan\n%%EOF\n"
    resp, keys = await s.gp.client.upload(io.BytesIO(pdf), content_type="application/octet-stream", encrypt=True,
                                          filesize=len(pdf))
    await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.file", "body": "bilan.pdf", "info": {"mimetype": "application/pdf", "size": len(pdf)},
        "file": {**keys, "url": resp.content_uri},
        "m.relates_to": {"rel_type": "m.thread", "event_id": question.event_id, "is_falling_back": True,
                         "m.in_reply_to": {"event_id": question.event_id}}}, ignore_unverified_devices=True)
    sent = await wait_mail(s.mail, cardio, lambda m: any(p.get_filename() == "bilan.pdf" for p in m.iter_attachments()),
                           30)
    part = next(p for p in sent.iter_attachments() if p.get_filename() == "bilan.pdf")
    assert part.get_content() == pdf, "decrypted from the room, attached as it was"
    assert part.get_content_type() == "application/pdf"


async def test_the_homeserver_never_sees_a_document_s_name(structure, synapse):
    """Uploads carry no file name (nor the real type): Synapse's log and media table hold none."""
    import sqlite3

    s = structure
    cardio = box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    msg = letter(cardio, to, subject="Compte rendu", text="Ci-joint.")
    msg.add_attachment(PDF, maintype="application", subtype="pdf",
                       filename="Compte rendu de consultation de cardiologie Durand.pdf")
    await send_mail(s.mail, cardio, msg, to)
    await s.gp.wait_for(lambda r, e: r == s.room and "Document n°" in getattr(e, "body", ""), 30)
    await s.gp.send_file(s.room, PDF, "Bilan sanguin Durand Marcel.pdf", "application/pdf")
    await s.gp.wait_for(lambda r, e: r == s.room and getattr(e, "sender", "") == s.bot.user_id
                        and "indexé" in getattr(e, "body", ""), 30)
    names = ("Compte rendu de consultation", "Compte+rendu", "Bilan sanguin", "Bilan+sanguin", "Durand", "cardiologie")
    log = (synapse.log_dir / "synapse.log").read_text(errors="replace")
    assert not [n for n in names if n in log], "no document name in the homeserver's log"
    with sqlite3.connect(synapse.data_dir / "homeserver.db") as db:
        rows = db.execute("SELECT upload_name, media_type FROM local_media_repository").fetchall()
    assert rows and not [r for r in rows if r[0] and any(n in r[0] for n in names)], rows
    assert not [r for r in rows if r[1] == "application/pdf"], "encrypted uploads say only octet-stream"


async def test_a_reply_sent_while_the_letter_s_files_are_still_coming_leaves(structure):
    """The GP answers the text of a letter at once, while its ten files are still being uploaded and posted:
    the bridge knows the mail's thread from its text on, so the answer is relayed, not ignored."""
    import os

    s = structure
    cardio = box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    msg = letter(cardio, to, subject="Dix pièces", text="Dix pièces jointes.", xdm=xdm_letter())
    for i in range(10):
        msg.add_attachment(b"%PDF-1.4\n" + os.urandom(300_000) + b"\n%%EOF\n", maintype="application",
                           subtype="pdf", filename=f"piece-{i}.pdf")
    letter_id = await send_mail(s.mail, cardio, msg, to)
    text = await s.gp.wait_for(lambda r, e: _from_puppet(s)(r, e) and isinstance(e, RoomMessageText)
                               and "Dix pièces" in e.body, 30)
    reply = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Reçu, j'attends les pièces.",
        "m.relates_to": {"m.in_reply_to": {"event_id": text.event_id}}}, ignore_unverified_devices=True)
    assert await bridge_outcome(s.bot, reply.event_id) == "done", "relayed, though the files were still coming"
    answer = await wait_mail(s.mail, cardio, lambda m: letter_id in str(m.get("In-Reply-To", "")), 20)
    assert "j'attends les pièces" in answer.get_body(("plain",)).get_content()
