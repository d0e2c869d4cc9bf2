"""A reply the homeserver never pushed to the bridge is mailed all the same.

Synapse keeps what it has queued for an appservice in memory and loses it when it restarts (synapse#11637): in the
crash test, one reply in 200 was written as Synapse went down and never reached the bridge. Here the loss is made
certain, not left to timing: the reply is written while the bridge is down, then Synapse is stopped and the
transactions it kept for the bridge are deleted from its database before it starts again. Only the bridge's
catch-up (bridge/catch_up.py: it reads the rooms' last messages back after a start) can find the reply.
"""
from __future__ import annotations

import asyncio
import sqlite3

import pytest
from nio import RoomMessageText

from tests.support.mss import box, letter, open_structure, send_mail, wait_mail, xdm_letter

CARDIO = "c.lefebvre@chu-demo.mssante.test"


@pytest.fixture
async def structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path):
    return await open_structure(clinician, bot_process, bridge_process, synapse, mail_gateway, tmp_path / "bridge")


def _pushes_kept(synapse, forget: bool = False) -> int:
    """The transactions Synapse keeps to push to the appservice (down); with `forget`, deleted: their events lost."""
    db = sqlite3.connect(synapse.data_dir / "homeserver.db", timeout=30)
    try:
        with db:
            if forget:
                return db.execute("DELETE FROM application_services_txns").rowcount
            return db.execute("SELECT COUNT(*) FROM application_services_txns").fetchone()[0]
    finally:
        db.close()


def _bridge_saw(bot, event_id: str) -> bool:
    db = sqlite3.connect(bot.workdir / "liaison.db", timeout=30)
    try:
        return db.execute("SELECT 1 FROM as_event WHERE event_id = ?", (event_id,)).fetchone() is not None
    finally:
        db.close()


async def _caught_up(bridge, timeout: float = 60.0) -> dict:
    """The catch-up's line of this start (the bridge logs it once its first sync is done)."""
    for _ in range(int(timeout * 10)):
        done = bridge.events("bridge.caught_up")
        if done:
            return done[-1]
        await asyncio.sleep(0.1)
    raise AssertionError("the bridge never read its rooms back after starting")


async def test_a_reply_the_homeserver_never_pushed_is_mailed(structure, synapse):
    s = structure
    cardio = box(s.mail, CARDIO)
    to = f"liaison+{s.code.lower()}@msp-demo.mssante.test"
    letter_id = await send_mail(s.mail, cardio, letter(cardio, to, subject="Sortie", text="Voici la lettre.", xdm=xdm_letter()), to)
    posted = await s.gp.wait_for(lambda r, e: r == s.room and isinstance(e, RoomMessageText)
                                 and e.sender == s.puppet(CARDIO) and "Voici la lettre" in e.body, 60)

    s.bridge.stop()
    reply = "Bien reçu, je la vois jeudi."
    sent = await s.gp.client.room_send(s.room, "m.room.message", {
        "msgtype": "m.text", "body": reply, "m.relates_to": {"m.in_reply_to": {"event_id": posted.event_id}}},
        ignore_unverified_devices=True)
    for _ in range(200):   # Synapse tried to push it, found the bridge down, and kept it to push again later
        if await asyncio.to_thread(_pushes_kept, synapse):
            break
        await asyncio.sleep(0.1)
    synapse.stop()
    assert _pushes_kept(synapse, forget=True) >= 1, "Synapse had kept the reply for the bridge"
    synapse.start()
    s.bridge.start()

    assert (await _caught_up(s.bridge))["events"] >= 1
    assert _bridge_saw(s.bot, sent.event_id), "the reply, never pushed, found in the room by the catch-up"
    mail = await wait_mail(s.mail, cardio, lambda m: letter_id in str(m.get("In-Reply-To", "")), 60)
    assert reply in mail.get_body(("plain",)).get_content()
