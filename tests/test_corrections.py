"""Corrections travel (#24 item 2): an edit or a deletion of a room message that was mailed, or waits in the outbox.

The pure reading of edits and deletions, then the relay out's own code (`bridge.outbound`, `bridge.corrections`,
`bridge.outbox.send_one`) on the real stores and the real policy core; Matrix and SMTP are fakes (the real ones are in
tests/test_bridge_corrections.py)."""
from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from bridge import outbox
from bridge.corrections import correction_text, retract_text
from bridge.deps import BridgeSettings, Deps
from bridge.mail_out import compose, as_bytes, retext
from bridge.metrics import Metrics
from bridge.outbound import Outbound
from bridge.smtp import SmtpError
from bridge.store import BridgeStore
from liaison.bootstrap import shared_on
from liaison.clock import MovableClock
from liaison.doc_check import Antivirus
from liaison.matrix.events import Redaction, pushed_message, redaction
from liaison.stores.mail import Thread
from liaison.trusted import TrustedDomains
from policies.paths import PATHS
from policies.sharing import Knobs
from tests.fakes import FakeMatrix

CARDIO = "c.lefebvre@chu-demo.mssante.test"
GP, OTHER, COORD = "@gp:hs", "@nurse:hs", "@coord:hs"
ROOM, LETTER, LETTER_MID = "!room:hs", "$letter", "letter-1@chu-demo.mssante.test"


# -- the pure reading ------------------------------------------------------------------------------------------------

def _event(content: dict, sender: str = GP, event_id: str = "$edit") -> dict:
    return {"type": "m.room.message", "room_id": ROOM, "event_id": event_id, "sender": sender, "content": content}


