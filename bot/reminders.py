"""Task reminders (issue 25): on its due date, the owner of a task is mentioned in the patient's clinical room (a
request no one has taken: each member of its profession in the pathway); once a day, the overdue tasks are listed
in the coordination's room by pathway code and profession, as `!taches` lists them there.

When: a task due at an hour (« 12 janvier 14h ») at that hour; a task due on a day at `hour` (config
`pathways.task_reminder_hour`, Europe/Paris) that day. The schedule is the database's (`task.reminded_due_at`,
`task_overdue_day`), so a pass after a crash or a restart past the time sends what is owed, once: the message goes
with a transaction id made of the task and its due date, and only then is the reminder marked handled; a crash
between the two resends the same transaction, which the homeserver deduplicates. A done or cancelled task, a task of
a closed pathway, is not reminded; a recurring task done comes back with its next due date, so its next reminder.

Each reminder is decided when it is sent (`task.remind` for each person mentioned, `task.overdue` for the list),
and traced; refused, nothing is sent and the reminder is handled (not asked again every minute).
"""
from __future__ import annotations

from datetime import datetime, time, timezone
from html import escape
from typing import Protocol

import structlog

from bot.members import PeoplePorts, person
from bot.reply import room_link
from bot.task_dates import PARIS, shown
from liaison.clock import Clock
from liaison.enforcement import decide_at
from liaison.matrix import MatrixError, message, notice, txn_id
from liaison.sharing_facts import ACTIVE, SharingStores
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.stores.pathways import Pathway, PathwayStore
from liaison.stores.tasks import Task, TaskStore
from policies.professions import find_profession

log = structlog.get_logger(__name__)
DAY_MS = 86_400_000


class ReminderPorts(PeoplePorts, Protocol):
    """What reminding reads: the tasks, the pathways and their members, who is who, the decision, the clock."""
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def clock(self) -> Clock: ...


def remind_at(due_at: int, hour: int) -> int:
    """The moment a due date is reminded: its hour when one was typed, else `hour` (Paris) on its day."""
    local = _paris(due_at)
    if (local.hour, local.minute) != (23, 59):
        return due_at
    return int(datetime.combine(local.date(), time(hour), PARIS).timestamp() * 1000)


