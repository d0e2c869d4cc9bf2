"""The bot in encrypted rooms, against a real Synapse: the clinician's side of `!aide`."""
from __future__ import annotations


from nio import RoomMemberEvent


async def _room_with_bot(clinician, bot_process, encrypted=True):
    alice = await clinician("medecin")
    bot = bot_process(staff=[alice.user_id])
    room = await alice.create_room([bot.user_id], encrypted=encrypted)
    await alice.wait_joined(room, bot.user_id)
    return alice, bot, room


async def test_aide_in_encrypted_room_gets_decrypted_threaded_reply(clinician, bot_process):
    alice, bot, room = await _room_with_bot(clinician, bot_process)
    reply, cmd_id = await alice.ask(room, "!aide")
    assert reply.decrypted, "the reply must travel encrypted"
    assert reply.sender == bot.user_id
    content = reply.source["content"]
    assert content["m.relates_to"]["m.in_reply_to"]["event_id"] == cmd_id
    assert content["format"] == "org.matrix.custom.html"
    assert "<code>!aide" in content["formatted_body"]
    assert "!aide" in content["body"] and "<" not in content["body"].split("\n")[0]


async def test_slash_prefix_case_and_accents_are_forgiven(clinician, bot_process):
    alice, bot, room = await _room_with_bot(clinician, bot_process)
    for text in ("/aide", "!Aïde", "!HELP"):
        reply, _ = await alice.ask(room, text)
        assert "Commandes de Liaison" in reply.body, text


async def test_unknown_command_gets_closest_hint(clinician, bot_process):
    alice, bot, room = await _room_with_bot(clinician, bot_process)
    reply, _ = await alice.ask(room, "!aid")
    assert "Commande inconnue" in reply.body and "!aide" in reply.body


async def test_plain_room_commands_work_too(clinician, bot_process):
    alice, bot, room = await _room_with_bot(clinician, bot_process, encrypted=False)
    reply, _ = await alice.ask(room, "!aide")
    assert not reply.decrypted and "Commandes de Liaison" in reply.body


async def test_ordinary_conversation_is_not_answered(clinician, bot_process):
    alice, bot, room = await _room_with_bot(clinician, bot_process)
    chat = await alice.send(room, "Bonjour à tous, RAS pour Mme D. aujourd'hui")
    reply, _ = await alice.ask(room, "!aide")   # processed after the chat line
    assert alice.replies_to(room, chat) == []


async def test_invite_from_non_staff_is_declined(clinician, bot_process):
    staff = await clinician("coordination")
    stranger = await clinician("inconnu")
    bot = bot_process(staff=[staff.user_id])
    room = await stranger.create_room([bot.user_id])
    left = await stranger.wait_for(lambda r, e: r == room and isinstance(e, RoomMemberEvent)
                                   and e.state_key == bot.user_id and e.membership == "leave", 30)
    assert left.prev_membership == "invite"
    assert not any(isinstance(e, RoomMemberEvent) and e.state_key == bot.user_id and e.membership == "join"
                   for r, e in stranger.events if r == room)
