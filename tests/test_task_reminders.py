"""A task's reminder (issue 25, item 5): its owner mentioned in the clinical room on its day, at the configured hour
or at the hour it is due; a profession's request to each of its members; never lost, never doubled (a second pass,
a restart past the time, a crash between the send and its mark); decided when sent; the overdue list once a day.
A crash between the record and the send, or between the send and its mark, restarted after the homeserver forgot
the transaction: exactly one reminder; a room that refuses the bot: tried less and less, then given up, the
coordination told once. On the fakes, with a movable clock: no real wait."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from bot.reminders import MAX_ATTEMPTS, TaskReminders, remind_at
from liaison.clock import MovableClock
from liaison.stores.mail import QUARANTINE_ROOM
from tests.fakes import COORD, GP, NURSE
from tests.test_subcommands import World, worlds  # noqa: F401 (the worlds fixture)

PARIS = ZoneInfo("Europe/Paris")
NURSE2 = "@infirmier2:hs"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(timezone.utc)


@pytest.fixture
async def paris(worlds):
    clock = MovableClock(at(2027, 1, 8, 10, 0))   # a Friday
    return await worlds(clock=clock), clock


def reminders(world: World) -> list:
    return [s for s in world.m.sent if s.content.get("msgtype") == "m.text" and "Rappel" in s.content["body"]]


async def test_the_owner_is_mentioned_on_the_due_day_at_the_hour_once(paris):
    world, clock = paris
    room = await world.open()
    await world.say(GP, "!tache Renouveler l'ordonnance\nsecond line échéance lundi", room)
    job = TaskReminders(world.s, hour=9)
    await clock.advance(to=at(2027, 1, 11, 8, 59))
    assert await job.run_once() == 0 and reminders(world) == []
    await clock.advance(to=at(2027, 1, 11, 9, 0))
    assert await job.run_once() == 1
    [sent] = reminders(world)
    assert sent.room_id == room
    assert sent.content["body"] == ("Dr Paul Martin : Rappel — tâche n° 1, échéance aujourd'hui : "
                                    "Renouveler l'ordonnance")
    assert f'<a href="https://matrix.to/#/{GP}">Dr Paul Martin</a> : Rappel' in sent.content["formatted_body"]
    assert sent.content["m.mentions"] == {"user_ids": [GP]}
    assert await job.run_once() == 0, "a second pass sends nothing"
    assert await TaskReminders(world.s, hour=9).run_once() == 0, "nor a new process"
    assert len(reminders(world)) == 1


async def test_a_task_due_at_an_hour_is_reminded_at_that_hour(paris):
    world, clock = paris
    room = await world.open()
    await world.say(GP, "!tache Appeler le laboratoire échéance 12 janvier 14h", room)
    job = TaskReminders(world.s, hour=9)
    await clock.advance(to=at(2027, 1, 12, 9, 0))
    assert await job.run_once() == 0
    await clock.advance(to=at(2027, 1, 12, 14, 0))
    assert await job.run_once() == 1
    assert "échéance aujourd'hui 14h : Appeler le laboratoire" in reminders(world)[0].content["body"]


def test_the_hour_is_paris_time_across_the_change_to_summer_time():
    monday = int(at(2027, 3, 29, 23, 59).timestamp() * 1000)   # summer time began on Sunday 28/03
    assert remind_at(monday, 9) == int(datetime(2027, 3, 29, 7, 0, tzinfo=timezone.utc).timestamp() * 1000)
    january = int(at(2027, 1, 11, 23, 59).timestamp() * 1000)
    assert remind_at(january, 9) == int(datetime(2027, 1, 11, 8, 0, tzinfo=timezone.utc).timestamp() * 1000)


async def test_created_in_winter_due_the_monday_after_the_change_sent_at_7_utc(paris):
    world, clock = paris
    await clock.advance(to=at(2027, 3, 26, 10, 0))   # Friday, winter time
    room = await world.open()
    await world.say(GP, "!tache Pesée échéance lundi", room)
    job = TaskReminders(world.s, hour=9)
    await clock.advance(to=datetime(2027, 3, 29, 6, 59, tzinfo=timezone.utc))
    assert await job.run_once() == 0
    await clock.advance(to=datetime(2027, 3, 29, 7, 0, tzinfo=timezone.utc))
    assert await job.run_once() == 1


async def test_a_restart_past_the_time_sends_once_and_a_crash_after_the_send_is_deduplicated(paris, monkeypatch):
    world, clock = paris
    room = await world.open()
    await world.say(GP, "!tache Bilan échéance lundi", room)
    await world.say(GP, "!tache Radio échéance mardi", room)
    await clock.advance(to=at(2027, 1, 20, 10, 0))   # the bot was down: nothing ran
    crashing = TaskReminders(world.s)

    async def crash(task, sending=None):
        raise RuntimeError("the process dies after the send, before the mark")
    monkeypatch.setattr(world.s.tasks, "mark_reminded", crash)
    with pytest.raises(RuntimeError):
        await crashing.run_once()
    monkeypatch.undo()
    assert len(reminders(world)) == 1
    await clock.advance(60)   # the restart, after the attempt's backoff: the first found posted, the second sent
    assert await TaskReminders(world.s).run_once() == 1
    bodies = [s.content["body"] for s in reminders(world)]
    assert len(bodies) == 2
    assert "tâche n° 1, échéance le 11/01/2027" in bodies[0] and "tâche n° 2" in bodies[1]
    assert await TaskReminders(world.s).run_once() == 0
    assert await world.s.tasks.sendings() == {}


async def test_a_crash_after_the_send_then_a_restart_two_hours_later_posts_one_reminder(paris, monkeypatch):
    """The homeserver forgets a transaction id after about 30 minutes: the record made before the send, and the
    room's timeline read on the restart, keep the reminder from being posted twice."""
    world, clock = paris
    world.m.forget_transactions_after(clock)
    room = await world.open()
    await world.say(GP, "!tache Bilan échéance lundi", room)
    await clock.advance(to=at(2027, 1, 11, 9, 0))

    async def crash(task, sending=None):
        raise RuntimeError("the process dies after the send, before the mark")
    monkeypatch.setattr(world.s.tasks, "mark_reminded", crash)
    with pytest.raises(RuntimeError):
        await TaskReminders(world.s).run_once()
    monkeypatch.undo()
    [sending] = (await world.s.tasks.sendings()).values()
    assert sending.attempts == 1 and sending.room_id == room
    await clock.advance(2 * 3600)
    before = len(await world.s.trace.entries())
    assert await TaskReminders(world.s).run_once() == 0
    assert len(reminders(world)) == 1, "found in the room: not posted again"
    assert len(await world.s.trace.entries()) == before, "nothing decided again: it was decided when sent"
    assert await world.s.tasks.sendings() == {}
    assert await TaskReminders(world.s).run_once() == 0 and len(reminders(world)) == 1


