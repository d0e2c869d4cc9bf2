"""The tasks of a pathway (`!tache`): numbered 1, 2, … per pathway, the text kept byte for byte, each for one account
or requested of a profession until someone takes it.

Every change is one transaction: the task's row, its history row (`task_event`: who, when, what changed) and its
trace entry (policies/records.py `task.*`: the task's number, its category and the rule, never its text). A change
is conditional on the task still being open (and, to take a request, on no one having taken it first): when it is
not, nothing is written and the caller is told (None).
"""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from liaison.stores.base import Store
from liaison.stores.retention import Forget, Retention
from liaison.stores.trace import append_on
from policies.records import RECORDS

CATEGORIES = ("soins", "social", "administratif")
OPEN = ("a_faire", "prise_en_charge")
STATES = {"a_faire": "à faire", "prise_en_charge": "prise en charge", "faite": "faite", "annulee": "annulée"}
MAX_TEXT = 2000


@dataclass(frozen=True)
class Task:
    id: str
    pathway_id: str
    number: int
    text: str
    category: str
    owner: str | None          # the account it is for (None: a request to `profession` no one has taken yet)
    profession: str | None     # the profession it was requested of
    due_at: int | None         # UTC ms
    recurrence: str | None     # an RRULE (FREQ=…)
    state: str
    created_by: str
    created_at: int
    updated_at: int
    goal: int | None = None    # the number of the care plan's goal it serves (liaison/stores/care_plan.py)

    @property
    def open(self) -> bool:
        return self.state in OPEN

    def overdue(self, now_ms: int) -> bool:
        return self.open and self.due_at is not None and self.due_at < now_ms


@dataclass(frozen=True)
class TaskEvent:
    at: int
    actor: str
    what: str                  # creee | prise | faite | reportee | confiee | annulee
    due_at: int | None
    owner: str | None
    detail: str | None         # the comment of « faite »


@dataclass(frozen=True)
class Draft:
    """A task to create (`TaskStore.create_many`): for one account, or requested of one profession."""
    text: str
    category: str = "soins"
    owner: str | None = None
    profession: str | None = None
    due_at: int | None = None
    recurrence: str | None = None
    goal: int | None = None    # the care plan's goal it serves: a number of the pathway's goals (checked on create)

    def check(self) -> None:
        if not self.text.strip() or len(self.text) > MAX_TEXT:
            raise ValueError(f"a task's text is 1 to {MAX_TEXT} characters")
        if self.category not in CATEGORIES:
            raise ValueError(f"category is one of {CATEGORIES}")
        if (self.owner is None) == (self.profession is None):
            raise ValueError("a task is for one account or requested of one profession")


@dataclass(frozen=True)
class Applied:
    """A protocol applied to a pathway: when, by whom, how many tasks."""
    protocol: str
    at: int
    actor: str
    tasks: int


class UnknownGoal(ValueError):
    """A task attached to a goal number the pathway's care plan does not have."""
    def __init__(self, number: int) -> None:
        super().__init__(f"no goal {number} in the pathway's care plan")
        self.number = number


class AlreadyApplied(Exception):
    def __init__(self, applied: Applied) -> None:
        super().__init__(f"protocol {applied.protocol} already applied")
        self.applied = applied


def _task(r: Any) -> Task:
    return Task(r.id, r.pathway_id, r.number, r.text, r.category, r.owner, r.profession, r.due_at, r.recurrence,
                r.state, r.created_by, r.created_at, r.updated_at, r.goal)


_RULES = {"creee": "task.created", "prise": "task.taken", "faite": "task.done", "reportee": "task.postponed",
          "confiee": "task.assigned", "annulee": "task.cancelled", "rendue": "task.handed_back"}
COORDINATION = "coordinateur"   # the profession a task handed back is requested of
_OPEN_FOR = ("state IN ('a_faire', 'prise_en_charge') AND (owner = :u OR (owner IS NULL AND profession = :pr))")


@dataclass(frozen=True)
class Sending:
    """A reminder recorded as being sent (bot/reminders.py): its room and transaction id, how many attempts were
    begun, and the moment before which no new one is made."""
    key: str
    room_id: str
    txn_id: str
    attempts: int
    first_at: int
    next_at: int


