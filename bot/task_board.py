"""One task board per pathway: an encrypted table pinned beside the summary, edited in place (`m.replace`).

The first change to a pathway's tasks posts the board and pins it; every later change edits that same event, so the
room gets one edit per change and never a new message. Each showing is decided (`task.board`, the clinical room) and
traced at the moment it is sent. The board remembers the version it shows (how many changes the tasks have had):
changes that come together make one edit, a resend after a crash reuses its transaction id, and at start the boards
left behind are brought up to date (`catch_up`). A device that arrives later cannot read the board's first event
(Megolm): when the summary is posted again for it (bot/newcomers.py), the board is posted again too, and pinned.
"""
from __future__ import annotations

import asyncio
from html import escape
from typing import Protocol

import structlog

from bot.members import PeoplePorts, person
from bot.rooms import ShowPorts
from bot.task_dates import shown
from bot.task_text import by_due, due_text, first_line, plural
from liaison.clock import Clock
from liaison.enforcement import decide_at
from liaison.matrix import MatrixError, txn_id
from liaison.stores.pathways import Pathway
from liaison.stores.tasks import STATES, Task, TaskStore

log = structlog.get_logger(__name__)

OPEN_SHOWN = 40   # open tasks on the board: one event holds them (Synapse refuses an event past 64 KiB)
DONE_SHOWN = 5
HOW = "✋ sur l'annonce d'une tâche pour la prendre, ✅ pour la marquer faite ; !taches pour la liste, !aide tache."


class BoardPorts(ShowPorts, PeoplePorts, Protocol):
    """What the board reads and does: the tasks, the clock, who is who, the sharing decision, the room."""
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def clock(self) -> Clock: ...


