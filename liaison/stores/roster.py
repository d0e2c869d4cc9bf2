"""The structure's roster: who is on the team, with which profession; every change traced.

Each change is written with its trace entry (liaison/stores/facts.py); a member's row the trace does not vouch for as
it is (its profession or role changed in the database) reads as no member at all: unknown, no role.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from liaison.config import RosterEntry
from liaison.stores import facts
from liaison.stores.facts import Altered
from liaison.stores.retention import Retention
from liaison.clock import Clock
from liaison.stores.base import Store
from policies.professions import Profession, profession_of

CONFIG_ACTOR = "configuration"
_RULES = {"ajout": "roster.added", "retour": "roster.added", "modification": "roster.changed",
          "retrait": "roster.removed"}


@dataclass(frozen=True)
class RosterMember:
    user_id: str
    display_name: str
    profession: Profession
    professional_id: str
    structure: str
    coordinator: bool
    sex: str = ""   # « F », « M », or "" (unknown)

    @property
    def profession_label(self) -> str:
        """The profession in the member's gender (« Infirmière » for a woman)."""
        return self.profession.label_for(self.sex)

    @property
    def label(self) -> str:
        """« Nom (Profession) », the profession in the member's gender."""
        return f"{self.display_name} ({self.profession_label})"

    @property
    def roles(self) -> frozenset[str]:
        return frozenset({"member"} | ({"coordinator"} if self.coordinator else set()))


class Roster(Store):
    RETENTION = Retention(no_patient_data={"roster_member": "the structure's professionals",
                                           "roster_change": "who changed the roster, when"})

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        super().__init__(engine, clock)
        self._cache: dict[str, RosterMember] | None = None   # this process is the only writer

    async def load(self, entries: list[RosterEntry]) -> int:
        """Seed the roster from the configuration; members added by command are kept."""
        for e in entries:
            await self.upsert(e.user_id, e.name, profession_of(e.profession), actor=CONFIG_ACTOR,
                              professional_id=e.professional_id, structure=e.structure, coordinator=e.coordinator,
                              sex=e.sex)
        return len(entries)

    async def upsert(self, user_id: str, display_name: str, profession: Profession, *, actor: str,
                     professional_id: str = "", structure: str = "", coordinator: bool = False,
                     sex: str = "") -> bool:
        """Add or update a member; returns True when something changed (and was traced). `sex`: F, M or ""."""
        at = self.clock.now_ms()
        async with self.engine.begin() as conn:
            row = (await conn.execute(text(
                "SELECT display_name, profession, professional_id, structure, is_coordinator, sex, active "
                "FROM roster_member WHERE user_id = :u"), {"u": user_id})).first()
            values = {"u": user_id, "n": display_name, "p": profession.key, "id": professional_id or None,
                      "s": structure, "c": int(coordinator), "x": sex or None, "t": at}
            if row is None:
                action = "ajout"
                await conn.execute(text(
                    "INSERT INTO roster_member (user_id, display_name, profession, professional_id, structure, "
                    "is_coordinator, sex, active, updated_at) VALUES (:u, :n, :p, :id, :s, :c, :x, 1, :t)"), values)
            else:
                same = (row.display_name, row.profession, row.professional_id or None, row.structure,
                        row.is_coordinator, row.sex or None, row.active) == (
                    display_name, profession.key, professional_id or None, structure, int(coordinator), sex or None, 1)
                if same:
                    return False
                action = "modification" if row.active else "retour"
                await conn.execute(text(
                    "UPDATE roster_member SET display_name = :n, profession = :p, professional_id = :id, "
                    "structure = :s, is_coordinator = :c, sex = :x, active = 1, updated_at = :t WHERE user_id = :u"),
                    values)
            await self._trace(conn, user_id, action, profession.key, actor, at)
        self._cache = None
        return True

    async def remove(self, user_id: str, *, actor: str) -> bool:
        at = self.clock.now_ms()
        async with self.engine.begin() as conn:
            done = await conn.execute(text(
                "UPDATE roster_member SET active = 0, updated_at = :t WHERE user_id = :u AND active = 1"),
                {"u": user_id, "t": at})
            if done.rowcount:
                await self._trace(conn, user_id, "retrait", None, actor, at)
        self._cache = None
        return bool(done.rowcount)

    async def _trace(self, conn, user_id: str, action: str, profession: str | None, actor: str, at: int) -> None:
        """The change in `roster_change` (what `!equipe historique` lists) and in the trace, vouching for the row."""
        await conn.execute(text(
            "INSERT INTO roster_change (id, user_id, action, profession, actor, at) "
            "VALUES (:id, :u, :a, :p, :actor, :t)"),
            {"id": uuid.uuid4().hex, "u": user_id, "a": action, "p": profession, "actor": actor, "t": at})
        await facts.record(conn, "roster_member", [user_id], at=at, actor=actor, rule=_RULES[action])

    async def members(self) -> list[RosterMember]:
        """The active members the trace vouches for (a row changed in the database is left out, and logged)."""
        if self._cache is None:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(text("SELECT * FROM roster_member ORDER BY display_name"))).all()
                altered = facts.altered_ids(await facts.check(conn, "roster_member", rows))
            self._cache = {r.user_id: self._member(r) for r in rows if r.active and r.user_id not in altered}
        return list(self._cache.values())

    async def checked(self, user_ids: set[str]) -> tuple[dict[str, RosterMember], list[Altered]]:
        """These accounts' active members, read now from the database (not the cache: the bridge writes none of
        it), those the trace does not vouch for left out and named: what a sharing decision reads."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM roster_member WHERE user_id IN :ids").bindparams(
                bindparam("ids", expanding=True)), {"ids": sorted(user_ids)})).all() if user_ids else []
            altered = await facts.check(conn, "roster_member", rows, ids=user_ids)
        bad = facts.altered_ids(altered)
        return {r.user_id: self._member(r) for r in rows if r.active and r.user_id not in bad}, altered

    async def get(self, user_id: str) -> RosterMember | None:
        await self.members()
        assert self._cache is not None   # filled by members()
        return self._cache.get(user_id)

    async def changes(self, limit: int = 20) -> list[dict]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT user_id, action, profession, actor, at FROM roster_change ORDER BY at DESC LIMIT :n"),
                {"n": limit})).all()
        return [dict(r._mapping) for r in rows]

    @staticmethod
    def _member(row) -> RosterMember:
        return RosterMember(row.user_id, row.display_name, profession_of(row.profession), row.professional_id or "",
                            row.structure, bool(row.is_coordinator), row.sex or "")
