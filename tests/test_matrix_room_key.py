"""A member removed while the room key is being shared, against a real Synapse.

The bot renews a room's key when it removes someone (an objection: they must not read what follows). nio shares
a new key over several awaits; a renewal landing in between dropped the session being shared, and the send
failed outside any Matrix error (« Erreur interne » in !opposition, once in a CI run: a late joiner's summary
was being shared when the objection removed her). The test holds the share open (the messages carrying the key
wait on a gate) until the homeserver has done the removal, so the renewal lands inside that window every time.
"""
from __future__ import annotations

import asyncio
import secrets

from nio import RoomMemberEvent, ShareGroupSessionResponse

from liaison.matrix import Matrix

ENCRYPTED = [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]


def _gate_key_shares(matrix: Matrix) -> tuple[asyncio.Event, asyncio.Event]:
    """(entered, release): the to-device messages that carry a new room key to members' devices (sent by nio's
    share, after it made the session) wait for `release`."""
    entered, release = asyncio.Event(), asyncio.Event()
    send = matrix.client._send

    async def gated(response_class, *args, **kwargs):
        if response_class is ShareGroupSessionResponse:
            entered.set()
            await release.wait()
        return await send(response_class, *args, **kwargs)
    matrix.client._send = gated
    return entered, release


async def test_a_removal_while_the_key_is_shared_waits_for_that_send(synapse, new_user, clinician, tmp_path):
    user_id, password = new_user("liaison")
    nurse, social = await clinician("infirmiere"), await clinician("social")
    bot = Matrix(synapse.url, user_id, tmp_path / "store", pickle_key=secrets.token_hex(32))
    await bot.login(password, None)
    try:
        room = await bot.create_room(name="x", topic="", initial_state=ENCRYPTED, power_levels=None,
                                     invite=[nurse.user_id, social.user_id])
        for member in (nurse, social):
            await nurse.wait_joined(room, member.user_id)

        entered, release = _gate_key_shares(bot)
        summary = asyncio.create_task(bot.send(room, {"msgtype": "m.text", "body": "résumé"}, "t-summary"))
        await asyncio.wait_for(entered.wait(), 30)
        assert room in bot.client.sharing_session and room in bot.client.olm.outbound_group_sessions
        removal = asyncio.create_task(bot.kick(room, social.user_id, "Opposition du patient"))
        left = await nurse.wait_for(lambda r, e: r == room and isinstance(e, RoomMemberEvent)
                                    and e.state_key == social.user_id and e.membership == "leave")
        assert left.sender == user_id
        release.set()
        await summary   # raised KeyError (nio's shared flag on a session the removal dropped) before the fix
        await removal

        after = await bot.send(room, {"msgtype": "m.text", "body": "après le retrait"}, "t-after")
        holders = {user for user, _device in bot.client.olm.outbound_group_sessions[room].users_shared_with}
        assert social.user_id not in holders and nurse.user_id in holders, "what follows goes with a new key"
        seen = await nurse.wait_for(lambda r, e: r == room and getattr(e, "event_id", None) == after)
        assert getattr(seen, "body", None) == "après le retrait", "the nurse reads what follows"
    finally:
        await bot.close()