class TaskReminders:
    def __init__(self, services: ReminderPorts, hour: int = 9) -> None:
        self.s, self.hour = services, hour

    async def run_once(self) -> int:
        """Send the reminders whose moment has come and the day's overdue list; the number of messages sent."""
        now = self.s.clock.now_ms()
        sent = 0
        for task in await self.s.tasks.to_remind(now + DAY_MS):   # reminded at the latest at its due date
            if task.due_at is None or remind_at(task.due_at, self.hour) > now:
                continue
            try:
                sent += await self._remind(task, now)
            except MatrixError as err:   # not marked: the next pass sends it again, with the same transaction
                log.warning("task.reminder_not_sent", task_id=task.id, error=err.__class__.__name__)
        return sent + await self._overdue_list(now)

    async def _remind(self, task: Task, now: int) -> int:
        pathway = await self.s.pathways.pathway(task.pathway_id)
        sent = 0
        if pathway.status == "open" and pathway.room_id:
            mentioned = await self._allowed(task, pathway)
            if mentioned:
                await self.s.matrix.send(pathway.room_id, await self._content(task, mentioned, now),
                                         txn_id("task-reminder", task.id, str(task.due_at)))
                sent = 1
            log.info("task.reminder", task_id=task.id, pathway_id=pathway.id, mentioned=len(mentioned), sent=sent)
        await self.s.tasks.mark_reminded(task)
        return sent

    async def _allowed(self, task: Task, pathway: Pathway) -> list[str]:
        """Who this reminder mentions: its owner, or each member of the requested profession; each decided now."""
        if task.owner is not None:
            candidates = [task.owner]
        else:
            candidates = []
            for user_id, state, _rule in await self.s.pathways.members(pathway.id):
                member = await self.s.roster.get(user_id)
                if state in ACTIVE and member is not None and member.profession.key == task.profession:
                    candidates.append(user_id)
        allowed = []
        for user_id in candidates:
            decided = await decide_at(self.s.sharing, "task.remind", pathway=pathway, recipient=user_id,
                                      actor=self.s.settings.bot_user_id, data_category=task.category)
            if decided.allowed:
                allowed.append(user_id)
        return allowed

    async def _content(self, task: Task, mentioned: list[str], now: int) -> dict:
        people = [await person(self.s, user_id) for user_id in mentioned]
        names = ", ".join(p.name for p in people)
        pills = ", ".join(f'<a href="{escape(room_link(p.user_id))}">{escape(p.name)}</a>' for p in people)
        asked = (f" demandée aux {_plural(task.profession or '')} (!tache prendre {task.number})"
                 if task.owner is None else "")
        what = f"Rappel — tâche n° {task.number}{asked}, échéance {_when(task.due_at or now, now)} : "
        first = _first_line(task.text)
        content = message(f"{names} : {what}{first}", f"{pills} : {escape(what)}{escape(first)}", notice=False)
        content["m.mentions"] = {"user_ids": mentioned}
        return content

    async def _overdue_list(self, now: int) -> int:
        """The overdue tasks by pathway code and profession, once a Paris day from `hour` on, in the coordination's
        room, decided for each pathway as the coordination's reading (`task.overdue`)."""
        local = _paris(now)
        day = f"{local:%Y-%m-%d}"
        if local.hour < self.hour or self.s.mail is None or await self.s.tasks.overdue_listed(day):
            return 0
        room = await self.s.mail.setting(QUARANTINE_ROOM)
        if not room:
            return 0
        reader = await self._coordinator_in(room)
        rows: list[str] = []
        if reader is not None:
            for task in await self.s.tasks.overdue(now):
                pathway = await self.s.pathways.pathway(task.pathway_id)
                if pathway.status != "open":
                    continue
                decided = await decide_at(self.s.sharing, "task.overdue", pathway=pathway, recipient=reader,
                                          actor=reader, room_kind="coordination", data_category=task.category)
                if decided.allowed:
                    rows.append(f"{pathway.code} n° {task.number} · {await self._profession_of(task)} · "
                                f"{task.category} · échue le {shown(task.due_at)}")
        sent = 0
        if rows:
            await self.s.matrix.send(room, notice(f"Tâches en retard ce jour ({len(rows)}) :\n" + "\n".join(rows)),
                                     txn_id("task-overdue", day))
            sent = 1
        await self.s.tasks.mark_overdue_listed(day, len(rows))
        log.info("task.overdue_list", day=day, listed=len(rows), sent=sent)
        return sent

    async def _coordinator_in(self, room: str) -> str | None:
        """A coordinator who reads the coordination's room: the list is theirs to read (the policy's reader)."""
        for user_id in sorted(await self.s.matrix.members(room)):
            member = await self.s.roster.get(user_id)
            if member is not None and member.coordinator:
                return user_id
        return None

    async def _profession_of(self, task: Task) -> str:
        if task.owner is None:
            return _singular(task.profession or "")
        member = await self.s.roster.get(task.owner)
        return member.profession.label if member else "hors de l'équipe de la structure"


def _when(due_at: int, now: int) -> str:
    """« aujourd'hui 14h », « aujourd'hui » (a day's task), or the date when the reminder comes late."""
    local = _paris(due_at)
    if local.date() != _paris(now).date():
        return f"le {shown(due_at)}"
    if (local.hour, local.minute) == (23, 59):
        return "aujourd'hui"
    return f"aujourd'hui {local.hour}h" + (f"{local.minute:02d}" if local.minute else "")


def _paris(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(PARIS)


def _first_line(text: str, width: int = 80) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= width else first[:width].rstrip() + "…"


def _singular(key: str) -> str:
    found = find_profession(key)
    return found.label.lower() if found else key


def _plural(key: str) -> str:
    return " ".join(w if w.endswith(("s", "x")) else w + "s" for w in _singular(key).split(" "))

