"""RCP meetings (`!rcp`): planned in the coordination's room, cases enrolled from the patients' rooms, participants of
the team or outside it, decisions that are tasks, minutes per case.

A meeting (`rcp`) holds no patient data: its moment, place or link, title and state. Its cases (`rcp_item`: a
pathway and a question as typed) and decisions (`rcp_decision`: the task each created) are forgotten with their
pathway. Every change is one transaction with its trace entry; a change of what the agenda says raises
`agenda_version`, so the agenda goes out again (bot/rcp_agenda.py).
"""
from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from liaison.stores.base import Store
from liaison.stores.retention import Forget, Retention
from liaison.stores.tasks import Draft, Task, TaskStore
from liaison.stores.trace import append_on
from policies.naming import CODE_ALPHABET
from policies.records import RECORDS

STATES = {"prevue": "prévue", "ouverte": "ouverte", "close": "close", "annulee": "annulée"}
MAX_QUESTION = 2000
MAX_FIELD = 300


@dataclass(frozen=True)
class Rcp:
    id: str
    code: str
    starts_at: int
    place: str | None
    title: str | None
    state: str
    created_by: str
    opened_at: int | None
    closed_at: int | None
    agenda_version: int
    agenda_sent: int


@dataclass(frozen=True)
class Item:
    id: str
    rcp_id: str
    pathway_id: str
    number: int
    question: str
    enrolled_by: str
    minutes_event: str | None


@dataclass(frozen=True)
class Participant:
    address: str
    present_at: int | None

    @property
    def external(self) -> bool:
        return not self.address.startswith("@")


@dataclass(frozen=True)
class Decision:
    number: int
    item_id: str
    pathway_id: str
    task_id: str
    created_by: str
    created_at: int


@dataclass(frozen=True)
class RcpMail:
    """A mail for an external participant, waiting for the bridge (see the migration 0023)."""
    id: str
    rcp_id: str
    kind: str
    address: str
    pathway_id: str | None
    room_id: str | None
    event_id: str | None
    sender: str
    subject: str
    body: str
    ics: str | None


class Enrolled(Exception):
    """The pathway is already on that meeting's agenda."""


def rcp_code(entropy: bytes) -> str:
    number = int.from_bytes(entropy, "big")
    chars = []
    for _ in range(5):
        number, index = divmod(number, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[index])
    return "R-" + "".join(chars)


def _rcp(r: Any) -> Rcp:
    return Rcp(r.id, r.code, r.starts_at, r.place, r.title, r.state, r.created_by, r.opened_at, r.closed_at,
               r.agenda_version, r.agenda_sent)


def _item(r: Any) -> Item:
    return Item(r.id, r.rcp_id, r.pathway_id, r.number, r.question, r.enrolled_by, r.minutes_event)


