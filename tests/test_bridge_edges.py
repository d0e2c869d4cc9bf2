"""The bridge's edges on real servers: SMTP down then up, bad mails, routing by hand, !mss ecrire, MDN."""
from __future__ import annotations

import asyncio
import io
import smtplib
import sqlite3
import zipfile
from pathlib import Path

import pytest
from nio import ReactionEvent, RoomMessage, RoomMessageText

from tests.support.mss import Switch, box, drain, is_puppet, letter, open_structure, send_mail, wait_mail, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"
FIXTURES = Path(__file__).parent / "fixtures" / "mail"


@pytest.fixture
async def switch(mail_gateway):
    s = Switch(mail_gateway.info["smtp"]["port"])
    await s.on()
    await s.off()   # starts down: the bridge's first sends fail
    yield s
    if s.server and s.server.is_serving():
        await s.off()


async def test_smtp_down_then_up(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path, switch):
    smtp = {"host": "127.0.0.1", "port": switch.port}
    mail = dict(mail_gateway.info)
    s = await open_structure(clinician, bot_process, bridge_process, synapse, type("G", (), {"info": {
        **mail, "smtp": smtp}})(), tmp_path / "bridge")
    cardio = box(mail, CARDIO)
    await drain(mail, cardio)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    await send_mail(mail, cardio, letter(cardio, to, subject="Question", text="Une question ?", xdm=xdm_letter()), to)
    question = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                   and "Une question" in e.body, 30)
    sent = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Réponse pendant la panne",
        "m.relates_to": {"m.in_reply_to": {"event_id": question.event_id}}}, ignore_unverified_devices=True)
    notice = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessage)
                                 and "nouvel essai" in getattr(e, "body", ""), 30)
    assert "retardé" in notice.body and CARDIO in notice.body
    await switch.on()
    answer = await wait_mail(mail, cardio, lambda m: "pendant la panne" in m.get_body(("plain",)).get_content(), 30)
    assert answer["In-Reply-To"]
    await s.gp.wait_for(lambda r, e: isinstance(e, ReactionEvent) and e.reacts_to == sent.event_id
                        and "envoyé" in e.key, 30)


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge",
                                max_mail_bytes=200_000)


def _inject(mail_gateway, raw: bytes, to: str) -> None:
    """Delivered straight into the applicative mailbox, as a lax operator would."""
    with smtplib.LMTP(str(mail_gateway.workdir / "dovecot" / "run" / "lmtp")) as lmtp:
        lmtp.sendmail("operateur@exemple.test", [to], raw)


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("IHE_XDM/SUBSET01/METADATA.XML", b"<a/>")
        z.writestr("IHE_XDM/SUBSET01/DOC0001.PDF", b"\0" * 20_000_000)
    return buf.getvalue()


BAD = {
    "malformed_no_boundary.eml": "mal formé",
    "missing_from.eml": "expéditeur",
    "two_from.eml": "expéditeur",
    "loop_40_received.eml": "boucle",
    "smime_encrypted.eml": "S/MIME",
}


async def test_bad_mails_are_quarantined_with_a_reason(structure, mail_gateway):
    s = structure
    for name in BAD:
        await asyncio.to_thread(_inject, mail_gateway, (FIXTURES / name).read_bytes(), s.mail["bridge_address"])
    cardio = box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    bomb = letter(cardio, to, subject="Bombe", text="…")
    bomb.add_attachment(_zip_bomb(), maintype="application", subtype="zip", filename="IHE_XDM.ZIP")
    await send_mail(s.mail, cardio, bomb, to)
    big = letter(cardio, to, subject="Trop gros", text="x" * 300_000)
    await send_mail(s.mail, cardio, big, to)

    expected = len(BAD) + 2
    notices: list = []
    deadline = asyncio.get_running_loop().time() + 60
    while len(notices) < expected and asyncio.get_running_loop().time() < deadline:
        notices = [e for r, e in s.coord.events if isinstance(e, RoomMessage) and "quarantaine"
                   in getattr(e, "body", "") and e.sender.startswith("@mss_relais")]
        await asyncio.sleep(0.2)
    assert len(notices) == expected, [n.body for n in notices]
    text = "\n".join(n.body for n in notices)
    for word in ["archive", "taille", *BAD.values()]:
        assert word.lower() in text.lower(), (word, text)
    assert not [e for r, e in s.gp.events if r == s.room and is_puppet(e.sender)], \
        "nothing reached the patient room"
    db = sqlite3.connect(s.bot.database_url.split("///", 1)[1])
    states = dict(db.execute("SELECT state, COUNT(*) FROM mail_in GROUP BY state").fetchall())
    assert states == {"quarantined": expected}, states   # nothing half-stored: every mail has its end state
    assert db.execute("SELECT COUNT(*) FROM mss_puppet").fetchone()[0] == 0