async def test_a_crash_before_the_send_then_a_restart_two_hours_later_posts_it(paris, monkeypatch):
    world, clock = paris
    world.m.forget_transactions_after(clock)
    room = await world.open()
    await world.say(GP, "!tache Bilan échéance lundi", room)
    await clock.advance(to=at(2027, 1, 11, 9, 0))

    async def crash(room_id, content, txn):
        raise RuntimeError("the process dies after the record, before the send")
    monkeypatch.setattr(world.m, "send", crash)
    with pytest.raises(RuntimeError):
        await TaskReminders(world.s).run_once()
    monkeypatch.undo()
    assert reminders(world) == [] and len(await world.s.tasks.sendings()) == 1
    await clock.advance(2 * 3600)
    assert await TaskReminders(world.s).run_once() == 1
    assert len(reminders(world)) == 1 and await world.s.tasks.sendings() == {}


async def test_a_room_that_refuses_the_bot_is_tried_less_and_less_then_given_up_and_the_coordination_told_once(
        paris):
    world, clock = paris
    coordination = world.m.add_room(members=(COORD,))
    await world.s.mail.set_setting(QUARANTINE_ROOM, coordination)
    room = await world.open()
    code = (await world.pathway(room)).code
    await world.say(GP, "!tache Texte du patient échéance 11 janvier 8h", room)
    await world.say(GP, "!tache Autre texte échéance 11 janvier 8h", room)
    world.m.room(room).membership[world.m.user_id] = "leave"   # the bot kicked out of the room
    await clock.advance(to=at(2027, 1, 11, 8, 0))
    job = TaskReminders(world.s, hour=9)
    with capture_logs() as logs:
        for _minute in range(4 * 60):   # the real loop: a pass every minute, for four hours
            await job.run_once()
            await clock.advance(60)
    tries = [e for e in logs if e["event"] in ("task.reminder_not_sent", "task.reminder_given_up")]
    assert len(tries) == 2 * MAX_ATTEMPTS, "each reminder tried MAX_ATTEMPTS times, not every minute"
    assert [e["attempts"] for e in tries[::2]] == list(range(1, MAX_ATTEMPTS + 1))
    assert [e["event"] for e in tries[-2:]] == ["task.reminder_given_up"] * 2
    for e in tries:
        assert set(e) <= {"event", "log_level", "task_id", "pathway_id", "attempts", "retry_in_s", "error"}, e
    assert reminders(world) == []
    told = [b for b in world.m.bodies(coordination) if b.startswith("Rappels non postés")]
    assert told == [told[0]] and f"{code} n° 1 ; {code} n° 2" in told[0], told
    assert "Texte du patient" not in told[0] and "Martin" not in told[0]
    assert await world.s.tasks.sendings() == {}


