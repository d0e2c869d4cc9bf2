"""Task reminders (issue 25): on its due date, the owner of a task is mentioned in the patient's clinical room (a
request no one has taken: each member of its profession in the pathway); once a day, the overdue tasks are listed
in the coordination's room by pathway code and profession, as `!taches` lists them there.

When: a task due at an hour (« 12 janvier 14h ») at that hour; a task due on a day at `hour` (config
`pathways.task_reminder_hour`, Europe/Paris) that day. The schedule is the database's (`task.reminded_due_at`,
`task_overdue_day`): a pass after a crash or a restart past the time sends what is owed. A done or cancelled task,
a task of a closed pathway, is not reminded; a recurring task done comes back with its next due date, so its next
reminder.

Never doubled, never lost. Each message goes with a transaction id made of what it is (the task and its due date;
the day), and is recorded as « sending » (`reminder_sending`: its room, that transaction id, the attempt) in the
database BEFORE it is sent; the reminder is marked handled, and that record deleted, in one transaction after the
send. A crash in between leaves the record. The homeserver deduplicates a transaction id for about 30 minutes only,
so a restart later than that cannot count on it: a pass that finds the record first reads the room's recent timeline
(`MatrixRooms.recent_events`, the last LOOKBACK events) for the bot's own event carrying that transaction id, which
the homeserver gives back to the device that sent it (`unsigned.transaction_id`, client-server spec; the bot keeps
its device across restarts). Found: the reminder reached the room, it is marked handled, nothing is sent. Not found:
it never reached the room, and it is sent (with the same transaction id: within the 30 minutes a send that did
arrive is deduplicated all the same). What is left open: a room so busy that more than LOOKBACK events followed the
reminder before the restart, or a new device of the bot (its store lost): the reminder may then be posted twice,
never lost.

A room that refuses the bot (kicked, room gone) is not asked again every minute: each attempt is recorded with the
moment before which no new one is made (1, 2, 4 … minutes, at most an hour), and after MAX_ATTEMPTS the reminder is
given up: handled, logged with ids only, and the coordination told once, in one notice per pass listing the tasks by
pathway code and number (each pathway decided for the coordination's reading, as the overdue list is).

Each reminder is decided when it is sent (`task.remind` for each person mentioned, `task.overdue` for the list),
and traced; refused, nothing is sent and the reminder is handled (not asked again every minute). A pass decides its
reminders CHUNK at a time, in one batch (liaison/enforcement.py `decide_many`), just before sending them.

On time. `run` is the loop: a pass, then a sleep on the clock until the next reminder's moment, never longer than
CHECK_SECONDS (what it cannot foresee: a task made meanwhile, a retry after its back-off, the day's overdue list). A
reminder due at 9:00 goes at 9:00, not at the next minute's pass.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, time, timezone
from html import escape
from typing import Protocol

import structlog

from bot.circle import CIRCLE_STATE
from bot.members import PeoplePorts, person
from bot.reply import room_link
from bot.rooms import ShowPorts, show_in
from bot.task_dates import PARIS, shown
from bot.task_text import plural, singular
from liaison.clock import Clock
from liaison.enforcement import decide_many
from liaison.matrix import MatrixError, message, notice, txn_id
from liaison.sharing_facts import ACTIVE, Question, SharingStores
from liaison.stores.mail import QUARANTINE_ROOM
from liaison.stores.pathways import Pathway, PathwayStore
from liaison.stores.tasks import Sending, Task, TaskStore

log = structlog.get_logger(__name__)
DAY_MS = 86_400_000
CHECK_SECONDS = 60        # the longest the loop sleeps: a task made meanwhile is looked at within the minute


class ReminderPorts(PeoplePorts, ShowPorts, Protocol):
    """What reminding reads: the tasks, the pathways and their members, who is who, the decision, the clock."""
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def pathways(self) -> PathwayStore: ...
    @property
    def sharing(self) -> SharingStores: ...
    @property
    def clock(self) -> Clock: ...


MAX_ATTEMPTS = 8          # then given up: 1 + 2 + 4 + … + 60 minutes, about two hours of a room refusing the bot
FIRST_RETRY_MS = 60_000
LAST_RETRY_MS = 3_600_000
LOOKBACK = 300            # the room's recent events read for an earlier attempt's event
CHUNK = 50                # reminders decided together, then sent


def remind_at(due_at: int, hour: int) -> int:
    """The moment a due date is reminded: its hour when one was typed, else `hour` (Paris) on its day."""
    local = _paris(due_at)
    if (local.hour, local.minute) != (23, 59):
        return due_at
    return int(datetime.combine(local.date(), time(hour), PARIS).timestamp() * 1000)


def retry_after_ms(attempts: int) -> int:
    """How long after its `attempts`-th attempt a reminder is tried again: 1, 2, 4 … minutes, at most an hour."""
    return min(FIRST_RETRY_MS * 2 ** (attempts - 1), LAST_RETRY_MS)


def reminder_key(task: Task) -> str:
    return f"task {task.id} {task.due_at}"


def reminder_txn(task: Task) -> str:
    return txn_id("task-reminder", task.id, str(task.due_at))


class TaskReminders:
    def __init__(self, services: ReminderPorts, hour: int = 9) -> None:
        self.s, self.hour = services, hour

    async def run(self) -> None:
        """Passes, each followed by a sleep until the next reminder's moment (at most CHECK_SECONDS); a failed pass is
        logged and the next one comes at its time."""
        while True:
            started = self.s.clock.now_ms()   # what came due while the pass ran is after it: the next wake is now
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001 — one failed pass never stops the reminders
                log.exception("task.reminders_failed")
            wake = self.s.clock.now_ms() + CHECK_SECONDS * 1000
            try:
                wake = min(wake, await self.next_moment(after=started) or wake)
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001 — the minute's pass then
                log.exception("task.reminders_next_failed")
            await self.s.clock.sleep_until(datetime.fromtimestamp(wake / 1000, tz=timezone.utc))

    async def next_moment(self, after: int | None = None) -> int | None:
        """The next moment a reminder is due after `after` (default: now), looked for within two days; or None."""
        after = self.s.clock.now_ms() if after is None else after
        later = [m for t in await self.s.tasks.to_remind(after + 2 * DAY_MS) if t.due_at is not None
                 and (m := remind_at(t.due_at, self.hour)) > after]
        return min(later) if later else None

    async def run_once(self) -> int:
        """Send the reminders whose moment has come and the day's overdue list; the number of messages sent."""
        now = self.s.clock.now_ms()
        due = [t for t in await self.s.tasks.to_remind(now + DAY_MS)   # reminded at the latest at its due date
               if t.due_at is not None and remind_at(t.due_at, self.hour) <= now]
        if await self.s.tasks.drop_stale_sendings(f"overdue {_paris(now):%Y-%m-%d}"):
            log.info("task.reminder_records_dropped")
        sendings = await self.s.tasks.sendings()
        gave_up: list[tuple[Pathway, Task]] = []
        sent = 0
        for start in range(0, len(due), CHUNK):
            sent += await self._remind(due[start:start + CHUNK], now, sendings, gave_up)
        if gave_up:
            await self._tell_given_up(gave_up)
        return sent + await self._overdue_list(now, sendings)

    async def _remind(self, chunk: list[Task], now: int, sendings: dict[str, Sending],
                      gave_up: list[tuple[Pathway, Task]]) -> int:
        """One chunk of due reminders: each attempt recorded, an earlier one looked for in its room, the rest
        decided together, then sent one by one."""
        ready = [t for t in chunk if _attempts(sendings, t) == 0 or sendings[reminder_key(t)].next_at <= now]
        pathways = await self.s.pathways.pathways({t.pathway_id for t in ready})
        todo = []
        for task in ready:
            pathway = pathways[task.pathway_id]
            if pathway.status == "open" and pathway.room_id:
                todo.append((task, pathway))
            else:
                await self.s.tasks.mark_reminded(task, reminder_key(task))
        in_rooms = await self.s.pathways.members_of({p.id for _t, p in todo})
        room = {t.id: _room_of(t, p, in_rooms[p.id]) for t, p in todo}
        for task, pathway in todo:
            if room[task.id] == pathway.circle_room_id and task.owner:
                # Everyone in the circle room reads it: the room must share the task's category (decided, traced as
                # `!taches` there is); refused, it goes to the clinical room, as any task's reminder.
                shown = await show_in(self.s, "circle", pathway, task.owner, task.category)
                if not shown.allowed:
                    room[task.id] = pathway.room_id or ""
        recorded = await self.s.tasks.begin_sending([
            (reminder_key(t), p.id, room[t.id], reminder_txn(t), now + retry_after_ms(_attempts(sendings, t) + 1))
            for t, p in todo])
        fresh = []
        for task, pathway in todo:
            attempt = recorded[reminder_key(task)]
            if attempt.attempts == 1:
                fresh.append((task, pathway))
                continue
            try:   # an earlier attempt: did it reach the room?
                posted = await self._posted(room[task.id], attempt.txn_id)
            except _NOT_SENT as err:
                await self._failed(task, pathway, attempt, err, gave_up)
                continue
            if posted:
                await self.s.tasks.mark_reminded(task, attempt.key)
                log.info("task.reminder_found_posted", task_id=task.id, attempts=attempt.attempts)
            else:
                fresh.append((task, pathway))
        sent = 0
        for (task, pathway), mentioned in zip(fresh, await self._allowed(fresh, in_rooms), strict=True):
            attempt = recorded[reminder_key(task)]
            if mentioned:
                try:
                    await self.s.matrix.send(room[task.id], await self._content(task, mentioned, now), attempt.txn_id)
                except _NOT_SENT as err:   # recorded: the next pass (after its backoff) looks, then sends again
                    await self._failed(task, pathway, attempt, err, gave_up)
                    continue
                sent += 1
            log.info("task.reminder", task_id=task.id, pathway_id=pathway.id, mentioned=len(mentioned),
                     sent=int(bool(mentioned)))
            await self.s.tasks.mark_reminded(task, attempt.key)
        return sent

    async def _failed(self, task: Task, pathway: Pathway, attempt: Sending, err: Exception,
                      gave_up: list[tuple[Pathway, Task]]) -> None:
        error = getattr(err, "errcode", None) or err.__class__.__name__
        if attempt.attempts < MAX_ATTEMPTS:
            log.warning("task.reminder_not_sent", task_id=task.id, pathway_id=pathway.id, attempts=attempt.attempts,
                        retry_in_s=(attempt.next_at - self.s.clock.now_ms()) // 1000, error=error)
            return
        await self.s.tasks.mark_reminded(task, attempt.key)
        gave_up.append((pathway, task))
        log.warning("task.reminder_given_up", task_id=task.id, pathway_id=pathway.id, attempts=attempt.attempts,
                    error=error)

    async def _posted(self, room_id: str, txn: str) -> bool:
        """The bot's event sent with this transaction id is among the room's recent events."""
        me = self.s.matrix.user_id
        return any(e.get("sender") == me and (e.get("unsigned") or {}).get("transaction_id") == txn
                   for e in await self.s.matrix.recent_events(room_id, 0, LOOKBACK))

    async def _allowed(self, fresh: list[tuple[Task, Pathway]],
                       in_rooms: dict[str, list[tuple[str, str, str]]]) -> list[list[str]]:
        """Who each reminder mentions: its owner, or each member of the requested profession; each decided now, all
        in one batch (one trace entry each)."""
        candidates: list[list[str]] = []
        for task, pathway in fresh:
            if task.owner is not None:
                candidates.append([task.owner])
                continue
            found = []
            for user_id, state, _rule in in_rooms[pathway.id]:
                member = await self.s.roster.get(user_id)
                if state in ACTIVE and member is not None and member.profession.key == task.profession:
                    found.append(user_id)
            candidates.append(found)
        questions = [Question(pathway, user_id, task.category)
                     for (task, pathway), users in zip(fresh, candidates, strict=True) for user_id in users]
        decided = iter(await decide_many(self.s.sharing, "task.remind", questions,
                                         actor=self.s.settings.bot_user_id))
        return [[user_id for user_id in users if next(decided).allowed] for users in candidates]

    async def _content(self, task: Task, mentioned: list[str], now: int) -> dict:
        people = [await person(self.s, user_id) for user_id in mentioned]
        names = ", ".join(p.name for p in people)
        pills = ", ".join(f'<a href="{escape(room_link(p.user_id))}">{escape(p.name)}</a>' for p in people)
        asked = (f" demandée aux {plural(task.profession or '')} (!tache prendre {task.number})"
                 if task.owner is None else "")
        what = f"Rappel — tâche n° {task.number}{asked}, échéance {_when(task.due_at or now, now)} : "
        first = _first_line(task.text)
        content = message(f"{names} : {what}{first}", f"{pills} : {escape(what)}{escape(first)}", notice=False)
        content["m.mentions"] = {"user_ids": mentioned}
        return content

    async def _tell_given_up(self, gave_up: list[tuple[Pathway, Task]]) -> None:
        """Once, the coordination: the reminders given up, by pathway code and task number (each pathway decided
        for the coordination's reading), never a name nor a text."""
        room = await self.s.mail.setting(QUARANTINE_ROOM) if self.s.mail is not None else None
        reader = await self._coordinator_in(room) if room else None
        if room is None or reader is None:
            log.warning("task.reminders_given_up_untold", count=len(gave_up))
            return
        decided = await decide_many(self.s.sharing, "task.overdue", [
            Question(p, reader, t.category, "coordination") for p, t in gave_up], actor=reader)
        shown = [f"{p.code} n° {t.number}" for (p, t), d in zip(gave_up, decided, strict=True) if d.allowed]
        more = len(gave_up) - len(shown)
        text_ = (f"Rappels non postés après {MAX_ATTEMPTS} essais, abandonnés : le salon du parcours refuse les "
                 f"messages de Liaison (retiré du salon, ou salon supprimé ?). Vérifiez-le, puis relancez les "
                 f"personnes concernées. " + " ; ".join(shown) + (f" (et {more} autre(s))" if more else ""))
        try:
            await self.s.matrix.send(room, notice(text_), txn_id("task-reminders-given-up",
                                                                 *sorted(reminder_key(t) for _p, t in gave_up)))
        except _NOT_SENT as err:
            log.warning("task.reminders_given_up_untold", count=len(gave_up),
                        error=getattr(err, "errcode", None) or err.__class__.__name__)
            return
        log.info("task.reminders_given_up_told", count=len(gave_up))

    async def _overdue_list(self, now: int, sendings: dict[str, Sending]) -> int:
        """The overdue tasks by pathway code and profession, once a Paris day from `hour` on, in the coordination's
        room, decided for each pathway as the coordination's reading (`task.overdue`); recorded as « sending »
        before it is sent, as a task's reminder is."""
        local = _paris(now)
        day = f"{local:%Y-%m-%d}"
        key = f"overdue {day}"
        if local.hour < self.hour or self.s.mail is None or await self.s.tasks.overdue_listed(day):
            return 0
        if key in sendings and sendings[key].next_at > now:
            return 0
        room = await self.s.mail.setting(QUARANTINE_ROOM)
        if not room:
            return 0
        txn = txn_id("task-overdue", day)
        [attempt] = (await self.s.tasks.begin_sending([(key, None, room, txn,
                                                        now + retry_after_ms((sendings[key].attempts
                                                                              if key in sendings else 0) + 1))]
                                                      )).values()
        try:
            if attempt.attempts > 1 and await self._posted(room, txn):
                await self.s.tasks.mark_overdue_listed(day, 0, key)
                log.info("task.overdue_list_found_posted", day=day, attempts=attempt.attempts)
                return 0
            reader = await self._coordinator_in(room)
            rows: list[str] = []
            if reader is not None:
                listed = []
                for task in await self.s.tasks.overdue(now):
                    pathway = await self.s.pathways.pathway(task.pathway_id)
                    if pathway.status == "open":
                        listed.append((task, pathway))
                decided = await decide_many(self.s.sharing, "task.overdue", [
                    Question(p, reader, t.category, "coordination") for t, p in listed], actor=reader)
                for (task, pathway), d in zip(listed, decided, strict=True):
                    if d.allowed:
                        rows.append(f"{pathway.code} n° {task.number} · {await self._profession_of(task)} · "
                                    f"{task.category} · échue le {shown(task.due_at)}")
            if rows:
                await self.s.matrix.send(room, notice(f"Tâches en retard ce jour ({len(rows)}) :\n" + "\n".join(rows)),
                                         txn)
        except _NOT_SENT as err:
            error = getattr(err, "errcode", None) or err.__class__.__name__
            if attempt.attempts < MAX_ATTEMPTS:
                log.warning("task.overdue_list_not_sent", day=day, attempts=attempt.attempts, error=error)
                return 0
            await self.s.tasks.mark_overdue_listed(day, 0, key)
            log.warning("task.overdue_list_given_up", day=day, attempts=attempt.attempts, error=error)
            return 0
        await self.s.tasks.mark_overdue_listed(day, len(rows), key)
        log.info("task.overdue_list", day=day, listed=len(rows), sent=int(bool(rows)))
        return int(bool(rows))

    async def _coordinator_in(self, room: str) -> str | None:
        """A coordinator who reads the coordination's room: the list is theirs to read (the policy's reader)."""
        for user_id in sorted(await self.s.matrix.members(room)):
            member = await self.s.roster.get(user_id)
            if member is not None and member.coordinator:
                return user_id
        return None

    async def _profession_of(self, task: Task) -> str:
        if task.owner is None:
            return singular(task.profession or "")
        member = await self.s.roster.get(task.owner)
        return member.profession.label if member else "hors de l'équipe de la structure"


_NOT_SENT = (MatrixError, OSError, TimeoutError)   # the homeserver refused, or could not be reached


def _room_of(task: Task, pathway: Pathway, members: list[tuple[str, str, str]]) -> str:
    """Where a task is reminded: the clinical room; the circle room for a social or administrative task whose owner
    is a member of the circle room only (a social worker: she reads that room, not the clinical one), if that room
    may show the task's category (decided by the caller)."""
    circle_only = any(u == task.owner and state == CIRCLE_STATE for u, state, _rule in members)
    if task.category != "soins" and circle_only and pathway.circle_room_id:
        return pathway.circle_room_id
    return pathway.room_id or ""


def _attempts(sendings: dict[str, Sending], task: Task) -> int:
    found = sendings.get(reminder_key(task))
    return found.attempts if found else 0


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