class TaskStore(Store):
    RETENTION = Retention(forget=(Forget("reminder_sending"), Forget("task_notice"), Forget("task_board"),
                                  Forget("task_event"), Forget("task"), Forget("protocol_applied")),
                          no_patient_data={"task_overdue_day": "the Paris days the overdue list was posted, and how "
                                                               "many tasks it listed"})

    async def create(self, pathway_id: str, *, text_: str, actor: str, category: str = "soins",
                     owner: str | None = None, profession: str | None = None, due_at: int | None = None,
                     recurrence: str | None = None, goal: int | None = None) -> tuple[Task, int]:
        """The new task with the pathway's next number, and its trace entry's number."""
        (made,) = await self.create_many(pathway_id, [Draft(text_, category, owner, profession, due_at, recurrence,
                                                            goal)], actor=actor)
        return made

    async def create_many(self, pathway_id: str, drafts: Sequence[Draft], *, actor: str,
                          protocol: str | None = None,
                          linked: Callable[[AsyncConnection, Task], Awaitable[None]] | None = None,
                          ) -> list[tuple[Task, int]]:
        """The new tasks, numbered in order from the pathway's next number, each with its trace entry's number: all
        in one transaction, or none. With `protocol`, the application is recorded with them; a protocol already
        applied to the pathway raises AlreadyApplied (nothing written); a draft's `goal` that is not a goal of the
        pathway's care plan raises UnknownGoal (nothing written). `linked` writes, in the same transaction, what each
        new task follows up (an RCP decision: liaison/stores/rcp.py)."""
        for draft in drafts:
            draft.check()
        for _attempt in range(20):   # two writers may read the same maximum: UNIQUE (pathway_id, number) decides
            try:
                async with self.engine.begin() as conn:
                    at = self.clock.now_ms()
                    if protocol is not None:
                        await conn.execute(text(
                            "INSERT INTO protocol_applied (pathway_id, protocol, applied_at, applied_by, tasks) "
                            "VALUES (:p, :name, :at, :by, :n)"),
                            {"p": pathway_id, "name": protocol, "at": at, "by": actor, "n": len(drafts)})
                    first: int = (await conn.execute(text(
                        "SELECT COALESCE(MAX(number), 0) + 1 FROM task WHERE pathway_id = :p"),
                        {"p": pathway_id})).scalar_one()
                    made = []
                    wanted = {d.goal for d in drafts if d.goal is not None}
                    if wanted:
                        known: set[int] = set((await conn.execute(text(
                            "SELECT number FROM care_goal WHERE pathway_id = :p"), {"p": pathway_id})).scalars())
                        if wanted - known:
                            raise UnknownGoal(min(wanted - known))
                    for number, d in enumerate(drafts, first):
                        tid = uuid.uuid4().hex
                        await conn.execute(text(
                            "INSERT INTO task (id, pathway_id, number, text, category, owner, profession, due_at, "
                            "recurrence, state, created_by, created_at, updated_at, goal) VALUES (:id, :p, :n, :t, :c, "
                            ":o, :pr, :d, :r, 'a_faire', :by, :at, :at, :g)"),
                            {"id": tid, "p": pathway_id, "n": number, "t": d.text, "c": d.category, "o": d.owner,
                             "pr": d.profession, "d": d.due_at, "r": d.recurrence, "by": actor, "at": at,
                             "g": d.goal})
                        task = await self._get(conn, tid)
                        ref = await self._event(conn, task, actor, "creee", at, due_at=d.due_at, owner=d.owner,
                                                detail=f"protocole {protocol}" if protocol else None)
                        if linked is not None:
                            await linked(conn, task)
                        made.append((task, ref))
                    return made
            except IntegrityError:
                if protocol is not None and (applied := await self.applied(pathway_id, protocol)) is not None:
                    raise AlreadyApplied(applied) from None
                continue
        raise RuntimeError("task: no free number after 20 attempts")

    async def applied(self, pathway_id: str, protocol: str) -> Applied | None:
        """When `protocol` was applied to the pathway, or None."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT protocol, applied_at, applied_by, tasks FROM protocol_applied WHERE pathway_id = :p "
                "AND protocol = :name"), {"p": pathway_id, "name": protocol})).first()
        return Applied(row.protocol, row.applied_at, row.applied_by, row.tasks) if row else None

    async def by_number(self, pathway_id: str, number: int) -> Task | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM task WHERE pathway_id = :p AND number = :n"),
                                      {"p": pathway_id, "n": number})).first()
        return _task(row) if row else None

    async def by_id(self, task_id: str) -> Task | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM task WHERE id = :t"), {"t": task_id})).first()
        return _task(row) if row else None

    async def of_pathway(self, pathway_id: str) -> list[Task]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM task WHERE pathway_id = :p ORDER BY number"),
                                       {"p": pathway_id})).all()
        return [_task(r) for r in rows]

    async def open_for(self, user_id: str, profession: str | None, limit: int | None = None) -> list[Task]:
        """The open tasks of every pathway that are `user_id`'s, or requested of their profession and not taken, the
        nearest due first (no due date last; then by number); the `limit` first when given."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                f"SELECT * FROM task WHERE {_OPEN_FOR} ORDER BY due_at IS NULL, COALESCE(due_at, 0), number, "
                "created_at" + (" LIMIT :n" if limit is not None else "")),
                {"u": user_id, "pr": profession or "", "n": limit})).all()
        return [_task(r) for r in rows]

    async def count_open_for(self, user_id: str, profession: str | None) -> int:
        """How many tasks `open_for` gives without a limit."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT COUNT(*) FROM task WHERE {_OPEN_FOR}"),
                                           {"u": user_id, "pr": profession or ""})).scalar_one())

    async def overdue(self, now_ms: int) -> list[Task]:
        """The open tasks whose due date has passed, every pathway, the oldest due first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT * FROM task WHERE state IN ('a_faire', 'prise_en_charge') AND due_at IS NOT NULL "
                "AND due_at < :now ORDER BY due_at, pathway_id, number"), {"now": now_ms})).all()
        return [_task(r) for r in rows]

    # -- reminders (bot/reminders.py): each due date reminded once ---------------------------------------------

    async def to_remind(self, before_ms: int) -> list[Task]:
        """The open tasks of open pathways due before `before_ms` whose due date was not reminded yet."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT task.* FROM task JOIN pathway ON pathway.id = task.pathway_id "
                "WHERE task.state IN ('a_faire', 'prise_en_charge') AND pathway.status = 'open' "
                "AND task.due_at IS NOT NULL AND task.due_at < :before "
                "AND (task.reminded_due_at IS NULL OR task.reminded_due_at <> task.due_at) "
                "ORDER BY task.due_at, task.pathway_id, task.number"), {"before": before_ms})).all()
        return [_task(r) for r in rows]

    async def mark_reminded(self, task: Task, sending: str | None = None) -> bool:
        """The reminder of `task`'s due date handled, and its `sending` record gone with it; False when the task
        changed meanwhile (its new due date keeps its own reminder)."""
        async with self.engine.begin() as conn:
            changed = await conn.execute(text(
                "UPDATE task SET reminded_due_at = due_at WHERE id = :t AND due_at = :d"),
                {"t": task.id, "d": task.due_at})
            if sending is not None:
                await conn.execute(text("DELETE FROM reminder_sending WHERE key = :k"), {"k": sending})
        return bool(changed.rowcount)

    async def sendings(self) -> dict[str, Sending]:
        """The reminders recorded as being sent, by key."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM reminder_sending"))).all()
        return {r.key: Sending(r.key, r.room_id, r.txn_id, r.attempts, r.first_at, r.next_at) for r in rows}

    async def begin_sending(self, attempts: list[tuple[str, str | None, str, str, int]]) -> dict[str, Sending]:
        """Record attempts before they are made, in one transaction: each (key, pathway id, room, transaction id,
        next_at), one more attempt of the same key if one was recorded; what is recorded now, by key."""
        at, made = self.clock.now_ms(), {}
        async with self.engine.begin() as conn:
            for key, pathway_id, room_id, txn, next_at in attempts:
                before = (await conn.execute(text("SELECT attempts, first_at FROM reminder_sending WHERE key = :k"),
                                             {"k": key})).first()
                if before is None:
                    await conn.execute(text(
                        "INSERT INTO reminder_sending (key, pathway_id, room_id, txn_id, attempts, first_at, last_at, "
                        "next_at) VALUES (:k, :p, :r, :x, 1, :at, :at, :n)"),
                        {"k": key, "p": pathway_id, "r": room_id, "x": txn, "at": at, "n": next_at})
                else:
                    await conn.execute(text(
                        "UPDATE reminder_sending SET attempts = attempts + 1, room_id = :r, txn_id = :x, "
                        "last_at = :at, next_at = :n WHERE key = :k"),
                        {"k": key, "r": room_id, "x": txn, "at": at, "n": next_at})
                made[key] = Sending(key, room_id, txn, before.attempts + 1 if before else 1,
                                    before.first_at if before else at, next_at)
        return made

    async def drop_stale_sendings(self, overdue_key: str) -> int:
        """Forget the records of reminders no longer owed (the task done, cancelled, postponed, or its pathway
        closed since; an overdue list of another day than `overdue_key`'s): how many. Nothing recorded (the usual
        case): one read, no write transaction (which would make the commands' trace entries wait)."""
        async with self.engine.connect() as conn:
            if (await conn.execute(text("SELECT 1 FROM reminder_sending LIMIT 1"))).first() is None:
                return 0
        async with self.engine.begin() as conn:
            dropped = await conn.execute(text(
                "DELETE FROM reminder_sending WHERE (key LIKE 'overdue %' AND key <> :today) OR (key LIKE 'task %' "
                "AND NOT EXISTS (SELECT 1 FROM task JOIN pathway ON pathway.id = task.pathway_id "
                "WHERE 'task ' || task.id || ' ' || CAST(task.due_at AS TEXT) = reminder_sending.key "
                "AND task.state IN ('a_faire', 'prise_en_charge') AND pathway.status = 'open' "
                "AND (task.reminded_due_at IS NULL OR task.reminded_due_at <> task.due_at)))"),
                {"today": overdue_key})
        return int(dropped.rowcount or 0)

    async def overdue_listed(self, day: str) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT 1 FROM task_overdue_day WHERE day = :d"),
                                       {"d": day})).first() is not None

    async def mark_overdue_listed(self, day: str, listed: int, sending: str | None = None) -> None:
        async with self.engine.begin() as conn:
            if sending is not None:
                await conn.execute(text("DELETE FROM reminder_sending WHERE key = :k"), {"k": sending})
            if (await conn.execute(text("SELECT 1 FROM task_overdue_day WHERE day = :d"), {"d": day})).first():
                return
            await conn.execute(text("INSERT INTO task_overdue_day (day, sent_at, listed) VALUES (:d, :at, :n)"),
                               {"d": day, "at": self.clock.now_ms(), "n": listed})

    async def history(self, task_id: str) -> list[TaskEvent]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT at, actor, what, due_at, owner, detail FROM task_event WHERE task_id = :t ORDER BY seq"),
                {"t": task_id})).all()
        return [TaskEvent(r.at, r.actor, r.what, r.due_at, r.owner, r.detail) for r in rows]

    async def histories(self, pathway_id: str) -> dict[str, list[TaskEvent]]:
        """The history of each of the pathway's tasks, in one read (an export)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT task_id, at, actor, what, due_at, owner, detail FROM task_event WHERE pathway_id = :p "
                "ORDER BY seq"), {"p": pathway_id})).all()
        found: dict[str, list[TaskEvent]] = {}
        for r in rows:
            found.setdefault(r.task_id, []).append(TaskEvent(r.at, r.actor, r.what, r.due_at, r.owner, r.detail))
        return found

    # -- the board (bot/task_board.py) and the notices a reaction answers ------------------------------------------

    async def version(self, pathway_id: str) -> int:
        """How many changes the pathway's tasks have had: the board shows this version."""
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT COUNT(*) FROM task_event WHERE pathway_id = :p"),
                                       {"p": pathway_id})).scalar_one()

    async def last_done(self, pathway_id: str) -> dict[str, TaskEvent]:
        """The last « faite » of each of the pathway's tasks that has one (a recurring task, open again, was done)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT task_id, at, actor, what, due_at, owner, detail FROM task_event e WHERE pathway_id = :p "
                "AND what = 'faite' AND seq = (SELECT MAX(seq) FROM task_event l WHERE l.task_id = e.task_id "
                "AND l.what = 'faite')"), {"p": pathway_id})).all()
        return {r.task_id: TaskEvent(r.at, r.actor, r.what, r.due_at, r.owner, r.detail) for r in rows}

    async def board(self, pathway_id: str) -> tuple[str, int] | None:
        """The board's event and the version it shows."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT event_id, version FROM task_board WHERE pathway_id = :p"),
                                      {"p": pathway_id})).first()
        return (row.event_id, row.version) if row else None

    async def board_shown(self, pathway_id: str, event_id: str, version: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO task_board (pathway_id, event_id, version, updated_at) VALUES (:p, :e, :v, :at) "
                "ON CONFLICT (pathway_id) DO UPDATE SET event_id = excluded.event_id, version = excluded.version, "
                "updated_at = excluded.updated_at"),
                {"p": pathway_id, "e": event_id, "v": version, "at": self.clock.now_ms()})

    async def boards_behind(self) -> list[str]:
        """The open pathways whose board (or lack of one) does not show their tasks' last change."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT e.pathway_id FROM (SELECT pathway_id, COUNT(*) AS n FROM task_event GROUP BY pathway_id) e "
                "JOIN pathway ON pathway.id = e.pathway_id AND pathway.status = 'open' "
                "LEFT JOIN task_board b ON b.pathway_id = e.pathway_id "
                "WHERE b.version IS NULL OR b.version <> e.n"))).all()
        return [r.pathway_id for r in rows]

    async def noticed(self, task: Task, event_id: str) -> None:
        """`event_id` is a notice about `task`: a reaction on it acts on the task."""
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO task_notice (event_id, task_id, pathway_id) VALUES (:e, :t, :p) "
                "ON CONFLICT (event_id) DO NOTHING"), {"e": event_id, "t": task.id, "p": task.pathway_id})

    async def by_notice(self, event_id: str) -> Task | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT task.* FROM task_notice JOIN task ON task.id = task_notice.task_id "
                "WHERE task_notice.event_id = :e"), {"e": event_id})).first()
        return _task(row) if row else None

    # -- changes: each conditional on the task still being open; None when it was not (nothing written) -------------

    async def take(self, task: Task, actor: str) -> tuple[Task, int] | None:
        """`actor` takes the task in charge: a request no one has taken yet, or a task already theirs."""
        return await self._change(task, actor, "prise", {"owner": actor, "state": "prise_en_charge"},
                                  "(owner IS NULL OR owner = :actor)", owner=actor)

    async def done(self, task: Task, actor: str, comment: str | None, next_due: int | None) -> tuple[Task, int] | None:
        """Done; a recurring task comes back open at `next_due` (the same number, the same owner)."""
        sets: dict[str, Any] = {"state": "a_faire", "due_at": next_due} if next_due is not None else {"state": "faite"}
        return await self._change(task, actor, "faite", sets, due_at=next_due, detail=comment)

    async def postpone(self, task: Task, actor: str, due_at: int) -> tuple[Task, int] | None:
        return await self._change(task, actor, "reportee", {"due_at": due_at}, due_at=due_at)

    async def assign(self, task: Task, actor: str, owner: str) -> tuple[Task, int] | None:
        return await self._change(task, actor, "confiee", {"owner": owner, "state": "a_faire"}, owner=owner)

    async def cancel(self, task: Task, actor: str) -> tuple[Task, int] | None:
        return await self._change(task, actor, "annulee", {"state": "annulee"})

    async def hand_back(self, task: Task, actor: str, detail: str) -> tuple[Task, int] | None:
        """The owner may no longer hold it (removed from the patient's rooms): a request to the coordination, which
        gives it to someone else (`detail`: the rule that removed them)."""
        return await self._change(task, actor, "rendue", {"owner": None, "profession": COORDINATION,
                                                         "state": "a_faire"}, detail=detail)

    async def _change(self, task: Task, actor: str, what: str, sets: dict[str, Any], condition: str = "1 = 1", *,
                      due_at: int | None = None, owner: str | None = None,
                      detail: str | None = None) -> tuple[Task, int] | None:
        at = self.clock.now_ms()
        assignments = ", ".join(f"{column} = :set_{column}" for column in sets)
        async with self.engine.begin() as conn:
            changed = await conn.execute(text(
                f"UPDATE task SET {assignments}, updated_at = :at WHERE id = :id "
                f"AND state IN ('a_faire', 'prise_en_charge') AND {condition}"),
                {**{f"set_{c}": v for c, v in sets.items()}, "at": at, "id": task.id, "actor": actor})
            if not changed.rowcount:
                return None
            after = await self._get(conn, task.id)
            ref = await self._event(conn, after, actor, what, at, due_at=due_at, owner=owner, detail=detail)
            return after, ref

    async def _get(self, conn: AsyncConnection, task_id: str) -> Task:
        return _task((await conn.execute(text("SELECT * FROM task WHERE id = :t"), {"t": task_id})).one())

    async def _event(self, conn: AsyncConnection, task: Task, actor: str, what: str, at: int, *,
                     due_at: int | None = None, owner: str | None = None, detail: str | None = None) -> int:
        """The history row, then the trace entry (last: appending takes the trace's lock); its number."""
        await conn.execute(text(
            "INSERT INTO task_event (id, task_id, seq, pathway_id, at, actor, what, due_at, owner, detail) "
            "VALUES (:id, :t, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_event WHERE task_id = :t), :p, :at, "
            ":actor, :what, :d, :o, :detail)"),
            {"id": uuid.uuid4().hex, "t": task.id, "p": task.pathway_id, "at": at, "actor": actor, "what": what,
             "d": due_at, "o": owner, "detail": detail})
        patient = (await conn.execute(text("SELECT patient_id FROM pathway WHERE id = :p"),
                                      {"p": task.pathway_id})).scalar()
        record = RECORDS[_RULES[what]]
        return await append_on(conn, at=at, actor=actor, action=record.action, subject=f"tâche n° {task.number}",
                               decision=record.decision, patient_id=patient, pathway_id=task.pathway_id,
                               data_category=task.category)