async def test_route_by_hand_and_write_to_a_new_correspondent(structure):
    s = structure
    cardio = box(s.mail, CARDIO)
    await drain(s.mail, cardio)
    bridge_address = s.mail["bridge_address"]
    await send_mail(s.mail, cardio, letter(cardio, bridge_address, subject="Sans parcours", text="Pour qui ?"),
                    bridge_address)
    notice = await s.coord.wait_for(lambda r, e: isinstance(e, RoomMessage) and "quarantaine" in getattr(e, "body", "")
                                    and e.sender.startswith("@mss_relais"), 30)
    qroom = next(r for r, e in s.coord.events if e is notice)
    number = notice.body.split("n° ")[1].split(" ")[0]
    reply, _ = await s.coord.ask(qroom, f"!mss router {number} {s.code}")
    assert "dépôt" in reply.body, reply.body
    routed = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                 and "Pour qui" in e.body, 30)
    assert "à la main par la coordination" in routed.body
    reply, _ = await s.coord.ask(qroom, f"!mss router {number} {s.code}")
    assert "Aucun courriel" in reply.body, "a mail is routed once"

    # !mss ecrire: the lab has never written about this patient: refused without consent, then allowed.
    lab = "resultats@labo-demo.mssante.test"
    reply, _ = await s.gp.ask(s.room, f"!mss ecrire {lab} Merci de nous transmettre le bilan.")
    assert "non envoyé" in reply.body and "consentement" in reply.body, reply.body
    reply, _ = await s.coord.ask(s.room, f"!consentement enregistrer {lab} écrit")
    typed = "Merci de nous transmettre le bilan : j'ai vu l'écho « inquiétant », \"à revoir\".\nBien à vous,  Dr M."
    reply, cmd = await s.gp.ask(s.room, f"!mss ecrire {lab} {typed}")
    assert "confié au pont" in reply.body, reply.body
    sent = await wait_mail(s.mail, box(s.mail, lab), lambda m: "transmettre le bilan" in
                           m.get_body(("plain",)).get_content(), 30)
    assert s.code in str(sent["Subject"])
    body = sent.get_body(("plain",)).get_content().replace("\r\n", "\n")   # a mail's line break is CRLF (RFC 5322)
    assert typed in body, "what was typed leaves as typed: apostrophes, guillemets, quotes, spaces, line breaks"
    reply, _ = await s.gp.ask(s.room, "!mss ecrire dr@messagerie-ordinaire.test Bonjour")
    assert "mail.untrusted_domain" in reply.body


async def test_read_receipts_both_ways(structure):
    s = structure
    cardio = box(s.mail, CARDIO)
    await drain(s.mail, cardio)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    asked = letter(cardio, to, subject="Accusé demandé", text="Merci d'accuser réception.", xdm=xdm_letter(),
                   extra={"Disposition-Notification-To": "ailleurs@labo-demo.mssante.test"})
    asked_id = await send_mail(s.mail, cardio, asked, to)
    text = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                               and "accuser réception" in e.body, 30)
    with pytest.raises(TimeoutError):   # nobody has read it yet: no receipt
        await wait_mail(s.mail, cardio, lambda m: m.get_content_type() == "multipart/report", 3)
    await s.gp.client.room_read_markers(s.room, text.event_id, text.event_id)   # the GP reads it in Element
    mdn = await wait_mail(s.mail, cardio, lambda m: m.get_content_type() == "multipart/report", 30)
    assert asked_id in mdn.as_string() and "disposition-notification" in mdn["Content-Type"]
    assert mdn["To"] == cardio["address"], "to the sender only, not to Disposition-Notification-To"

    # The GP answers; the cardiologist's client sends a read receipt: "lu" shows on the GP's message.
    sent = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": "Bien reçu.", "m.relates_to": {"m.in_reply_to": {"event_id": text.event_id}}},
        ignore_unverified_devices=True)
    out = await wait_mail(s.mail, cardio, lambda m: "Bien reçu" in str(m.get_body(("plain",)).get_content()), 30)
    from bridge.mail_out import as_bytes
    from bridge.receipts import compose_mdn
    receipt = compose_mdn(original_message_id=str(out["Message-ID"]).strip("<>"), original_recipient=cardio["address"],
                          from_address=cardio["address"], from_name="Dr Camille Lefebvre",
                          to=s.mail["bridge_address"], subject=str(out["Subject"]))
    from tests.support.mss import smtp_for
    smtp = smtp_for(s.mail, cardio)
    await smtp.send(as_bytes(receipt), sender=cardio["address"], recipients=[s.mail["bridge_address"]], notify=False)
    await smtp.close()
    await s.gp.wait_for(lambda r, e: isinstance(e, ReactionEvent) and e.reacts_to == sent.event_id
                        and "lu" in e.key, 30)

    # The same mail delivered again (same Message-ID): a duplicate, posted once and answered once.
    await send_mail(s.mail, cardio, asked, to)
    await asyncio.sleep(2)
    import email
    from email import policy

    from tests.support.mss import imap_for
    imap = imap_for(s.mail, cardio)
    await imap.connect()
    boxed = [email.message_from_bytes(f.raw, policy=policy.default) for f in await imap.fetch_all(limit=1000)]
    await imap.close()
    answered = [m for m in boxed if m.get_content_type() == "multipart/report" and asked_id in m.as_string()]
    assert len(answered) == 1, "a read receipt is answered once"
    assert len([e for r, e in s.gp.events if r == s.room and isinstance(e, RoomMessageText)
                and "accuser réception" in e.body]) == 1