async def test_a_request_reminds_each_nurse_until_one_takes_it(paris):
    world, clock = paris
    world.m.add_account(NURSE2, "Luc Petit")
    await world.say(COORD, f"!equipe ajouter {NURSE2} infirmier")
    room = await world.open(team="medecin,infirmier")
    for nurse in (NURSE, NURSE2):
        world.m.accept(room, nurse)
    await world.say(GP, "!tache Pansement pour infirmière échéance lundi 8h", room)
    await world.say(GP, "!tache Injection pour infirmière échéance mardi 8h", room)
    await world.say(NURSE2, "!tache prendre 2", room)
    await clock.advance(to=at(2027, 1, 11, 8, 0))
    job = TaskReminders(world.s)
    assert await job.run_once() == 1
    [request] = reminders(world)
    assert set(request.content["m.mentions"]["user_ids"]) == {NURSE, NURSE2}
    assert "demandée aux infirmiers (!tache prendre 1)" in request.content["body"]
    await clock.advance(to=at(2027, 1, 12, 8, 0))
    assert await job.run_once() == 1
    taken = reminders(world)[-1]
    assert taken.content["m.mentions"] == {"user_ids": [NURSE2]}, "taken: its owner only"


async def test_a_refused_decision_sends_nothing_and_is_traced(paris):
    world, clock = paris
    room = await world.open(team="medecin,infirmier")
    world.m.accept(room, NURSE)
    await world.say(GP, f"!tache Pansement pour {NURSE} échéance lundi", room)
    # The patient's objection recorded, its re-decision of the rooms not yet run (it would hand the task back to
    # the coordination, below): the reminder is decided when it is sent.
    pathway = await world.pathway(room)
    await world.s.consents.add_objection(pathway.patient_id, scope_kind="person", scope=NURSE, actor=COORD)
    before = len(await world.s.trace.entries())
    await clock.advance(to=at(2027, 1, 11, 9, 0))
    assert await TaskReminders(world.s).run_once() == 0
    assert reminders(world) == []
    assert await TaskReminders(world.s).run_once() == 0, "handled: not decided again every minute"
    [refusal] = (await world.s.trace.entries())[before:]
    assert (refusal.action, refusal.subject, refusal.allowed) == ("rappeler une tâche", NURSE, False)
    assert refusal.rule.startswith("objection."), refusal.rule


async def test_done_cancelled_or_closed_are_never_reminded_and_a_recurring_task_comes_back(paris):
    world, clock = paris
    room = await world.open()
    await world.say(GP, "!tache Bilan échéance lundi", room)
    await world.say(GP, "!tache Radio échéance lundi", room)
    await world.say(GP, "!tache Pesée échéance lundi chaque semaine", room)
    await world.say(GP, "!tache faite 1", room)
    await world.say(GP, "!tache annuler 2", room)
    job = TaskReminders(world.s)
    await clock.advance(to=at(2027, 1, 11, 9, 0))
    assert await job.run_once() == 1
    assert [s.content["body"].split(" :")[1] for s in reminders(world)] == [" Rappel — tâche n° 3, échéance aujourd'hui"]
    await world.say(GP, "!tache faite 3", room)   # comes back on the 18th
    await clock.advance(to=at(2027, 1, 18, 9, 0))
    assert await job.run_once() == 1 and len(reminders(world)) == 2

    other = await world.open()
    await world.say(GP, "!tache Dans un parcours clos échéance le 25/01", other)
    closed = await world.say(COORD, "!parcours clore fin de prise en charge", other)
    assert (await world.pathway(other)).status != "open", closed.text
    await clock.advance(to=at(2027, 1, 25, 9, 0))
    await job.run_once()
    assert not any("Dans un parcours clos" in s.content["body"] for s in reminders(world))


