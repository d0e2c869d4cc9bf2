"""The patient's care plan (PPCS, « plan personnalisé de coordination en santé »), one per pathway: its goals
(numbered 1, 2, … per pathway, the text kept byte for byte), its referent, the patient's own words « ce qui compte
pour moi », and its versions.

Every change is one transaction: the plan's or the goal's row, a new version row (`care_plan_version`: who, when,
what, the goal's number and what it became) and its trace entry (policies/records.py `plan.*`: numbers and the
rule, never a text). A goal changes only while it is « en cours »: otherwise nothing is written and the caller is
told (None). Tasks attach to a goal by its number (liaison/stores/tasks.py `Draft.goal`).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from liaison.stores.base import Store
from liaison.stores.retention import Forget, Retention
from liaison.stores.trace import append_on
from policies.records import RECORDS

GOAL_STATES = {"en_cours": "en cours", "atteint": "atteint", "abandonne": "abandonné", "clos": "clos"}
MAX_GOAL = 1000    # characters of a goal
MAX_WORDS = 2000   # characters of the patient's words
_RULES = {"objectif": "plan.goal_added", "atteint": "plan.goal_reached", "abandonne": "plan.goal_abandoned",
          "referent": "plan.referent", "mots": "plan.words", "clos": "plan.closed"}


@dataclass(frozen=True)
class Goal:
    id: str
    pathway_id: str
    number: int
    text: str
    state: str                 # en_cours | atteint | abandonne | clos
    created_by: str
    created_at: int
    reached_at: int | None     # UTC ms, when it was reached
    updated_at: int

    @property
    def open(self) -> bool:
        return self.state == "en_cours"


@dataclass(frozen=True)
class Plan:
    pathway_id: str
    referent: str | None       # the account that coordinates the plan
    words: str | None          # « ce qui compte pour moi », as typed
    version: int               # 0: nothing written yet
    updated_by: str | None
    updated_at: int | None
    closed_at: int | None      # closed with its pathway
    goals: tuple[Goal, ...]

    @property
    def empty(self) -> bool:
        return self.version == 0


@dataclass(frozen=True)
class Version:
    version: int
    at: int
    actor: str
    what: str                  # objectif | atteint | abandonne | referent | mots | clos
    goal: int | None
    detail: str | None


def _goal(r: Any) -> Goal:
    return Goal(r.id, r.pathway_id, r.number, r.text, r.state, r.created_by, r.created_at, r.reached_at, r.updated_at)


class CarePlanStore(Store):
    RETENTION = Retention(forget=(Forget("care_plan_post"), Forget("care_plan_version"), Forget("care_goal"),
                                  Forget("care_plan")))

    async def plan(self, pathway_id: str) -> Plan:
        """The pathway's plan now (an empty plan, version 0, when nothing was written)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM care_plan WHERE pathway_id = :p"),
                                      {"p": pathway_id})).first()
            goals = (await conn.execute(text("SELECT * FROM care_goal WHERE pathway_id = :p ORDER BY number"),
                                        {"p": pathway_id})).all()
        if row is None:
            return Plan(pathway_id, None, None, 0, None, None, None, tuple(_goal(g) for g in goals))
        return Plan(pathway_id, row.referent, row.words, row.version, row.updated_by, row.updated_at, row.closed_at,
                    tuple(_goal(g) for g in goals))

    async def goal(self, pathway_id: str, number: int) -> Goal | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM care_goal WHERE pathway_id = :p AND number = :n"),
                                      {"p": pathway_id, "n": number})).first()
        return _goal(row) if row else None

    async def versions(self, pathway_id: str) -> list[Version]:
        """Every version of the plan, the first first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT version, at, actor, what, goal, detail FROM care_plan_version WHERE pathway_id = :p "
                "ORDER BY version"), {"p": pathway_id})).all()
        return [Version(r.version, r.at, r.actor, r.what, r.goal, r.detail) for r in rows]

    # -- changes: each one version, one trace entry, in one transaction ---------------------------------------------

    async def add_goal(self, pathway_id: str, text_: str, actor: str) -> tuple[Goal, int]:
        """A new goal with the pathway's next number, and its trace entry's number."""
        if not text_.strip() or len(text_) > MAX_GOAL:
            raise ValueError(f"a goal's text is 1 to {MAX_GOAL} characters")
        for _attempt in range(20):   # two writers may read the same maximum: UNIQUE (pathway_id, number) decides
            try:
                async with self.engine.begin() as conn:
                    at = self.clock.now_ms()
                    number: int = (await conn.execute(text(
                        "SELECT COALESCE(MAX(number), 0) + 1 FROM care_goal WHERE pathway_id = :p"),
                        {"p": pathway_id})).scalar_one()
                    gid = uuid.uuid4().hex
                    await conn.execute(text(
                        "INSERT INTO care_goal (id, pathway_id, number, text, state, created_by, created_at, "
                        "updated_at) VALUES (:id, :p, :n, :t, 'en_cours', :by, :at, :at)"),
                        {"id": gid, "p": pathway_id, "n": number, "t": text_, "by": actor, "at": at})
                    ref = await self._version(conn, pathway_id, actor, "objectif", at, goal=number, detail=text_)
                    row = (await conn.execute(text("SELECT * FROM care_goal WHERE id = :g"), {"g": gid})).one()
                    return _goal(row), ref
            except IntegrityError:
                continue
        raise RuntimeError("care_goal: no free number after 20 attempts")

    async def reach(self, goal: Goal, actor: str) -> tuple[Goal, int] | None:
        """The goal reached (None: it was no longer « en cours »)."""
        return await self._goal_state(goal, actor, "atteint")

    async def abandon(self, goal: Goal, actor: str) -> tuple[Goal, int] | None:
        return await self._goal_state(goal, actor, "abandonne")

    async def set_referent(self, pathway_id: str, referent: str, actor: str) -> int:
        """The plan's referent (an account); the trace entry's number."""
        return await self._plan_change(pathway_id, actor, "referent", {"referent": referent}, detail=referent)

    async def set_words(self, pathway_id: str, words: str, actor: str) -> int:
        """The patient's own words, as typed; the trace entry's number."""
        if not words.strip() or len(words) > MAX_WORDS:
            raise ValueError(f"the patient's words are 1 to {MAX_WORDS} characters")
        return await self._plan_change(pathway_id, actor, "mots", {"words": words}, detail=words)

    async def close(self, pathway_id: str, actor: str) -> list[int] | None:
        """The pathway closed: its goals still « en cours » become « clos » and the plan is closed; the numbers of
        the goals closed (None: the plan has nothing, or was closed already: nothing written)."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(text("SELECT closed_at FROM care_plan WHERE pathway_id = :p"),
                                      {"p": pathway_id})).first()
            if row is None or row.closed_at is not None:
                return None
            at = self.clock.now_ms()
            open_: list[int] = list((await conn.execute(text(
                "SELECT number FROM care_goal WHERE pathway_id = :p AND state = 'en_cours' ORDER BY number"),
                {"p": pathway_id})).scalars())
            await conn.execute(text("UPDATE care_goal SET state = 'clos', updated_at = :at WHERE pathway_id = :p "
                                    "AND state = 'en_cours'"), {"p": pathway_id, "at": at})
            await conn.execute(text("UPDATE care_plan SET closed_at = :at WHERE pathway_id = :p"),
                               {"p": pathway_id, "at": at})
            await self._version(conn, pathway_id, actor, "clos", at, detail=",".join(map(str, open_)) or None)
            return open_

    async def reopen(self, pathway_id: str) -> None:
        """The pathway reopened: the plan takes changes again (its closed goals stay closed)."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE care_plan SET closed_at = NULL WHERE pathway_id = :p"), {"p": pathway_id})

    async def _goal_state(self, goal: Goal, actor: str, state: str) -> tuple[Goal, int] | None:
        async with self.engine.begin() as conn:
            at = self.clock.now_ms()
            changed = await conn.execute(text(
                "UPDATE care_goal SET state = :s, updated_at = :at, reached_at = :r WHERE id = :g "
                "AND state = 'en_cours'"), {"s": state, "at": at, "r": at if state == "atteint" else None, "g": goal.id})
            if not changed.rowcount:
                return None
            ref = await self._version(conn, goal.pathway_id, actor, state, at, goal=goal.number)
            row = (await conn.execute(text("SELECT * FROM care_goal WHERE id = :g"), {"g": goal.id})).one()
            return _goal(row), ref

    async def _plan_change(self, pathway_id: str, actor: str, what: str, sets: dict[str, Any],
                           detail: str | None) -> int:
        async with self.engine.begin() as conn:
            at = self.clock.now_ms()
            await self._ensure(conn, pathway_id)
            assignments = ", ".join(f"{column} = :set_{column}" for column in sets)
            await conn.execute(text(f"UPDATE care_plan SET {assignments} WHERE pathway_id = :p"),
                               {**{f"set_{c}": v for c, v in sets.items()}, "p": pathway_id})
            return await self._version(conn, pathway_id, actor, what, at, detail=detail)

    @staticmethod
    async def _ensure(conn: AsyncConnection, pathway_id: str) -> None:
        await conn.execute(text("INSERT INTO care_plan (pathway_id, version) VALUES (:p, 0) "
                                "ON CONFLICT (pathway_id) DO NOTHING"), {"p": pathway_id})

    async def _version(self, conn: AsyncConnection, pathway_id: str, actor: str, what: str, at: int, *,
                       goal: int | None = None, detail: str | None = None) -> int:
        """The plan's next version row, then the trace entry (last: appending takes the trace's lock); its number."""
        await self._ensure(conn, pathway_id)
        await conn.execute(text(
            "UPDATE care_plan SET version = version + 1, updated_by = :a, updated_at = :at WHERE pathway_id = :p"),
            {"p": pathway_id, "a": actor, "at": at})
        version: int = (await conn.execute(text("SELECT version FROM care_plan WHERE pathway_id = :p"),
                                      {"p": pathway_id})).scalar_one()
        await conn.execute(text(
            "INSERT INTO care_plan_version (pathway_id, version, at, actor, what, goal, detail) "
            "VALUES (:p, :v, :at, :a, :w, :g, :d)"),
            {"p": pathway_id, "v": version, "at": at, "a": actor, "w": what, "g": goal, "d": detail})
        patient = (await conn.execute(text("SELECT patient_id FROM pathway WHERE id = :p"),
                                      {"p": pathway_id})).scalar()
        record = RECORDS[_RULES[what]]
        subject = f"objectif n° {goal}" if goal is not None else f"plan de coordination, version {version}"
        return await append_on(conn, at=at, actor=actor, action=record.action, subject=subject,
                               decision=record.decision, patient_id=patient, pathway_id=pathway_id,
                               data_category="soins")

    # -- the pinned plan (bot/care_plan_post.py) -------------------------------------------------------------------

    async def post(self, pathway_id: str) -> tuple[str, int, str] | None:
        """The pinned plan's event, the version it shows and the digest of the tasks it shows."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT event_id, version, tasks FROM care_plan_post WHERE pathway_id = :p"), {"p": pathway_id})).first()
        return (row.event_id, row.version, row.tasks) if row else None

    async def posted(self, pathway_id: str, event_id: str, version: int, tasks: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO care_plan_post (pathway_id, event_id, version, tasks, updated_at) "
                "VALUES (:p, :e, :v, :t, :at) ON CONFLICT (pathway_id) DO UPDATE SET event_id = excluded.event_id, "
                "version = excluded.version, tasks = excluded.tasks, updated_at = excluded.updated_at"),
                {"p": pathway_id, "e": event_id, "v": version, "t": tasks, "at": self.clock.now_ms()})

    async def posts_behind(self) -> list[str]:
        """The open pathways whose pinned plan (or lack of one) does not show the plan's last version."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT c.pathway_id FROM care_plan c JOIN pathway ON pathway.id = c.pathway_id "
                "AND pathway.status = 'open' LEFT JOIN care_plan_post p ON p.pathway_id = c.pathway_id "
                "WHERE c.version > 0 AND (p.version IS NULL OR p.version <> c.version)"))).all()
        return [r.pathway_id for r in rows]
