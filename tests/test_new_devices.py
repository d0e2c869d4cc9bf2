"""Devices as people live them (#12): a new phone after the bridge started, a colleague who logs in late,
a member removed who adds a device. Real Synapse, the real bot and bridge, real mail, Element's crypto."""
from __future__ import annotations

import asyncio
import time

import pytest
from nio import MegolmEvent, RoomMessage, RoomMessageNotice, RoomMessageText

from liaison.db import open_database
from liaison.stores.trace import Trace
from tests.support.clinician import Clinician
from tests.support.element import ElementDevice
from tests.support.mss import box, is_puppet, letter, open_structure, send_mail, wait_mail, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"


def _puppet_text(room: str, words: str):
    return lambda r, e: (r == room and isinstance(e, RoomMessageText) and is_puppet(e.sender)
                         and words in e.body)


def _letter_on(device: ElementDevice, words: str):
    return lambda x: (is_puppet(x.get("sender", "")) and x.get("decrypted")
                      and words in (x.get("body") or ""))


async def _letter(s, subject: str, text: str, **kw) -> str:
    """A letter from the cardiologist to the pathway's own address."""
    cardio, to = box(s.mail, CARDIO), f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    return await send_mail(s.mail, cardio, letter(cardio, to, subject=subject, text=text, **kw), to)


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path, new_user):
    nurse_id, nurse_password = new_user("infirmiere")   # invited at the opening, logs in only later
    s = await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge",
                             extra_members=({"user_id": nurse_id, "name": "Sophie Bernard",
                                             "profession": "infirmier", "sex": "F"},))
    s.nurse = (nurse_id, nurse_password)
    return s


async def test_a_new_element_device_reads_the_next_letters_and_answers_them(structure, synapse):
    s = structure
    await _letter(s, "Premier courrier", "Bonjour, première lettre.", xdm=xdm_letter())   # her INS: she treats him
    await s.gp.wait_for(_puppet_text(s.room, "première lettre"), 30)   # the puppet is up and in the room

    phone = await ElementDevice.start(synapse.url, s.gp.user_id, s.gp.password, s.room)
    try:
        letter_id = await _letter(s, "Second courrier", "Voici le compte rendu.")
        seen = await phone.wait_for(_letter_on(phone, "Voici le compte rendu"), 10)
        assert seen["encrypted"], "end-to-end encrypted, and decrypted by a device logged in after the puppet"

        reply = await phone.send("Bien reçu, merci.", reply_to=seen["event"], thread_root=seen["event"])
        answer = await wait_mail(s.mail, box(s.mail, CARDIO), lambda m: letter_id in str(m.get("In-Reply-To", "")),
                                 30)
        assert "Bien reçu, merci." in answer.get_body(("plain",)).get_content()
        assert reply

        # The device list changes twice more: a second new device, then the first one leaves.
        tablet = await ElementDevice.start(synapse.url, s.gp.user_id, s.gp.password, s.room)
        await _letter(s, "Troisième courrier", "Troisième lettre.")
        for device in (phone, tablet):
            await device.wait_for(_letter_on(device, "Troisième lettre"), 10)
        await phone.quit()
        await _letter(s, "Quatrième courrier", "Quatrième lettre.")
        await tablet.wait_for(_letter_on(tablet, "Quatrième lettre"), 10)
        await tablet.quit()
    finally:
        await phone.quit()