async def test_the_overdue_list_goes_to_the_coordination_once_a_day(paris):
    world, clock = paris
    coordination = world.m.add_room(members=(COORD,))
    await world.s.mail.set_setting(QUARANTINE_ROOM, coordination)
    room = await world.open()
    code = (await world.pathway(room)).code
    await world.say(GP, "!tache Texte du patient échéance lundi", room)
    job = TaskReminders(world.s, hour=9)
    await clock.advance(to=at(2027, 1, 12, 8, 0))
    await job.run_once()
    assert world.m.bodies(coordination) == [], "before the hour"
    await clock.advance(to=at(2027, 1, 12, 9, 0))
    await job.run_once()
    await job.run_once()
    await TaskReminders(world.s, hour=9).run_once()
    [listed] = world.m.bodies(coordination)
    assert listed.startswith("Tâches en retard ce jour (1) :") and f"{code} n° 1 · Médecin" in listed, listed
    assert "Texte du patient" not in listed and "Martin" not in listed
    await clock.advance(to=at(2027, 1, 13, 9, 0))
    await job.run_once()
    assert len(world.m.bodies(coordination)) == 2, "the next day, again"


async def test_an_objection_hands_the_task_back_and_the_coordination_is_reminded_instead(paris):
    world, clock = paris
    room = await world.open(team="medecin,infirmier")
    world.m.accept(room, NURSE)
    await world.say(GP, f"!tache Pansement pour {NURSE} échéance lundi", room)
    await world.say(COORD, f"!opposition {NURSE}", room)
    await clock.advance(to=at(2027, 1, 11, 9, 0))
    assert await TaskReminders(world.s).run_once() == 1
    (sent,) = reminders(world)
    assert NURSE not in sent.content.get("formatted_body", "") and COORD in sent.content.get("formatted_body", "")


async def test_the_record_of_a_reminder_no_longer_owed_is_dropped(paris):
    world, clock = paris
    room = await world.open()
    await world.say(GP, "!tache Bilan échéance lundi", room)
    world.m.fail_next("send", "M_UNKNOWN")
    await clock.advance(to=at(2027, 1, 11, 9, 0))
    assert await TaskReminders(world.s).run_once() == 0
    assert len(await world.s.tasks.sendings()) == 1, "the attempt recorded, to be tried again"
    await world.say(GP, "!tache annuler 1", room)
    await clock.advance(3600)
    assert await TaskReminders(world.s).run_once() == 0
    assert await world.s.tasks.sendings() == {} and reminders(world) == []


async def test_a_social_task_of_the_circle_room_s_social_worker_is_reminded_where_she_reads(paris):
    from tests.fakes import SOCIAL
    from tests.test_subcommands import room_of
    world, clock = paris
    room = await world.open()
    await world.consent(room, SOCIAL, "écrit catégories:social")
    circle = room_of((await world.say(COORD, f"!parcours inviter {SOCIAL}", room)).text)
    world.m.accept(circle, SOCIAL)
    made = await world.say(GP, f"!tache Dossier APA pour {SOCIAL} échéance lundi catégorie social", room)
    assert "Tâche n° 1 créée, Nadia Haddad" in made.text, made.text
    await clock.advance(to=at(2027, 1, 11, 9, 0))
    assert await TaskReminders(world.s, hour=9).run_once() == 1
    [sent] = reminders(world)
    assert sent.room_id == circle and sent.content["m.mentions"] == {"user_ids": [SOCIAL]}, sent
    shown = [e for e in await world.s.trace.entries() if e.rule == "room.circle" and e.data_category == "social"]
    assert shown and shown[-1].allowed, "the circle room's showing of a social task decided and traced"


async def test_the_loop_sleeps_until_the_reminder_s_moment_not_the_next_minute(paris):
    """A task due at 10:05:30 is reminded at 10:05:30: the loop sleeps until the next reminder's moment (at most a
    minute), not on a fixed minute's beat."""
    import asyncio
    world, clock = paris
    room = await world.open()
    await world.say(GP, "!tache Appeler le laboratoire échéance demain 14h", room)
    job = TaskReminders(world.s, hour=9)
    async def asleep() -> None:   # the pass over (its reads go through a thread), the loop waiting on the clock
        async def until() -> None:
            while clock.sleepers < 1:
                assert not loop.done(), loop
                await asyncio.sleep(0.01)
        await asyncio.wait_for(until(), 10)

    loop = asyncio.create_task(job.run())
    try:
        await asleep()
        due = at(2027, 1, 9, 14, 0)
        assert await job.next_moment() == int(due.timestamp() * 1000)
        await clock.advance(to=datetime(2027, 1, 9, 13, 59, 59, 900_000, tzinfo=PARIS).astimezone(timezone.utc))
        await asleep()
        assert reminders(world) == []
        await clock.advance(to=due)
        await asleep()
        [sent] = reminders(world)
        assert "tâche n° 1, échéance aujourd'hui 14h" in sent.body
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
