"""The care plan (PPCS) of a pathway, as a reader sees it (`render`), and its pinned copy in the clinical room, edited
in place (`m.replace`) like the task board (bot/task_board.py).

The first change of a plan posts it and pins it beside the summary and the task board; every later change of the
plan, or of a task attached to one of its goals, edits that same event. Each showing is decided (`ppcs.board`, the
clinical room) and traced when it is sent. The post remembers the plan's version and a digest of the attached tasks
it shows: a change that alters neither costs nothing, and at start the posts left behind by a crash are brought up to
date (`catch_up`). A device that arrives later gets it posted again with the summary (bot/newcomers.py).
"""
from __future__ import annotations

import asyncio
import hashlib
from html import escape
from typing import Protocol

import structlog

from bot.members import PeoplePorts, person
from bot.rooms import ShowPorts
from bot.task_dates import shown
from bot.task_text import first_line
from liaison.clock import Clock
from liaison.enforcement import decide_at
from liaison.matrix import MatrixError, txn_id
from liaison.stores.care_plan import GOAL_STATES, CarePlanStore, Goal, Plan
from liaison.stores.pathways import Pathway
from liaison.stores.tasks import STATES, Task, TaskStore

log = structlog.get_logger(__name__)

TASKS_SHOWN = 10   # tasks under one goal: the post is one event (Synapse refuses one past 64 KiB)
HOW = "!ppcs objectif <texte>, !ppcs atteint <n>, !ppcs referent @compte, !ppcs mots <texte> ; !tache … objectif <n>."


class PlanPorts(ShowPorts, PeoplePorts, Protocol):
    """What the pinned plan reads and does: the plan, its tasks, the clock, who is who, the sharing decision."""
    @property
    def care_plans(self) -> CarePlanStore: ...
    @property
    def tasks(self) -> TaskStore: ...
    @property
    def clock(self) -> Clock: ...


async def render(s: PeoplePorts, code: str, plan: Plan, goals: tuple[Goal, ...], tasks: list[Task], *,
                 whole: bool = True) -> tuple[str, str]:
    """The plan as text and HTML: `goals` and the `tasks` attached to them (already chosen for the room); with
    `whole`, also the referent and the patient's words."""
    title = f"Plan personnalisé de coordination (PPCS) du parcours {code}"
    lines, parts = [f"{title} :"], [f"<p><b>{escape(title)}</b></p>"]
    if plan.closed_at is not None:
        lines.append(f"Plan clos le {shown(plan.closed_at)} avec le parcours.")
        parts.append(f"<p>{escape(lines[-1])}</p>")
    if whole:
        referent = (await person(s, plan.referent)).text() if plan.referent else "non désigné (!ppcs referent @compte)"
        lines.append(f"Référent : {referent}")
        parts.append(f"<p>Référent : {escape(referent)}</p>")
        lines.append("Ce qui compte pour moi (mots du patient) :")
        lines.append(plan.words if plan.words else "non noté (!ppcs mots <texte>)")
        parts.append(f"<p>Ce qui compte pour moi (mots du patient) :</p><blockquote>{_html(plan.words)}</blockquote>"
                     if plan.words else f"<p>Ce qui compte pour moi : {escape(lines[-1])}</p>")
    lines.append("Objectifs :" if goals else "Aucun objectif (!ppcs objectif <texte>).")
    items = []
    for g in goals:
        state = GOAL_STATES[g.state] + (f" le {shown(g.reached_at)}" if g.state == "atteint" and g.reached_at else "")
        lines.append(f"Objectif n° {g.number} ({state}) : {g.text}")
        attached = [t for t in tasks if t.goal == g.number]
        sub = []
        for t in attached[:TASKS_SHOWN]:
            lines.append(f"  · tâche n° {t.number} · {first_line(t.text)} · {STATES[t.state]}")
            sub.append(f"<li>tâche n° {t.number} · {escape(first_line(t.text))} · {escape(STATES[t.state])}</li>")
        if len(attached) > TASKS_SHOWN:
            lines.append(f"  … et {len(attached) - TASKS_SHOWN} autre(s) tâche(s) : !taches.")
        if not attached:
            lines.append("  · aucune tâche rattachée")
        items.append(f"<li>Objectif n° {g.number} ({escape(state)}) : {_html(g.text)}"
                     f"{f'<ul>{chr(10).join(sub)}</ul>' if sub else ''}</li>")
    if items:
        parts.append(f"<p>Objectifs :</p><ul>{''.join(items)}</ul>")
    else:
        parts.append(f"<p>{escape(lines[-1])}</p>")
    if plan.version and plan.updated_by and plan.updated_at:
        by = (await person(s, plan.updated_by)).text()
        lines.append(f"Version {plan.version}, du {shown(plan.updated_at)} par {by}.")
        parts.append(f"<p><small>{escape(lines[-1])}</small></p>")
    return "\n".join(lines), "".join(parts)