class TaskBoard:
    def __init__(self, services: BoardPorts) -> None:
        self.s = services
        self._locks: dict[str, asyncio.Lock] = {}

    async def changed(self, pathway: Pathway) -> str | None:
        """Bring the board up to date after a change of the pathway's tasks; the board's event id (None: not shown).
        Never raises for the homeserver: the change is stored, the board follows at the next change or start."""
        try:
            return await self._refresh(pathway, again=None)
        except (MatrixError, OSError, asyncio.TimeoutError) as err:
            log.warning("task_board.failed", pathway_id=pathway.id, error=str(err)[:200])
            return None

    async def post_again(self, pathway: Pathway, salt: str) -> str | None:
        """A new board event (readable by the devices that came since the first) pinned in place of the old one."""
        if await self.s.tasks.board(pathway.id) is None:
            return None
        return await self._refresh(pathway, again=salt)

    async def catch_up(self) -> int:
        """At start: the boards a crash left behind their tasks, brought up to date; how many."""
        done = 0
        for pathway_id in await self.s.tasks.boards_behind():
            if await self.changed(await self.s.pathways.pathway(pathway_id)):
                done += 1
        return done

    async def _refresh(self, pathway: Pathway, again: str | None) -> str | None:
        lock = self._locks.setdefault(pathway.id, asyncio.Lock())
        async with lock:   # one pathway's edits go out in the order of its changes, the last one showing the last
            if pathway.status != "open" or pathway.room_id is None:
                return None
            version = await self.s.tasks.version(pathway.id)
            board = await self.s.tasks.board(pathway.id)
            if board is not None and board[1] >= version and again is None:
                return board[0]   # already shows this change (changes that came together: one edit)
            bot = self.s.settings.bot_user_id
            decided = await decide_at(self.s.sharing, "task.board", pathway=pathway, recipient=bot, actor=bot,
                                      room_kind="clinical")
            if not decided.allowed:
                return None
            text, html = await self._render(pathway, await self.s.tasks.of_pathway(pathway.id))
            content = {"msgtype": "m.notice", "body": text, "format": "org.matrix.custom.html",
                       "formatted_body": html}
            room = pathway.room_id
            if board is None or again is not None:
                salt = again or ""
                event_id = await self.s.matrix.send(room, content, txn_id(pathway.id, "board", salt))
                await self._pin(pathway, event_id, board[0] if board else None)
            else:
                event_id = board[0]
                edit = {"msgtype": "m.notice", "body": f"* {text}", "format": "org.matrix.custom.html",
                        "formatted_body": f"* {html}", "m.new_content": content,
                        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}
                await self.s.matrix.send(room, edit, txn_id(pathway.id, "board", event_id, str(version)))
            await self.s.tasks.board_shown(pathway.id, event_id, version)
            log.info("task_board.shown", pathway_id=pathway.id, version=version, edited=board is not None
                     and again is None)
            return event_id

    async def _pin(self, pathway: Pathway, event_id: str, old: str | None) -> None:
        """Pinned after the summary, in place of the board it replaces (other pins kept)."""
        room = pathway.room_id
        assert room is not None
        pinned = list((await self.s.matrix.state_event(room, "m.room.pinned_events") or {}).get("pinned", []))
        pinned = [e for e in pinned if e not in (old, event_id)]
        await self.s.matrix.set_state(room, "m.room.pinned_events", {"pinned": [*pinned, event_id]})

    async def _render(self, pathway: Pathway, tasks: list[Task]) -> tuple[str, str]:
        now = self.s.clock.now_ms()
        last_done = await self.s.tasks.last_done(pathway.id)
        late = sorted((t for t in tasks if t.overdue(now)), key=by_due)
        pending = sorted((t for t in tasks if t.open and not t.overdue(now)), key=by_due)
        done = sorted((t for t in tasks if t.state == "faite"), key=lambda t: -t.updated_at)[:DONE_SHOWN]
        shown_open = (late + pending)[:OPEN_SHOWN]
        more = len(late) + len(pending) - len(shown_open)
        title = f"Tableau des tâches du parcours {pathway.code}"
        lines, rows = [f"{title} :"], []
        for section, listed in (("En retard", [t for t in shown_open if t in late]),
                                ("À faire", [t for t in shown_open if t not in late]), ("Faites récemment", done)):
            if not listed:
                continue
            lines.append(f"{section} :")
            rows.append(f'<tr><th colspan="5">{escape(section)}</th></tr>')
            for t in listed:
                who = await self._who(t)
                state = STATES[t.state] + (" ⚠️ en retard" if t.overdue(now) else "")
                if t.recurrence and t.open and t.id in last_done:   # the last occurrence done, by whom
                    done_by = (await person(self.s, last_done[t.id].actor)).name
                    state += f" (dernière faite le {shown(last_done[t.id].at)} par {done_by})"
                lines.append(f"n° {t.number} · {first_line(t.text)} · {who} · {due_text(t)} · {state}")
                rows.append(f"<tr><td>{t.number}</td><td>{escape(first_line(t.text))}</td><td>{escape(who)}</td>"
                            f"<td>{escape(due_text(t).removeprefix('échéance '))}</td><td>{escape(state)}</td></tr>")
        if not rows:
            lines.append("Aucune tâche ouverte.")
        if more:
            lines.append(f"… et {more} autre(s) tâche(s) ouverte(s) : !taches.")
        updated = f"Mis à jour le {shown(now)}. {HOW}"
        lines.append(updated)
        table = ("<table><thead><tr><th>N°</th><th>Tâche</th><th>Pour</th><th>Échéance</th><th>État</th></tr></thead>"
                 f"<tbody>{''.join(rows)}</tbody></table>" if rows else "<p>Aucune tâche ouverte.</p>")
        tail = f"<p>… et {more} autre(s) tâche(s) ouverte(s) : <code>!taches</code>.</p>" if more else ""
        html = f"<p><b>{escape(title)}</b></p>{table}{tail}<p><small>{escape(updated)}</small></p>"
        return "\n".join(lines), html

    async def _who(self, t: Task) -> str:
        if t.owner:
            return (await person(self.s, t.owner)).text()
        return f"demandée aux {plural(t.profession or '')}"