class RcpStore(Store):
    RETENTION = Retention(
        forget=(Forget("rcp_mail"), Forget("rcp_decision"), Forget("rcp_item")),
        no_patient_data={"rcp": "a meeting's moment, place, title and state", "rcp_participant":
                         "who takes part in a meeting (accounts and addresses of professionals)",
                         "rcp_sent": "which agenda version or minutes went to which room or address"})

    # -- meetings -------------------------------------------------------------------------------------------------

    async def plan(self, starts_at: int, place: str | None, title: str | None, actor: str) -> Rcp:
        for _attempt in range(20):
            try:
                async with self.engine.begin() as conn:
                    at, rid = self.clock.now_ms(), uuid.uuid4().hex
                    await conn.execute(text(
                        "INSERT INTO rcp (id, code, starts_at, place, title, created_by, created_at, updated_at) "
                        "VALUES (:id, :code, :s, :pl, :t, :by, :at, :at)"),
                        {"id": rid, "code": rcp_code(secrets.token_bytes(8)), "s": starts_at, "pl": place,
                         "t": title, "by": actor, "at": at})
                    rcp = await self._get(conn, rid)
                    await self._trace(conn, "rcp.planned", actor, at, f"RCP {rcp.code}")
                    return rcp
            except IntegrityError:   # the same code drawn twice
                continue
        raise RuntimeError("rcp: no free code after 20 attempts")

    async def by_code(self, code: str) -> Rcp | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM rcp WHERE code = :c"), {"c": code.strip().upper()})).first()
        return _rcp(row) if row else None

    async def get(self, rcp_id: str) -> Rcp:
        async with self.engine.connect() as conn:
            return await self._get(conn, rcp_id)

    async def coming(self, now_ms: int) -> list[Rcp]:
        """The meetings planned or open, the nearest first (an open one even when its hour has passed)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT * FROM rcp WHERE state = 'ouverte' OR (state = 'prevue' AND starts_at >= :now) "
                "ORDER BY starts_at"), {"now": now_ms})).all()
        return [_rcp(r) for r in rows]

    async def planned(self) -> list[Rcp]:
        """Every meeting still planned, whatever its moment (the agenda loop reads them)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM rcp WHERE state = 'prevue' ORDER BY starts_at"))).all()
        return [_rcp(r) for r in rows]

    async def unpublished(self) -> list[Rcp]:
        """The meetings closed whose minutes did not all go out (a crash in the middle of `!rcp clore`)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT * FROM rcp WHERE state = 'close' AND NOT EXISTS (SELECT 1 FROM rcp_sent s WHERE "
                "s.rcp_id = rcp.id AND s.what = 'minutes' AND s.recipient = '*') ORDER BY closed_at"))).all()
        return [_rcp(r) for r in rows]

    async def cancel(self, rcp: Rcp, actor: str) -> Rcp | None:
        return await self._set(rcp, actor, "rcp.cancelled", {"state": "annulee"}, "state = 'prevue'")

    async def move(self, rcp: Rcp, actor: str, starts_at: int) -> Rcp | None:
        return await self._set(rcp, actor, "rcp.changed", {"starts_at": starts_at}, "state = 'prevue'", agenda=True)

    async def open(self, rcp: Rcp, actor: str) -> Rcp | None:
        return await self._set(rcp, actor, "rcp.opened", {"state": "ouverte", "opened_at": self.clock.now_ms()},
                               "state = 'prevue'")

    async def close(self, rcp: Rcp, actor: str) -> Rcp | None:
        return await self._set(rcp, actor, "rcp.closed", {"state": "close", "closed_at": self.clock.now_ms()},
                               "state = 'ouverte'")

    async def agenda_sent(self, rcp: Rcp, version: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE rcp SET agenda_sent = :v WHERE id = :id AND agenda_sent < :v"),
                               {"v": version, "id": rcp.id})

    # -- cases ----------------------------------------------------------------------------------------------------

    async def enrol(self, rcp: Rcp, pathway_id: str, question: str, actor: str) -> tuple[Item, int]:
        """The case on the agenda, last, with its trace entry's number; Enrolled when it already is."""
        if not question.strip() or len(question) > MAX_QUESTION:
            raise ValueError(f"a question is 1 to {MAX_QUESTION} characters")
        for _attempt in range(20):
            try:
                async with self.engine.begin() as conn:
                    at, iid = self.clock.now_ms(), uuid.uuid4().hex
                    if (await conn.execute(text("SELECT 1 FROM rcp_item WHERE rcp_id = :r AND pathway_id = :p"),
                                           {"r": rcp.id, "p": pathway_id})).first():
                        raise Enrolled(pathway_id)
                    await conn.execute(text(
                        "INSERT INTO rcp_item (id, rcp_id, pathway_id, number, question, enrolled_by, enrolled_at) "
                        "VALUES (:id, :r, :p, (SELECT COALESCE(MAX(number), 0) + 1 FROM rcp_item WHERE rcp_id = :r), "
                        ":q, :by, :at)"), {"id": iid, "r": rcp.id, "p": pathway_id, "q": question, "by": actor,
                                           "at": at})
                    await self._bump(conn, rcp.id, at)
                    item = _item((await conn.execute(text("SELECT * FROM rcp_item WHERE id = :i"), {"i": iid})).one())
                    ref = await self._trace(conn, "rcp.enrolled", actor, at, f"RCP {rcp.code}, cas n° {item.number}",
                                            pathway_id=pathway_id)
                    return item, ref
            except IntegrityError:
                continue
        raise RuntimeError("rcp_item: no free number after 20 attempts")

    async def items(self, rcp_id: str) -> list[Item]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM rcp_item WHERE rcp_id = :r ORDER BY number"),
                                       {"r": rcp_id})).all()
        return [_item(r) for r in rows]

    async def item_of(self, rcp_id: str, pathway_id: str) -> Item | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM rcp_item WHERE rcp_id = :r AND pathway_id = :p"),
                                      {"r": rcp_id, "p": pathway_id})).first()
        return _item(row) if row else None

    async def items_of_pathway(self, pathway_id: str) -> list[tuple[Rcp, Item]]:
        """The pathway's cases in every meeting, the earliest first (the archive, the FHIR export)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT i.*, r.code, r.starts_at, r.place, r.title, r.state, r.created_by, r.opened_at, r.closed_at, "
                "r.agenda_version, r.agenda_sent FROM rcp_item i JOIN rcp r ON r.id = i.rcp_id "
                "WHERE i.pathway_id = :p ORDER BY r.starts_at"), {"p": pathway_id})).all()
        return [(Rcp(r.rcp_id, r.code, r.starts_at, r.place, r.title, r.state, r.created_by, r.opened_at,
                     r.closed_at, r.agenda_version, r.agenda_sent), _item(r)) for r in rows]

    async def minutes_posted(self, item: Item, event_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE rcp_item SET minutes_event = :e WHERE id = :i"),
                               {"e": event_id, "i": item.id})

    # -- participants ---------------------------------------------------------------------------------------------

    async def add_participants(self, rcp: Rcp, addresses: Sequence[str], actor: str) -> list[str]:
        """The addresses added (those already there are not added twice)."""
        added = []
        async with self.engine.begin() as conn:
            at = self.clock.now_ms()
            for address in dict.fromkeys(addresses):
                exists = (await conn.execute(text(
                    "SELECT 1 FROM rcp_participant WHERE rcp_id = :r AND address = :a"),
                    {"r": rcp.id, "a": address})).first()
                if exists:
                    continue
                await conn.execute(text(
                    "INSERT INTO rcp_participant (rcp_id, address, added_by, added_at) VALUES (:r, :a, :by, :at)"),
                    {"r": rcp.id, "a": address, "by": actor, "at": at})
                added.append(address)
            if added:
                await self._bump(conn, rcp.id, at)
                await self._trace(conn, "rcp.changed", actor, at, f"RCP {rcp.code}, {len(added)} participant(s)")
        return added

    async def participants(self, rcp_id: str) -> list[Participant]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT address, present_at FROM rcp_participant WHERE rcp_id = :r ORDER BY added_at, address"),
                {"r": rcp_id})).all()
        return [Participant(r.address, r.present_at) for r in rows]

    async def present(self, rcp: Rcp, addresses: Sequence[str], actor: str) -> list[str]:
        """Marked present (added as participants when they were not); the addresses marked now."""
        marked = []
        async with self.engine.begin() as conn:
            at = self.clock.now_ms()
            for address in dict.fromkeys(addresses):
                row = (await conn.execute(text(
                    "SELECT present_at FROM rcp_participant WHERE rcp_id = :r AND address = :a"),
                    {"r": rcp.id, "a": address})).first()
                if row is None:
                    await conn.execute(text(
                        "INSERT INTO rcp_participant (rcp_id, address, added_by, added_at, present_at) "
                        "VALUES (:r, :a, :by, :at, :at)"), {"r": rcp.id, "a": address, "by": actor, "at": at})
                elif row.present_at is None:
                    await conn.execute(text(
                        "UPDATE rcp_participant SET present_at = :at WHERE rcp_id = :r AND address = :a"),
                        {"r": rcp.id, "a": address, "at": at})
                else:
                    continue
                marked.append(address)
        return marked

    # -- decisions ------------------------------------------------------------------------------------------------

    async def record_decision(self, rcp: Rcp, item: Item, draft: Draft, tasks: TaskStore,
                     actor: str) -> tuple[Decision, Task, int]:
        """The decision and the task that follows it up, in one transaction (TaskStore.create_many's): the decision,
        its task and the task's trace entry number."""
        made: list[Decision] = []

        async def link(conn: AsyncConnection, task: Task) -> None:
            at = self.clock.now_ms()
            number: int = (await conn.execute(text(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM rcp_decision WHERE rcp_id = :r"), {"r": rcp.id})).scalar_one()
            await conn.execute(text(
                "INSERT INTO rcp_decision (id, rcp_id, item_id, pathway_id, number, task_id, created_by, created_at) "
                "VALUES (:id, :r, :i, :p, :n, :t, :by, :at)"),
                {"id": uuid.uuid4().hex, "r": rcp.id, "i": item.id, "p": item.pathway_id, "n": number,
                 "t": task.id, "by": actor, "at": at})
            await self._trace(conn, "rcp.decided", actor, at, f"RCP {rcp.code}, décision n° {number} (tâche n° "
                              f"{task.number})", pathway_id=item.pathway_id)
            made.append(Decision(number, item.id, item.pathway_id, task.id, actor, at))

        ((task, ref),) = await tasks.create_many(item.pathway_id, [draft], actor=actor, linked=link)
        return made[0], task, ref

    async def decisions(self, rcp_id: str) -> list[Decision]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT * FROM rcp_decision WHERE rcp_id = :r ORDER BY number"), {"r": rcp_id})).all()
        return [Decision(r.number, r.item_id, r.pathway_id, r.task_id, r.created_by, r.created_at) for r in rows]

    async def decisions_of_pathway(self, pathway_id: str) -> dict[str, tuple[Rcp, Decision]]:
        """The pathway's tasks that follow up an RCP decision: task id -> (the meeting, the decision)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT * FROM rcp_decision WHERE pathway_id = :p ORDER BY created_at"), {"p": pathway_id})).all()
            found = {}
            for r in rows:
                found[r.task_id] = (await self._get(conn, r.rcp_id), Decision(
                    r.number, r.item_id, r.pathway_id, r.task_id, r.created_by, r.created_at))
        return found

    async def decision_of_task(self, task_id: str) -> tuple[Rcp, Decision] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM rcp_decision WHERE task_id = :t"), {"t": task_id})).first()
            if row is None:
                return None
            rcp = await self._get(conn, row.rcp_id)
        return rcp, Decision(row.number, row.item_id, row.pathway_id, row.task_id, row.created_by, row.created_at)

    # -- what was sent --------------------------------------------------------------------------------------------

    async def was_sent(self, rcp_id: str, what: str, recipient: str) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(
                "SELECT 1 FROM rcp_sent WHERE rcp_id = :r AND what = :w AND recipient = :to"),
                {"r": rcp_id, "w": what, "to": recipient})).first() is not None

    async def sent(self, rcp_id: str, what: str, recipient: str) -> None:
        async with self.engine.begin() as conn:
            if not (await conn.execute(text(
                    "SELECT 1 FROM rcp_sent WHERE rcp_id = :r AND what = :w AND recipient = :to"),
                    {"r": rcp_id, "w": what, "to": recipient})).first():
                await conn.execute(text(
                    "INSERT INTO rcp_sent (rcp_id, what, recipient, sent_at) VALUES (:r, :w, :to, :at)"),
                    {"r": rcp_id, "w": what, "to": recipient, "at": self.clock.now_ms()})

    async def add_mail(self, m: RcpMail) -> bool:
        """Handed to the bridge once (its id is made of what it is and for whom: False when it already was)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO rcp_mail (id, rcp_id, kind, address, pathway_id, room_id, event_id, sender, subject, "
                    "body, ics, created_at) VALUES (:id, :r, :k, :a, :p, :room, :e, :s, :subj, :b, :ics, :at)"),
                    {"id": m.id, "r": m.rcp_id, "k": m.kind, "a": m.address, "p": m.pathway_id, "room": m.room_id,
                     "e": m.event_id, "s": m.sender, "subj": m.subject, "b": m.body, "ics": m.ics,
                     "at": self.clock.now_ms()})
            return True
        except IntegrityError:
            return False

    async def waiting_mail(self) -> list[RcpMail]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT * FROM rcp_mail WHERE state = 'waiting' ORDER BY created_at, id"))).all()
        return [RcpMail(r.id, r.rcp_id, r.kind, r.address, r.pathway_id, r.room_id, r.event_id, r.sender, r.subject,
                        r.body, r.ics) for r in rows]

    async def mail_done(self, mail_id: str, state: str) -> None:
        """Queued in the outbox, or refused: the text is dropped either way."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE rcp_mail SET state = :s, body = '', ics = NULL WHERE id = :id"),
                               {"s": state, "id": mail_id})

    # -- inside ---------------------------------------------------------------------------------------------------

    async def _get(self, conn: AsyncConnection, rcp_id: str) -> Rcp:
        return _rcp((await conn.execute(text("SELECT * FROM rcp WHERE id = :id"), {"id": rcp_id})).one())

    async def _bump(self, conn: AsyncConnection, rcp_id: str, at: int) -> None:
        await conn.execute(text("UPDATE rcp SET agenda_version = agenda_version + 1, updated_at = :at WHERE id = :id"),
                           {"at": at, "id": rcp_id})

    async def _set(self, rcp: Rcp, actor: str, rule: str, sets: dict[str, Any], condition: str,
                   agenda: bool = False) -> Rcp | None:
        at = self.clock.now_ms()
        assignments = ", ".join(f"{c} = :set_{c}" for c in sets)
        bump = ", agenda_version = agenda_version + 1" if agenda else ""
        async with self.engine.begin() as conn:
            changed = await conn.execute(text(
                f"UPDATE rcp SET {assignments}{bump}, updated_at = :at WHERE id = :id AND {condition}"),
                {**{f"set_{c}": v for c, v in sets.items()}, "at": at, "id": rcp.id})
            if not changed.rowcount:
                return None
            await self._trace(conn, rule, actor, at, f"RCP {rcp.code}")
            return await self._get(conn, rcp.id)

    async def _trace(self, conn: AsyncConnection, rule: str, actor: str, at: int, subject: str,
                     pathway_id: str | None = None) -> int:
        patient = None
        if pathway_id is not None:
            patient = (await conn.execute(text("SELECT patient_id FROM pathway WHERE id = :p"),
                                          {"p": pathway_id})).scalar()
        record = RECORDS[rule]
        return await append_on(conn, at=at, actor=actor, action=record.action, subject=subject,
                               decision=record.decision, patient_id=patient, pathway_id=pathway_id,
                               data_category="soins" if pathway_id else None)