def _html(text: str | None) -> str:
    return escape(text or "").replace("\n", "<br>")


def digest(tasks: list[Task]) -> str:
    """What of the attached tasks the plan shows, hashed (the post stores no patient data)."""
    shown_ = sorted((t.goal or 0, t.number, t.state, first_line(t.text)) for t in tasks if t.goal is not None)
    return hashlib.sha256(repr(shown_).encode()).hexdigest()[:32]


class CarePlanPost:
    def __init__(self, services: PlanPorts) -> None:
        self.s = services
        self._locks: dict[str, asyncio.Lock] = {}

    async def changed(self, pathway: Pathway) -> str | None:
        """Bring the pinned plan up to date after a change of the plan or of its tasks; its event id (None: not
        shown). Never raises for the homeserver: the change is stored, the post follows at the next change or start."""
        try:
            return await self._refresh(pathway, again=None)
        except (MatrixError, OSError, asyncio.TimeoutError) as err:
            log.warning("care_plan_post.failed", pathway_id=pathway.id, error=str(err)[:200])
            return None

    async def post_again(self, pathway: Pathway, salt: str) -> str | None:
        """A new post (readable by the devices that came since the first) pinned in place of the old one."""
        if await self.s.care_plans.post(pathway.id) is None:
            return None
        return await self._refresh(pathway, again=salt)

    async def catch_up(self) -> int:
        """At start: the posts a crash left behind their plan, brought up to date; how many."""
        done = 0
        for pathway_id in await self.s.care_plans.posts_behind():
            if await self.changed(await self.s.pathways.pathway(pathway_id)):
                done += 1
        return done

    async def _refresh(self, pathway: Pathway, again: str | None) -> str | None:
        lock = self._locks.setdefault(pathway.id, asyncio.Lock())
        async with lock:
            if pathway.status != "open" or pathway.room_id is None:
                return None
            plan = await self.s.care_plans.plan(pathway.id)
            if plan.empty:
                return None
            tasks = [t for t in await self.s.tasks.of_pathway(pathway.id) if t.goal is not None]
            seen = digest(tasks)
            post = await self.s.care_plans.post(pathway.id)
            if post is not None and post[1] >= plan.version and post[2] == seen and again is None:
                return post[0]
            bot = self.s.settings.bot_user_id
            decided = await decide_at(self.s.sharing, "ppcs.board", pathway=pathway, recipient=bot, actor=bot,
                                      room_kind="clinical")
            if not decided.allowed:
                return None
            text, html = await render(self.s, pathway.code, plan, plan.goals, tasks)
            content = {"msgtype": "m.notice", "body": text, "format": "org.matrix.custom.html", "formatted_body": html}
            room = pathway.room_id
            if post is None or again is not None:
                event_id = await self.s.matrix.send(room, content, txn_id(pathway.id, "plan", again or ""))
                await self._pin(room, event_id, post[0] if post else None)
            else:
                event_id = post[0]
                edit = {"msgtype": "m.notice", "body": f"* {text}", "format": "org.matrix.custom.html",
                        "formatted_body": f"* {html}", "m.new_content": content,
                        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}
                await self.s.matrix.send(room, edit, txn_id(pathway.id, "plan", event_id, str(plan.version), seen))
            await self.s.care_plans.posted(pathway.id, event_id, plan.version, seen)
            log.info("care_plan_post.shown", pathway_id=pathway.id, version=plan.version,
                     edited=post is not None and again is None)
            return event_id

    async def _pin(self, room: str, event_id: str, old: str | None) -> None:
        """Pinned after the summary and the task board, in place of the post it replaces (other pins kept)."""
        pinned = list((await self.s.matrix.state_event(room, "m.room.pinned_events") or {}).get("pinned", []))
        pinned = [e for e in pinned if e not in (old, event_id)]
        await self.s.matrix.set_state(room, "m.room.pinned_events", {"pinned": [*pinned, event_id]})
