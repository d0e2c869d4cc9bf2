"""The task board on the fakes: posted and pinned beside the summary at the first change, then edited in place (one
edit per change, never a new message), decided and traced each time; posted again for the devices that came later;
brought up to date at start after a crash. And the ✋ / ✅ reactions on a task's notice, read as the commands they
stand for, through the bot's own loop."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.app import Bot, BotSettings
from bot.newcomers import Newcomers
from bot.reactions import verb
from bot.store import BotStore
from liaison.clock import MovableClock
from liaison.matrix import Reaction, SyncBatch, TextMessage
from tests.fakes import BOT, COORD, GP, NURSE
from tests.test_tasks import NURSE2, two_nurses
from tests.test_subcommands import REGISTRY, World, worlds  # noqa: F401 (the worlds fixture)

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def paris(worlds) -> World:
    return await worlds(clock=MovableClock(datetime(2027, 1, 8, 10, 0, tzinfo=PARIS).astimezone(timezone.utc)))


def boards(world: World, room: str) -> list:
    return [s for s in world.m.sent if s.room_id == room and "Tableau des tâches" in s.body]


def new_posts(world: World, room: str) -> list:
    return [s for s in boards(world, room) if "m.relates_to" not in s.content]


def edits(world: World, room: str) -> list:
    return [s for s in boards(world, room) if (s.content.get("m.relates_to") or {}).get("rel_type") == "m.replace"]


async def test_the_first_task_posts_the_board_pinned_after_the_summary_and_each_change_edits_it(paris):
    room = await paris.open()
    pathway = await paris.pathway(room)
    summary = pathway.summary_event_id
    await paris.say(GP, "!tache Peser Mme chaque lundi « avant le repas »\npuis noter échéance demain", room)
    [board] = new_posts(paris, room)
    assert paris.m.state_now(room, "m.room.pinned_events") == {"pinned": [summary, board.event_id]}
    assert "<table>" in board.content["formatted_body"] and "n° 1 · Peser Mme chaque lundi « avant le repas »…" in \
        board.body, board.body
    sent_before = len(paris.m.sent)
    await paris.say(GP, "!tache faite 1 pesée : 72 kg", room)
    assert len(paris.m.sent) == sent_before + 1, "a change costs one board edit (the answer is the notice)"
    [edit] = edits(paris, room)
    assert edit.content["m.relates_to"] == {"rel_type": "m.replace", "event_id": board.event_id}
    assert edit.body.startswith("* ") and "Faites récemment" in edit.content["m.new_content"]["body"]
    assert "faite" in edit.content["m.new_content"]["formatted_body"]
    await paris.say(GP, "!tache Appeler la pharmacie", room)
    await paris.say(GP, "!tache reporter 2 dans 3 jours", room)
    await paris.say(GP, "!tache annuler 2", room)
    assert len(new_posts(paris, room)) == 1 and len(edits(paris, room)) == 4
    shown = [e for e in await paris.s.trace.entries() if e.rule == "room.clinical" and e.action.startswith("afficher")]
    assert len(shown) == 5, "each showing of the board decided and traced"
    assert len({s.txn_id for s in edits(paris, room)}) == 4


async def test_a_change_that_does_not_change_anything_leaves_the_board_alone(paris):
    room = await paris.open()
    await paris.say(GP, "!tache Bilan", room)
    moves = paris.moves()
    assert "Aucune tâche n° 9" in (await paris.say(GP, "!tache faite 9", room)).text
    assert (await paris.say(GP, "!taches", room)).text.startswith("Tâches du parcours")
    await paris.s.boards.changed(await paris.pathway(room))   # already shows the last change: nothing sent
    assert paris.moves() == moves


async def test_a_board_left_behind_by_a_crash_is_brought_up_to_date_at_start(paris):
    room = await paris.open()
    await paris.say(GP, "!tache Bilan", room)
    pathway = await paris.pathway(room)
    task = await paris.s.tasks.by_number(pathway.id, 1)
    await paris.s.tasks.done(task, GP, None, None)   # stored, and the bot stopped before the edit
    assert await paris.s.tasks.boards_behind() == [pathway.id]
    assert await paris.s.boards.catch_up() == 1
    assert "faite" in edits(paris, room)[-1].content["m.new_content"]["body"]
    assert await paris.s.tasks.boards_behind() == []


async def test_a_new_device_gets_the_board_posted_again_and_pinned_in_place_of_the_old(paris):
    room = await paris.open()
    await paris.say(GP, "!tache Bilan", room)
    [first] = new_posts(paris, room)
    paris.m.devices[GP].add("PHONE2")   # the GP logs in on a new phone
    assert await Newcomers(paris.s).check(room)
    pathway = await paris.pathway(room)
    old, again = new_posts(paris, room)
    assert old.event_id == first.event_id and "n° 1 · Bilan" in again.body
    assert paris.m.state_now(room, "m.room.pinned_events") == {"pinned": [pathway.summary_event_id, again.event_id]}
    await paris.say(GP, "!tache faite 1", room)
    assert edits(paris, room)[-1].content["m.relates_to"]["event_id"] == again.event_id, "the new board is edited"


@pytest.mark.parametrize("key, expected", [("✋", "prendre"), ("✋🏽", "prendre"), ("🙋‍♀️", "prendre"),
                                           ("✅", "faite"), ("✔️", "faite"), ("☑️", "faite"), ("👍", None),
                                           ("❤️", None)])
def test_which_reactions_act(key, expected):
    assert verb(key) == expected


async def _through_the_loop(world: World, batch: SyncBatch) -> Bot:
    bot = Bot(world.m, BotStore(world.s.pathways.engine), REGISTRY, BotSettings(password="", staff=frozenset()),
              world.s)
    await bot._take(batch, BOT, fresh=False, replaying=False)
    await bot.drain()
    return bot


async def test_a_raised_hand_on_a_request_takes_it_and_a_tick_marks_it_done(paris):
    room = await two_nurses(paris)
    asked = TextMessage(room, paris.m.post(room, GP, "x"), GP, "!tache Pansement du talon pour infirmière", True)
    await _through_the_loop(paris, SyncBatch(next_batch="s1", messages=[asked]))
    notice = paris.m.sent[-1]
    assert "✋ sur ce message pour la prendre" in notice.body, notice.body
    hand = Reaction(room, paris.m.new_event_id(), NURSE2, notice.event_id, "✋🏼")
    late = Reaction(room, paris.m.new_event_id(), NURSE, notice.event_id, "✋")
    await _through_the_loop(paris, SyncBatch(next_batch="s2", reactions=[hand]))
    await _through_the_loop(paris, SyncBatch(next_batch="s3", reactions=[late]))
    task = await paris.s.tasks.by_number((await paris.pathway(room)).id, 1)
    assert task.owner == NURSE2 and task.state == "prise_en_charge"
    taken, refused = paris.m.sent[-2], paris.m.sent[-1]
    assert "prise en charge par Luc Petit" in taken.body
    assert taken.content["m.relates_to"]["m.in_reply_to"]["event_id"] == notice.event_id, "it answers the notice"
    assert "déjà prise en charge par Luc Petit" in refused.body
    tick = Reaction(room, paris.m.new_event_id(), NURSE2, taken.event_id, "✅")   # on the answer to its taking
    await _through_the_loop(paris, SyncBatch(next_batch="s4", reactions=[tick]))
    assert (await paris.s.tasks.by_number(task.pathway_id, 1)).state == "faite"
    assert "faite" in paris.m.sent[-1].body


async def test_a_reaction_on_a_message_that_is_not_a_tasks_notice_does_nothing(paris):
    room = await paris.open()
    await paris.say(GP, "!tache Bilan", room)
    summary = (await paris.pathway(room)).summary_event_id
    moves = paris.moves()
    await _through_the_loop(paris, SyncBatch(next_batch="s1", reactions=[
        Reaction(room, paris.m.new_event_id(), GP, summary, "✅"),          # not a task's notice
        Reaction(room, paris.m.new_event_id(), GP, "$unknown", "✋")]))
    assert paris.moves() == moves


async def test_a_protocol_s_tasks_cost_one_board_post_and_a_refused_second_application_none(paris):
    room = await paris.open(team="medecin,infirmier")
    await paris.say(GP, "!protocole appliquer insuffisance-cardiaque", room)
    [board] = new_posts(paris, room)
    assert all(f"n° {n} · " in board.body for n in (1, 2, 3)) and not edits(paris, room), board.body
    moves = paris.moves()
    await paris.say(COORD, "!protocole appliquer insuffisance-cardiaque", room)   # already applied
    assert paris.moves() == moves
    await paris.say(GP, "!protocole appliquer diabete-type-2", room)
    [edit] = edits(paris, room)
    assert "n° 8 · " in edit.content["m.new_content"]["body"]


async def test_a_recurring_task_done_shows_when_and_by_whom_its_last_occurrence_was_done(paris):
    room = await paris.open(team="medecin,infirmier")
    paris.m.accept(room, NURSE)
    await paris.say(GP, f"!tache Pesée pour {NURSE} échéance lundi chaque semaine", room)
    await paris.say(NURSE, "!tache faite 1 72,4 kg", room)
    body = edits(paris, room)[-1].content["m.new_content"]["body"]
    assert "n° 1 · Pesée · Sophie Bernard (Infirmière) · échéance 18/01/2027, chaque semaine · à faire (dernière " \
           "faite le 08/01/2027 10:00 par Sophie Bernard)" in body, body
