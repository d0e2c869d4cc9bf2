"""Patients, pathways, their members and summaries, in the database."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, text

from liaison.db import fields
from liaison.stores import facts
from liaison.stores.facts import Altered
from liaison.stores.retention import Forget, Retention
from liaison.stores.base import Store

SUMMARY_FIELDS = {
    "problemes": "Problèmes",
    "traitements": "Traitements",
    "entourage": "Entourage",
    "contacts": "Contacts habituels",
}


@dataclass(frozen=True)
class Patient:
    id: str
    ins: str
    ins_oid: str
    birth_name: str
    first_names: str
    birth_date: date
    sex: str
    space_id: str | None


@dataclass(frozen=True)
class Pathway:
    id: str
    code: str
    patient_id: str
    type: str
    status: str
    room_id: str | None
    summary_event_id: str | None
    opened_by: str
    opened_at: int
    closed_by: str | None
    closed_at: int | None
    close_reason: str | None
    retention_until: int | None
    circle_room_id: str | None = None


_PATHWAY_COLUMNS = ("id, code, patient_id, type, status, room_id, summary_event_id, opened_by, opened_at, "
                    "closed_by, closed_at, close_reason, retention_until, circle_room_id")


class PathwayStore(Store):
    RETENTION = Retention(
        forget=(Forget("pathway_summary"), Forget("pathway_summary_reader"),
                Forget("pathway", key="id", blank=("summary_event_id",))),
        kept={"patient": "the patient's identity: other pathways, consents and the trace name it",
              "patient_team": "the patient's usual team of care, for the next pathways",
              "pathway": "the pathway's own row (code, type, dates, status archived): the trace points to it",
              "pathway_member": "who the room was for and when they left: the record of who could read it"})

    # -- patients -----------------------------------------------------------

    async def patient_by_ins(self, ins: str) -> Patient | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM patient WHERE ins = :i"), {"i": ins})).first()
        return _patient(row) if row else None

    async def patient(self, patient_id: str) -> Patient:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM patient WHERE id = :i"), {"i": patient_id})).one()
        return _patient(row)

    async def add_patient(self, *, ins: str, oid: str, birth_name: str, first_names: str, birth_date: date,
                          sex: str, actor: str) -> Patient:
        pid = uuid.uuid4().hex
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO patient (id, ins, ins_oid, birth_name, first_names, birth_date, sex, created_by, "
                "created_at) VALUES (:id, :ins, :oid, :bn, :fn, :bd, :sex, :by, :at)"),
                {"id": pid, "ins": ins, "oid": oid, "bn": birth_name, "fn": first_names,
                 "bd": birth_date.isoformat(), "sex": sex, "by": actor, "at": self.clock.now_ms()})
        return await self.patient(pid)

    async def set_space(self, patient_id: str, space_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE patient SET space_id = :s WHERE id = :i"), {"s": space_id, "i": patient_id})

    async def usual_team(self, patient_id: str) -> list[str]:
        return (await self.checked_usual_team(patient_id))[0]

    async def checked_usual_team(self, patient_id: str) -> tuple[list[str], list[Altered]]:
        """The patient's usual team of care, each member checked against the trace (liaison/stores/facts.py): one
        it does not vouch for (written in the database) is left out, and named."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM patient_team WHERE patient_id = :p ORDER BY user_id"),
                                       {"p": patient_id})).all()
            altered = await facts.check(conn, "patient_team", rows, patient_id=patient_id)
        bad = facts.altered_ids(altered)
        return [r.user_id for r in rows if f"{patient_id} {r.user_id}" not in bad], altered

    async def checked_usual_teams(self, patient_ids: Iterable[str]) -> dict[str, tuple[list[str], list[Altered]]]:
        """`checked_usual_team` of several patients, read at once (a batch of decisions)."""
        patients = sorted(set(patient_ids))
        if not patients:
            return {}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT * FROM patient_team WHERE patient_id IN :ps ORDER BY user_id").bindparams(
                    bindparam("ps", expanding=True)), {"ps": patients})).all()
            altered = await facts.check_patients(conn, "patient_team", rows, patients)
        teams = {}
        for p in patients:
            bad = facts.altered_ids(altered[p])
            teams[p] = [r.user_id for r in rows if r.patient_id == p and f"{p} {r.user_id}" not in bad], altered[p]
        return teams

    async def set_usual_team(self, patient_id: str, user_ids: list[str], *, actor: str) -> None:
        """The patient's usual team becomes `user_ids`; each member who joins or leaves it, with its trace entry."""
        at, wanted = self.clock.now_ms(), set(user_ids)
        async with self.engine.begin() as conn:
            present = {r.user_id for r in await conn.execute(text(
                "SELECT user_id FROM patient_team WHERE patient_id = :p"), {"p": patient_id})}
            leaving, joining = sorted(present - wanted), sorted(wanted - present)
            for u in leaving:
                await conn.execute(text("DELETE FROM patient_team WHERE patient_id = :p AND user_id = :u"),
                                   {"p": patient_id, "u": u})
            for u in joining:
                await conn.execute(text("INSERT INTO patient_team (patient_id, user_id) VALUES (:p, :u)"),
                                   {"p": patient_id, "u": u})
            # The entries last: appending takes the trace's lock, after which no row lock is waited for.
            for u in leaving:
                await facts.record(conn, "patient_team", [patient_id, u], at=at, actor=actor,
                                   rule="usual_team.removed", subject=u, patient_id=patient_id)
            for u in joining:
                await facts.record(conn, "patient_team", [patient_id, u], at=at, actor=actor,
                                   rule="usual_team.added")

    # -- pathways -----------------------------------------------------------

    async def in_progress(self, patient_id: str, type_key: str) -> Pathway | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(
                f"SELECT {_PATHWAY_COLUMNS} FROM pathway WHERE patient_id = :p AND type = :t "
                "AND status IN ('creating', 'open')"), {"p": patient_id, "t": type_key})).first()
        return Pathway(*fields(row)) if row else None

    async def add_pathway(self, *, patient_id: str, type_key: str, code: str, actor: str) -> Pathway:
        pid, at = uuid.uuid4().hex, self.clock.now_ms()
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO pathway (id, code, patient_id, type, status, opened_by, opened_at, last_activity_at) "
                "VALUES (:id, :c, :p, :t, 'creating', :by, :at, :at)"),
                {"id": pid, "c": code, "p": patient_id, "t": type_key, "by": actor, "at": at})
        return await self.pathway(pid)

    async def pathway(self, pathway_id: str) -> Pathway:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_PATHWAY_COLUMNS} FROM pathway WHERE id = :i"),
                                      {"i": pathway_id})).one()
        return Pathway(*fields(row))

    async def pathways(self, pathway_ids: Iterable[str]) -> dict[str, Pathway]:
        """Several pathways by id, read at once."""
        ids = sorted(set(pathway_ids))
        if not ids:
            return {}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT {_PATHWAY_COLUMNS} FROM pathway WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True)), {"ids": ids})).all()
        found = [Pathway(*fields(r)) for r in rows]
        return {p.id: p for p in found}

    async def by_room(self, room_id: str) -> Pathway | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_PATHWAY_COLUMNS} FROM pathway WHERE room_id = :r OR circle_room_id = :r"),
                                      {"r": room_id})).first()
        return Pathway(*fields(row)) if row else None

    async def by_code(self, code: str) -> Pathway | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {_PATHWAY_COLUMNS} FROM pathway WHERE code = :c"),
                                      {"c": code.upper()})).first()
        return Pathway(*fields(row)) if row else None

    async def open_for_patient(self, patient_id: str) -> list[Pathway]:
        """The patient's open pathways, most recently active first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT {_PATHWAY_COLUMNS} FROM pathway WHERE patient_id = :p AND "
                                            "status = 'open' ORDER BY last_activity_at DESC"),
                                       {"p": patient_id})).all()
        return [Pathway(*fields(r)) for r in rows]

    async def of_patient(self, patient_id: str) -> list[Pathway]:
        """Every pathway of the patient, whatever its state."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT {_PATHWAY_COLUMNS} FROM pathway WHERE patient_id = :p "
                                            "ORDER BY opened_at"), {"p": patient_id})).all()
        return [Pathway(*fields(r)) for r in rows]

    async def touch(self, pathway_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE pathway SET last_activity_at = :t WHERE id = :i"),
                               {"t": self.clock.now_ms(), "i": pathway_id})

    async def past_retention(self, now: int) -> list[str]:
        """The closed pathways whose retention ended at `now` (ms): to archive."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT id FROM pathway WHERE status = 'closed' AND retention_until <= :now"),
                                      {"now": now})
            return [r.id for r in rows]

    async def open_rooms(self) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT room_id FROM pathway WHERE status = 'open' AND room_id IS NOT NULL"))
            return [r.room_id for r in rows]

    async def visible_to(self, user_id: str, everything: bool) -> list[tuple[Pathway, Patient]]:
        """Open and closed pathways the person is a member of (all of them for the coordination)."""
        query = (f"SELECT {_PATHWAY_COLUMNS} FROM pathway WHERE status IN ('open', 'closed') "
                 + ("" if everything else "AND id IN (SELECT pathway_id FROM pathway_member "
                                          "WHERE user_id = :u AND state IN ('invited', 'joined')) ")
                 + "ORDER BY last_activity_at DESC")
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(query), {"u": user_id})).all()
        return [(Pathway(*fields(r)), await self.patient(r.patient_id)) for r in rows]

    async def update(self, pathway_id: str, **values) -> None:
        allowed = {"status", "room_id", "summary_event_id", "closed_by", "closed_at", "close_reason",
                   "retention_until", "circle_room_id"}
        if not set(values) <= allowed:
            raise ValueError(f"not pathway columns: {set(values) - allowed}")
        sets = ", ".join(f"{k} = :{k}" for k in values)
        async with self.engine.begin() as conn:
            await conn.execute(text(f"UPDATE pathway SET {sets}, last_activity_at = :now WHERE id = :id"),
                               {**values, "now": self.clock.now_ms(), "id": pathway_id})

    # -- members and summary --------------------------------------------

    async def set_member(self, pathway_id: str, user_id: str, state: str, rule: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("DELETE FROM pathway_member WHERE pathway_id = :p AND user_id = :u"),
                               {"p": pathway_id, "u": user_id})
            await conn.execute(text(
                "INSERT INTO pathway_member (pathway_id, user_id, state, rule, at) VALUES (:p, :u, :s, :r, :t)"),
                {"p": pathway_id, "u": user_id, "s": state, "r": rule, "t": self.clock.now_ms()})

    async def members(self, pathway_id: str) -> list[tuple[str, str, str]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT user_id, state, rule FROM pathway_member WHERE pathway_id = :p ORDER BY user_id"),
                {"p": pathway_id})
            return [(r.user_id, r.state, r.rule) for r in rows]

    async def members_of(self, pathway_ids: Iterable[str]) -> dict[str, list[tuple[str, str, str]]]:
        """`members` of several pathways, read at once."""
        ids = sorted(set(pathway_ids))
        found: dict[str, list[tuple[str, str, str]]] = {i: [] for i in ids}
        if ids:
            async with self.engine.connect() as conn:
                rows = await conn.execute(text(
                    "SELECT pathway_id, user_id, state, rule FROM pathway_member WHERE pathway_id IN :ids "
                    "ORDER BY user_id").bindparams(bindparam("ids", expanding=True)), {"ids": ids})
                for r in rows:
                    found[r.pathway_id].append((r.user_id, r.state, r.rule))
        return found

    async def members_since(self, pathway_id: str) -> list[tuple[str, str, int]]:
        """Each member's account, state, and when it came to that state (ms)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT user_id, state, at FROM pathway_member WHERE pathway_id = :p ORDER BY user_id"),
                {"p": pathway_id})
            return [(r.user_id, r.state, r.at) for r in rows]

    async def summary(self, pathway_id: str) -> dict[str, tuple[str, int]]:
        """The latest value of each field, with its version."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT field, value, version FROM pathway_summary s WHERE pathway_id = :p AND version = "
                "(SELECT MAX(version) FROM pathway_summary WHERE pathway_id = s.pathway_id AND field = s.field)"),
                {"p": pathway_id})
            return {r.field: (r.value, r.version) for r in rows}

    async def summary_posted(self, pathway_id: str, event_id: str, readers: frozenset[tuple[str, str]]) -> None:
        """The summary now pinned, and the devices (user, device) that hold its room key."""
        async with self.engine.begin() as conn:
            await conn.execute(text("UPDATE pathway SET summary_event_id = :e WHERE id = :i"),
                               {"e": event_id, "i": pathway_id})
            await conn.execute(text("DELETE FROM pathway_summary_reader WHERE pathway_id = :p"), {"p": pathway_id})
            for user_id, device_id in sorted(readers):
                await conn.execute(text("INSERT INTO pathway_summary_reader (pathway_id, user_id, device_id) "
                                        "VALUES (:p, :u, :d)"), {"p": pathway_id, "u": user_id, "d": device_id})

    async def summary_readers(self, pathway_id: str) -> set[tuple[str, str]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT user_id, device_id FROM pathway_summary_reader "
                                           "WHERE pathway_id = :p"), {"p": pathway_id})
            return {(r.user_id, r.device_id) for r in rows}

    async def set_summary(self, pathway_id: str, field: str, value: str, author: str) -> int:
        async with self.engine.begin() as conn:
            current = (await conn.execute(text(
                "SELECT MAX(version) FROM pathway_summary WHERE pathway_id = :p AND field = :f"),
                {"p": pathway_id, "f": field})).scalar() or 0
            await conn.execute(text(
                "INSERT INTO pathway_summary (pathway_id, field, version, value, author, at) "
                "VALUES (:p, :f, :v, :val, :a, :t)"),
                {"p": pathway_id, "f": field, "v": current + 1, "val": value, "a": author, "t": self.clock.now_ms()})
        return current + 1


def _patient(row) -> Patient:
    return Patient(row.id, row.ins, row.ins_oid, row.birth_name, row.first_names,
                   date.fromisoformat(row.birth_date), row.sex, row.space_id)
