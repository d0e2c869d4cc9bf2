"""The task store on SQLite and PostgreSQL: numbers per pathway, the text kept byte for byte, every change with its
history row and its trace entry in one transaction (never the text in the trace), a change to a closed task or a
request someone took first writing nothing, and a pathway's archive forgetting its tasks."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timezone

from liaison.clock import MovableClock
from liaison.stores.pathways import PathwayStore
from liaison.stores.retention import forget_pathway
from liaison.stores.tasks import TaskStore
from liaison.stores.trace import Trace

TEXT = "Vérifier l'INR « avant » la visite\n  — puis appeler l’officine ; 2 lignes"


async def _pathways(engine, n: int = 2):
    pathways = PathwayStore(engine)
    patient = await pathways.add_patient(ins="148057512345643", oid="1.2.250.1.213.1.4.10", birth_name="DURAND",
                                         first_names="Marcel", birth_date=date(1948, 5, 12), sex="M", actor="@c:hs")
    return [await pathways.add_pathway(patient_id=patient.id, type_key=t, code=f"P-TASK{i}", actor="@c:hs")
            for i, t in enumerate(("diabete", "insuffisance-cardiaque")[:n])]


async def test_tasks_are_numbered_per_pathway_and_keep_their_text(engine):
    clock = MovableClock(datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc))
    tasks, (a, b) = TaskStore(engine, clock), await _pathways(engine)
    one, ref = await tasks.create(a.id, text_=TEXT, actor="@gp:hs", owner="@gp:hs", due_at=clock.now_ms() + 1000)
    two, _ = await tasks.create(a.id, text_="Pansement", actor="@gp:hs", profession="infirmier", category="soins")
    other, _ = await tasks.create(b.id, text_="Autre", actor="@gp:hs", owner="@gp:hs")
    assert (one.number, two.number, other.number) == (1, 2, 1)
    assert (await tasks.by_number(a.id, 1)).text == TEXT
    assert ref == (await Trace(engine).head())[0] - 2
    entries = await Trace(engine).entries()
    assert [e.rule for e in entries] == ["task.created"] * 3
    assert all(TEXT not in repr(e) and "Pansement" not in repr(e) for e in entries), "ids and rules, never the text"
    assert entries[0].subject == "tâche n° 1" and entries[0].pathway_id == a.id


async def test_concurrent_creations_get_distinct_numbers(engine):
    tasks, (a,) = TaskStore(engine), await _pathways(engine, 1)
    made = await asyncio.gather(*(tasks.create(a.id, text_=f"t{i}", actor="@gp:hs", owner="@gp:hs")
                                  for i in range(5)))
    assert sorted(t.number for t, _ in made) == [1, 2, 3, 4, 5]


async def test_the_first_to_take_a_request_owns_it_and_the_second_changes_nothing(engine):
    tasks, (a,) = TaskStore(engine), await _pathways(engine, 1)
    request, _ = await tasks.create(a.id, text_="Pansement", actor="@gp:hs", profession="infirmier")
    taken = await tasks.take(request, "@ide1:hs")
    assert taken is not None and taken[0].owner == "@ide1:hs" and taken[0].state == "prise_en_charge"
    assert await tasks.take(request, "@ide2:hs") is None
    assert (await tasks.by_number(a.id, 1)).owner == "@ide1:hs"
    assert [e.what for e in await tasks.history(request.id)] == ["creee", "prise"]


async def test_each_change_has_its_history_and_a_closed_task_changes_no_more(engine):
    clock = MovableClock(datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc))
    tasks, (a,) = TaskStore(engine, clock), await _pathways(engine, 1)
    task, _ = await tasks.create(a.id, text_="Bilan", actor="@gp:hs", owner="@gp:hs", due_at=clock.now_ms() + 10)
    assert task.overdue(clock.now_ms() + 11) and not task.overdue(clock.now_ms())
    later = clock.now_ms() + 86_400_000
    assert (await tasks.postpone(task, "@gp:hs", later))[0].due_at == later
    assert (await tasks.assign(task, "@gp:hs", "@ide1:hs"))[0].owner == "@ide1:hs"
    done = await tasks.done(task, "@ide1:hs", "fait à domicile, « RAS »", None)
    assert done is not None and done[0].state == "faite"
    before = len(await Trace(engine).entries())
    assert await tasks.cancel(task, "@gp:hs") is None
    assert await tasks.postpone(task, "@gp:hs", later + 1) is None
    assert len(await Trace(engine).entries()) == before, "nothing traced for a change that did not happen"
    history = await tasks.history(task.id)
    assert [e.what for e in history] == ["creee", "reportee", "confiee", "faite"]
    assert history[1].due_at == later and history[3].detail == "fait à domicile, « RAS »"
    assert [e.rule for e in await Trace(engine).entries()] == [
        "task.created", "task.postponed", "task.assigned", "task.done"]


async def test_a_recurring_task_done_comes_back_at_its_next_due_date(engine):
    tasks, (a,) = TaskStore(engine), await _pathways(engine, 1)
    task, _ = await tasks.create(a.id, text_="Pesée", actor="@gp:hs", owner="@gp:hs", due_at=1000,
                                 recurrence="FREQ=WEEKLY")
    again, _ = await tasks.done(task, "@gp:hs", None, 1000 + 7 * 86_400_000)
    assert again.state == "a_faire" and again.due_at == 1000 + 7 * 86_400_000 and again.number == 1


async def test_a_pathways_archive_forgets_its_tasks(engine):
    tasks, (a, b) = TaskStore(engine), await _pathways(engine)
    await tasks.create(a.id, text_="x", actor="@gp:hs", owner="@gp:hs")
    await tasks.create(b.id, text_="y", actor="@gp:hs", owner="@gp:hs")
    assert await forget_pathway(engine, [TaskStore.RETENTION], a.id) == 2   # the task and its history row
    assert await tasks.of_pathway(a.id) == [] and len(await tasks.of_pathway(b.id)) == 1


async def test_a_reminder_is_owed_once_per_due_date_and_a_postponement_owes_another(engine):
    clock = MovableClock(datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc))
    tasks, (a, _b) = TaskStore(engine, clock), await _pathways(engine)
    await PathwayStore(engine).update(a.id, status="open")
    due = clock.now_ms() + 3_600_000
    task, _ = await tasks.create(a.id, text_=TEXT, actor="@gp:hs", owner="@gp:hs", due_at=due)
    assert await tasks.to_remind(due) == [], "due at `due`: not before it"
    [owed] = await tasks.to_remind(due + 1)
    assert await tasks.mark_reminded(owed) and await tasks.to_remind(due + 1) == []
    later, _ = await tasks.postpone(task, "@gp:hs", due + 86_400_000)
    assert await tasks.mark_reminded(owed) is False, "the old due date's mark does not cover the new one"
    assert [t.id for t in await tasks.to_remind(due + 2 * 86_400_000)] == [task.id]
    await tasks.cancel(later, "@gp:hs")
    assert await tasks.to_remind(due + 2 * 86_400_000) == [], "cancelled: never reminded"
    await tasks.create(a.id, text_="Autre", actor="@gp:hs", owner="@gp:hs", due_at=due)
    await PathwayStore(engine).update(a.id, status="closed")
    assert await tasks.to_remind(due + 1) == [], "a closed pathway's tasks: not reminded"
    assert not await tasks.overdue_listed("2027-01-04")
    await tasks.mark_overdue_listed("2027-01-04", 3)
    await tasks.mark_overdue_listed("2027-01-04", 4)
    assert await tasks.overdue_listed("2027-01-04")