def test_an_edit_is_read_as_its_new_content_naming_the_edited_event():
    msg = pushed_message(_event(e := {"msgtype": "m.text", "body": "* 5 mg",
                                      "m.new_content": {"msgtype": "m.text", "body": "5 mg matin et soir"},
                                      "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}}), e)
    assert msg is not None and msg.replaces == "$orig"
    assert msg.body == "5 mg matin et soir", "the new content, never the « * » fallback"
    assert (msg.reply_to, msg.thread_root, msg.file) == (None, None, None)


@pytest.mark.parametrize("relates", [{"rel_type": "m.replace"}, {"rel_type": "m.replace", "event_id": 7}])
def test_an_edit_without_its_target_or_new_content_is_nothing(relates):
    assert pushed_message(_event(c := {"msgtype": "m.text", "body": "* x", "m.relates_to": relates,
                                       "m.new_content": {"msgtype": "m.text", "body": "x"}}), c) is None
    no_new = {"msgtype": "m.text", "body": "* x", "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"}}
    assert pushed_message(_event(no_new), no_new) is None


def test_a_plain_message_replaces_nothing():
    msg = pushed_message(_event(c := {"msgtype": "m.text", "body": "ok"}), c)
    assert msg is not None and msg.replaces is None


def test_a_redaction_names_what_it_removes_before_and_from_room_version_11():
    old = {"type": "m.room.redaction", "room_id": ROOM, "event_id": "$r", "sender": GP, "redacts": "$o",
           "content": {}}
    new = {**{k: v for k, v in old.items() if k != "redacts"}, "content": {"redacts": "$o"}}
    assert redaction(old) == redaction(new) == Redaction(ROOM, "$r", GP, "$o")
    assert redaction({**old, "type": "m.room.message"}) is None
    assert redaction({**old, "redacts": None, "content": {}}) is None
    assert redaction({**old, "state_key": ""}) is None


def test_retext_keeps_headers_and_signature_and_puts_the_new_text_byte_for_byte():
    raw = as_bytes(compose(from_address="liaison@msp.test", from_display="Dr Martin", to=CARDIO, subject="Sortie",
                           text="5 mg le soir", event_id="$orig", in_reply_to=LETTER_MID, signature="Dr Martin\nMSP"))
    new = "10 mg le soir — « ajusté » =?utf-8?q?x?=\nligne 2"
    msg = email.message_from_bytes(retext(raw, new), policy=email.policy.default)
    old = email.message_from_bytes(raw, policy=email.policy.default)
    for header in ("Message-ID", "In-Reply-To", "From", "To", "Subject"):
        assert msg[header] == old[header]
    assert msg.get_content().replace("\r\n", "\n") == new + "\n\n-- \nDr Martin\nMSP\n"


def test_the_correction_and_retract_sentences():
    assert correction_text(0, "x").startswith("Correction du message du 01/01/1970 à ")
    assert correction_text(0, "a\n b").endswith(" :\n\na\n b")
    assert retract_text(0, True).startswith("Message retiré par son auteur (envoyé le 01/01/1970 à ")
    assert "équipe" in retract_text(0, False)


def test_the_new_paths_are_declared():
    assert {"mail.out.correct", "mail.out.retract"} <= set(PATHS)


# -- the relay out on the real stores ----------------------------------------------------------------------------------

class _Smtp:
    def __init__(self) -> None:
        self.up, self.sent = True, []

    async def send(self, raw: bytes, **_kw) -> None:
        if not self.up:
            raise SmtpError("connexion refusée")
        self.sent.append(email.message_from_bytes(raw, policy=email.policy.default))


@pytest.fixture
async def relay(engine):
    clock = MovableClock()
    shared = shared_on(engine, Knobs(), bridge=True, trusted=TrustedDomains(frozenset({"chu-demo.mssante.test"})),
                       clock=clock)
    bridge = FakeMatrix("@mss_relais:hs")
    bridge.add_room(ROOM, members=(GP, OTHER))
    settings = BridgeSettings(address="liaison@msp-demo.mssante.test", display_name="MSP", server_name="hs",
                              bot_user_id="@bot:hs")
    smtp = _Smtp()
    d = Deps.of(shared, settings, BridgeStore(engine, clock), bridge, SimpleNamespace(is_puppet=lambda u: False),
                smtp, Metrics(), Antivirus())
    patient = await shared.pathways.add_patient(ins="148057512345643", oid="1.2.250.1.213.1.4.10",
                                                birth_name="DURAND", first_names="Marcel",
                                                birth_date=date(1948, 5, 12), sex="M", actor=COORD)
    pathway = await shared.pathways.add_pathway(patient_id=patient.id, type_key="autre", code="P-CORR1", actor=COORD)
    await shared.pathways.update(pathway.id, status="open", room_id=ROOM)
    await shared.mail.add_correspondent(pathway.id, CARDIO, "ins")
    await shared.mail.add_thread(Thread(LETTER_MID, pathway.id, ROOM, LETTER, LETTER, CARDIO, "Sortie de M. Durand"))
    w = SimpleNamespace(d=d, out=Outbound(d), smtp=smtp, bridge=bridge, clock=clock, engine=engine, patient=patient)

    async def push(sender: str, content: dict, kind: str = "m.room.message", **extra) -> str:
        event_id = bridge.new_event_id()
        bridge._timeline(ROOM, sender, kind, content, event_id, **extra)
        await d.store.record_events([bridge.rooms[ROOM].timeline[-1]])
        await w.out.process_pending()
        return event_id

    async def flush() -> None:
        for out in await d.store.due(clock.now_ms() + 10**9):
            await outbox.send_one(d, out)

    w.push, w.flush = push, flush
    w.reply = lambda body: push(GP, {"msgtype": "m.text", "body": body,
                                     "m.relates_to": {"m.in_reply_to": {"event_id": LETTER}}})
    w.edit = lambda target, body, sender=GP: push(sender, {
        "msgtype": "m.text", "body": f"* {body}", "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": target}})
    w.delete = lambda target, sender=GP: push(sender, {}, "m.room.redaction", redacts=target)
    return w


def _body(mail) -> str:
    return mail.get_content().replace("\r\n", "\n")


async def _state(w, event_id: str) -> str:
    async with w.engine.connect() as conn:
        return (await conn.execute(text("SELECT state FROM as_event WHERE event_id = :e"), {"e": event_id})).scalar()


async def _traced(w, path: str) -> list:
    async with w.engine.connect() as conn:
        return (await conn.execute(text("SELECT allowed FROM trace_entry WHERE action = :a"),
                                   {"a": PATHS[path].label})).scalars().all()


async def test_an_edit_of_a_sent_reply_sends_one_correction_in_the_same_thread(relay):
    w = relay
    original = await w.reply("Furosémide 40 mg le matin")
    await w.flush()
    [first] = w.smtp.sent
    edit = await w.edit(original, "Furosémide 20 mg le matin")
    again = w.bridge.read_pushed(w.bridge.rooms[ROOM].timeline[-1])
    assert await w.out.relay(again) == "done"   # handled twice (a crash before its end): still one correction
    await w.flush()
    assert await w.out.relay(again) == "done"   # … even once the correction has left
    await w.flush()
    assert len(w.smtp.sent) == 2, "one correction"
    correction = w.smtp.sent[1]
    assert correction["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in correction["References"] and LETTER_MID in correction["References"]
    assert correction["Subject"] == "Re: Correction : Sortie de M. Durand"
    body = _body(correction)
    assert body.startswith("Correction du message du ") and " :\n\nFurosémide 20 mg le matin\n\n-- \n" in body
    assert "40 mg" not in body
    assert await _state(w, edit) == "done"
    assert await _traced(w, "mail.out.correct") == [1]


async def test_an_edit_of_a_queued_reply_replaces_it_and_the_latest_text_wins(relay):
    w = relay
    w.smtp.up = False
    original = await w.reply("Rendez-vous lundi")
    await w.flush()
    await w.edit(original, "Rendez-vous mardi")
    await w.edit(original, "Rendez-vous mercredi")
    w.smtp.up = True
    await w.flush()
    [mail] = w.smtp.sent
    assert _body(mail).startswith("Rendez-vous mercredi\n\n-- \n"), "the original, with the latest text only"
    assert "Correction" not in _body(mail)
    assert await _traced(w, "mail.out.correct") == [1, 1]


async def test_edits_of_a_sent_reply_while_smtp_is_down_leave_as_one_correction_with_the_latest_text(relay):
    w = relay
    original = await w.reply("Rendez-vous lundi")
    await w.flush()
    w.smtp.up = False
    await w.edit(original, "Rendez-vous mardi")
    await w.flush()
    await w.edit(original, "Rendez-vous mercredi")
    w.smtp.up = True
    await w.flush()
    assert len(w.smtp.sent) == 2
    assert "Rendez-vous mercredi\n" in _body(w.smtp.sent[1]) and "mardi" not in _body(w.smtp.sent[1])


async def test_an_edit_by_someone_else_or_of_a_message_never_mailed_does_nothing(relay):
    w = relay
    original = await w.reply("Rendez-vous lundi")
    await w.flush()
    by_other = await w.edit(original, "Rendez-vous jamais", sender=OTHER)
    plain = await w.push(GP, {"msgtype": "m.text", "body": "note interne"})
    of_plain = await w.edit(plain, "note interne corrigée")
    await w.flush()
    assert len(w.smtp.sent) == 1
    assert (await _state(w, by_other), await _state(w, of_plain)) == ("ignored", "ignored")


async def test_a_correction_refused_by_the_law_does_not_leave_and_the_room_is_told(relay):
    w = relay
    original = await w.reply("Rendez-vous lundi")
    await w.flush()
    await w.d.consents.add_objection(w.patient.id, scope_kind="person", scope=CARDIO, actor=COORD)
    edit = await w.edit(original, "Rendez-vous mardi")
    await w.flush()
    assert len(w.smtp.sent) == 1
    assert await _state(w, edit) == "refused"
    assert any("Correction non transmise" in b for b in w.bridge.bodies(ROOM))
    assert await _traced(w, "mail.out.correct") == [0]


async def test_a_queued_reply_deleted_never_leaves_and_the_room_is_told(relay):
    w = relay
    w.smtp.up = False
    original = await w.reply("Rendez-vous lundi")
    await w.flush()
    await w.delete(original)
    w.smtp.up = True
    await w.flush()
    assert w.smtp.sent == []
    assert (ROOM, original, "⚠️ retiré") in w.bridge.reactions
    assert any(b.startswith("⚠️ Courriel pour") and "Rien n'est parti" in b for b in w.bridge.bodies(ROOM))
    assert (await w.d.store.outgoing_by_event(original)).state == "withdrawn"


async def test_a_sent_reply_deleted_sends_a_short_notice_without_the_old_text(relay):
    w = relay
    original = await w.reply("Furosémide 40 mg le matin")
    await w.flush()
    w.smtp.up = False
    await w.edit(original, "Furosémide 20 mg le matin")   # a correction still waiting: withdrawn with it
    await w.flush()
    deletion = await w.delete(original)
    await w.delete(original)   # a second redaction of the same message: one notice
    w.smtp.up = True
    await w.flush()
    assert len(w.smtp.sent) == 2
    notice = w.smtp.sent[1]
    assert notice["In-Reply-To"] == w.smtp.sent[0]["Message-ID"]
    body = _body(notice)
    assert body.startswith("Message retiré par son auteur (envoyé le ") and "Furosémide" not in body
    assert "Furosémide" not in notice["Subject"]
    assert await _state(w, deletion) == "done"
    assert await _traced(w, "mail.out.retract") == [1]


async def test_a_deletion_of_a_message_never_mailed_does_nothing(relay):
    w = relay
    plain = await w.push(GP, {"msgtype": "m.text", "body": "note interne"})
    deletion = await w.delete(plain)
    await w.flush()
    assert w.smtp.sent == [] and await _state(w, deletion) == "ignored"


async def _while_leaving(w, act):
    """`act` (an edit or a deletion) arrives while the outbox's SMTP transaction for the reply is under way."""
    gate, entered, send = asyncio.Event(), asyncio.Event(), w.smtp.send

    async def slow(raw: bytes, **kw) -> None:
        entered.set()
        await gate.wait()
        await send(raw, **kw)

    w.smtp.send = slow
    sending = asyncio.create_task(outbox.run(w.d))
    try:
        original = await w.reply("Rendez-vous lundi")
        await asyncio.wait_for(entered.wait(), 5)
        [out_id] = list(w.d.store._claims)
        acting = asyncio.create_task(act(original))
        while not acting.done() and w.d.store._claims[out_id][1][0] < 2:   # the act waits for the send to end
            await asyncio.sleep(0.01)
        gate.set()
        await asyncio.wait_for(acting, 5)
        w.smtp.send = send
        async with asyncio.timeout(5):   # the outbox sends what the act queued, then has nothing left
            while await w.d.store.depth():
                await asyncio.sleep(0.01)
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
    return original


async def test_an_edit_while_the_old_text_is_leaving_follows_it_as_a_correction(relay):
    w = relay
    await _while_leaving(w, lambda original: w.edit(original, "Rendez-vous mardi"))
    assert [_body(m).split("\n\n-- ")[0] for m in w.smtp.sent][0] == "Rendez-vous lundi"
    assert len(w.smtp.sent) == 2, "the text that left is followed by its correction, never lost"
    assert "Rendez-vous mardi" in _body(w.smtp.sent[1]) and "Correction du message" in _body(w.smtp.sent[1])


async def test_a_deletion_while_the_reply_is_leaving_is_followed_by_the_retract_notice(relay):
    w = relay
    original = await _while_leaving(w, w.delete)
    assert len(w.smtp.sent) == 2 and _body(w.smtp.sent[1]).startswith("Message retiré par son auteur")
    assert (await w.d.store.outgoing_by_event(original)).state == "sent"
    assert not any("Rien n'est parti" in b for b in w.bridge.bodies(ROOM)), "never told it did not leave"


async def test_a_reply_s_quoted_fallback_is_never_mailed_nor_hides_a_command(relay):
    """A client that still writes a reply fallback (`> <@x> …` lines, a blank line, then the text): the mail carries
    only what was typed, and a command typed as a reply is a command, never mailed (issue 24)."""
    w = relay
    quoted = "> <@mss_x:hs> Voici la lettre de sortie.\n> Traitement : …\n\n"
    command = await w.push(GP, {"msgtype": "m.text", "body": quoted + "!mss quarantaine",
                                "m.relates_to": {"m.in_reply_to": {"event_id": LETTER}}})
    assert await _state(w, command) == "ignored"
    answer = await w.push(GP, {"msgtype": "m.text", "body": quoted + "Bien reçu, je la vois jeudi.",
                               "m.relates_to": {"m.in_reply_to": {"event_id": LETTER}}})
    assert await _state(w, answer) == "done"
    await w.flush()
    [mail] = w.smtp.sent
    assert _body(mail).startswith("Bien reçu, je la vois jeudi.") and "Voici la lettre" not in _body(mail)
