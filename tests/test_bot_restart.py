"""A restart keeps the device and the sync position, and answers each command exactly once."""
from __future__ import annotations

import asyncio
import signal


async def _settle(alice, room, cmd_ids, seconds=3.0):
    """Wait for the replies, then a little longer so that a duplicate would have time to show."""
    for cmd in cmd_ids:
        await alice.wait_reply(room, cmd, timeout=30)
    await asyncio.sleep(seconds)


async def test_restart_reuses_device_and_answers_missed_commands_once(clinician, bot_process):
    alice = await clinician("medecin")
    bot = bot_process(staff=[alice.user_id])
    room = await alice.create_room([bot.user_id])
    await alice.wait_joined(room, bot.user_id)
    first, _ = await alice.ask(room, "!aide")
    device = bot.events("bot.started")[0]["device_id"]
    assert bot.events("bot.started")[0]["resumed"] is False

    assert bot.stop() == 0, "SIGTERM must stop the bot cleanly"
    while_down = [await alice.send(room, "!aide"), await alice.send(room, "/aide")]

    bot.start()
    started = bot.events("bot.started")[0]
    assert started["device_id"] == device, "a restart must not create a new device"
    assert started["resumed"] is True
    after = [await alice.send(room, "!aide")]
    await _settle(alice, room, while_down + after)
    for cmd in [*while_down, *after]:
        replies = alice.replies_to(room, cmd)
        assert len(replies) == 1, f"{cmd} answered {len(replies)} times"
        assert replies[0].decrypted
    assert len(alice.replies_to(room, first.source["content"]["m.relates_to"]["m.in_reply_to"]["event_id"])) == 1


async def test_killed_bot_answers_each_command_once_after_restart(clinician, bot_process):
    alice = await clinician("infirmier")
    bot = bot_process(staff=[alice.user_id])
    room = await alice.create_room([bot.user_id])
    await alice.wait_joined(room, bot.user_id)
    await alice.ask(room, "!aide")
    burst = [await alice.send(room, "!aide") for _ in range(5)]
    await asyncio.sleep(0.05)
    bot.stop(signal.SIGKILL)   # in the middle of answering the burst, most likely
    bot.start()
    await _settle(alice, room, burst)
    counts = [len(alice.replies_to(room, cmd)) for cmd in burst]
    assert counts == [1] * len(burst)
