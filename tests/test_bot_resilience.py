"""The bot's loop survives what a service meets (#14): a database error, a command whose room key comes only after a
restart, a command that shows patient data typed in a room that is not encrypted."""
from __future__ import annotations

import asyncio
import sqlite3

from nio import ToDeviceMessage
from sqlalchemy import text

from liaison.db import create_engine


async def _execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def test_a_database_error_does_not_end_the_loop_and_the_command_is_answered_after(clinician, bot_process,
                                                                                        db_url):
    alice = await clinician("medecin")
    bot = bot_process(staff=[alice.user_id], database_url=db_url)
    room = await alice.create_room([bot.user_id])
    await alice.wait_joined(room, bot.user_id)
    await alice.ask(room, "!aide")
    await _execute(db_url, "ALTER TABLE bot_command RENAME TO bot_command_away")   # the next write fails
    event_id = await alice.send(room, "!aide")
    await asyncio.to_thread(bot.wait_log, "bot.store_failed", 30)
    assert bot.process.poll() is None, "the bot is still running"
    await _execute(db_url, "ALTER TABLE bot_command_away RENAME TO bot_command")
    reply = await alice.wait_reply(room, event_id, timeout=40)
    assert "Commandes de Liaison" in reply.body
    await asyncio.sleep(2)
    assert len(alice.replies_to(room, event_id)) == 1, "answered once"


async def test_a_command_whose_key_comes_after_a_restart_is_answered(clinician, bot_process):
    alice = await clinician("infirmier")
    bot = bot_process(staff=[alice.user_id])
    room = await alice.create_room([bot.user_id])
    await alice.wait_joined(room, bot.user_id)
    await alice.ask(room, "!aide")
    c = alice.client
    bot_devices = list(c.device_store.active_user_devices(bot.user_id))
    for device in bot_devices:   # the room key of the next message will not reach the bot…
        c.blacklist_device(device)
    c.invalidate_outbound_session(room)
    await c.share_group_session(room, ignore_unverified_devices=True)
    session = c.olm.outbound_group_sessions[room]
    key = {"algorithm": "m.megolm.v1.aes-sha2", "room_id": room, "session_id": session.id,
           "session_key": session.session_key}   # exported before the message: it opens it
    event_id = await alice.send(room, "!aide")
    await asyncio.to_thread(bot.wait_log, "bot.undecryptable", 30)
    assert bot.stop() == 0
    with sqlite3.connect(bot.workdir / "liaison.db") as db:
        kept = [r[0] for r in db.execute("SELECT event_id FROM bot_undecrypted")]
    assert event_id in kept, "kept across the restart, ciphertext only"

    for device in bot_devices:   # … until now, while the bot is down
        olm_session = c.olm.session_store.get(device.curve25519)
        content = c.olm._olm_encrypt(olm_session, device, "m.room_key", key)
        await c.to_device(ToDeviceMessage("m.room.encrypted", bot.user_id, device.id, content))
    bot.start()
    reply = await alice.wait_reply(room, event_id, timeout=40)
    assert "Commandes de Liaison" in reply.body


async def test_patient_data_is_never_shown_in_a_room_that_is_not_encrypted(clinician, bot_process):
    coord = await clinician("coordination")
    roster = [{"user_id": coord.user_id, "name": "Claire Morel", "profession": "coordinateur", "coordinator": True}]
    bot = bot_process(staff=[], roster=roster, pathways={"ins_test_mode": True})
    room = await coord.create_room([bot.user_id], encrypted=False)
    await coord.wait_joined(room, bot.user_id)
    help_, _ = await coord.ask(room, "!aide")
    assert "Commandes de Liaison" in help_.body
    for command in ("!parcours", "!docs", "!consentements", "!trace", "!mss quarantaine"):
        refused, _ = await coord.ask(room, command)
        assert "n'est pas chiffré" in refused.body, (command, refused.body)