async def test_a_colleague_who_logs_in_after_the_opening_reads_a_current_summary(structure, synapse):
    s = structure
    await _letter(s, "Lettre de sortie", "Lettre jointe.", xdm=xdm_letter())
    await s.gp.wait_for(lambda r, e: r == s.room and "Document n°" in getattr(e, "body", ""), 30)

    nurse_id, password = s.nurse
    nurse = await ElementDevice.start(synapse.url, nurse_id, password, s.room)   # accepts the invitation
    try:
        summary = await nurse.wait_for(lambda x: x.get("sender") == s.bot.user_id and x.get("decrypted")
                                       and "Résumé republié" in (x.get("body") or ""), 15)
        assert "Sophie Bernard" in summary["body"] and "DURAND Marcel" in summary["body"]
        for _ in range(100):   # re-pinned just after it is posted
            pinned = (await s.gp.client.room_get_state_event(s.room, "m.room.pinned_events")).content["pinned"]
            if pinned == [summary["event"]]:
                break
            await asyncio.sleep(0.1)
        assert pinned == [summary["event"]], "the readable summary is the pinned one"
        docs = await nurse.wait_for(lambda x: x.get("sender") == s.bot.user_id and x.get("decrypted")
                                    and "Documents du parcours" in (x.get("body") or ""), 15)
        assert "Lettre de liaison" in docs["body"] and "MSSanté" in docs["body"]
        assert not [e for e in nurse.events(lambda e: e.get("sender") == s.bot.user_id)
                    if e["ts"] >= summary["ts"] and not e["decrypted"]], "what the bot says next, she reads"

        asked = await nurse.send("!docs")
        answer = await nurse.wait_for(lambda x: x.get("in_reply_to") == asked and x.get("decrypted"), 15)
        assert "Lettre de liaison" in answer["body"]
    finally:
        await nurse.quit()

    trace = Trace(await open_database(s.bot.database_url))
    shares = [e for e in await trace.entries() if e.action.startswith("republier") and e.subject == nurse_id]
    assert len(shares) == 1 and shares[0].allowed and shares[0].rule == "team.health", "decided and traced, once"


async def test_a_second_device_of_a_member_gets_one_new_summary(structure, synapse, tmp_path):
    s = structure
    before = len(s.bot.events("newcomers.reposted"))
    second = await Clinician(synapse.url, s.gp.user_id, s.gp.password, tmp_path / "gp-second").start()
    try:
        summary = await second.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageNotice)
                                        and e.sender == s.bot.user_id and "Résumé republié" in e.body, 15)
        assert "Dr Paul Martin" in summary.body
        await asyncio.sleep(2)   # a second post would come within the settle time
        assert len(s.bot.events("newcomers.reposted")) == before + 1, "once per change, not per device"
    finally:
        await second.stop()


async def test_a_removed_member_s_new_device_gets_no_key_and_no_summary(structure, synapse, tmp_path, clinician):
    s = structure
    nurse_id, password = s.nurse
    first = await Clinician(synapse.url, nurse_id, password, tmp_path / "nurse-first").start()
    await first.wait_for(lambda r, e: r == s.room and getattr(e, "sender", "") == s.bot.user_id, 30)
    reply, _ = await s.coord.ask(s.room, f"!opposition {nurse_id}")
    assert "Opposition enregistrée pour Sophie Bernard (Infirmière)" in reply.body, reply.body
    await first.stop()
    reposts = len(s.bot.events("newcomers.reposted"))
    trace = Trace(await open_database(s.bot.database_url))
    shared = len([e for e in await trace.entries() if e.action.startswith("republier") and e.subject == nurse_id])

    late = await Clinician(synapse.url, nurse_id, password, tmp_path / "nurse-late").start()
    since = int(time.time() * 1000)
    try:
        reply, _ = await s.gp.ask(s.room, "!parcours info")          # the bot speaks in the room…
        await _letter(s, "Après opposition", "Lettre après l'opposition.")   # … and so does the puppet
        await s.gp.wait_for(_puppet_text(s.room, "après l'opposition"), 30)
        await asyncio.sleep(1)
        keys = [k for k in late.client.olm.inbound_group_store if k.room_id == s.room]
        assert not keys, "no room key reached the removed member's new device"
        assert not [e for r, e in late.events if r == s.room and isinstance(e, (RoomMessage, MegolmEvent))
                    and e.server_timestamp >= since], "nothing said after her removal reaches her"
        assert len(s.bot.events("newcomers.reposted")) == reposts
    finally:
        await late.stop()
    assert len([e for e in await trace.entries() if e.action.startswith("republier") and e.subject == nurse_id]) \
        == shared, "nothing more was shared with her"
