"""Consents and objections of a patient, in the database, turned into the policy core's facts."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import text

from liaison.stores.retention import Retention
from liaison.stores.base import Store
from policies.sharing import Consent, Objection


def _dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms is not None else None


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class ConsentStore(Store):
    RETENTION = Retention(kept={
        "consent": "the patient's consents: the patient's, not one pathway's, and the proof of each share",
        "objection": "the patient's objections: they hold for every pathway, archived or not"})

    async def add_consent(self, patient_id: str, *, scope_kind: str, scope: str, means: str, categories: list[str],
                          notice: str, actor: str, expires_at: int | None) -> str:
        cid = uuid.uuid4().hex
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO consent (id, patient_id, scope_kind, scope, means, categories, notice, recorded_by, "
                "recorded_at, expires_at) VALUES (:id, :p, :k, :s, :m, :c, :n, :by, :at, :exp)"),
                {"id": cid, "p": patient_id, "k": scope_kind, "s": scope, "m": means, "c": ",".join(categories),
                 "n": notice, "by": actor, "at": self.clock.now_ms(), "exp": expires_at})
        return cid

    async def withdraw_consents(self, patient_id: str, scope_kind: str, scope: str, actor: str) -> int:
        return await self._end("consent", "withdrawn", patient_id, scope_kind, scope, actor)

    async def add_objection(self, patient_id: str, *, scope_kind: str, scope: str, actor: str) -> str | None:
        """None when the same objection is already in force (nothing recorded twice)."""
        async with self.engine.begin() as conn:
            same = (await conn.execute(text(
                "SELECT id FROM objection WHERE patient_id = :p AND scope_kind = :k AND scope = :s "
                "AND lifted_at IS NULL"), {"p": patient_id, "k": scope_kind, "s": scope})).first()
            if same:
                return None
            oid = uuid.uuid4().hex
            await conn.execute(text(
                "INSERT INTO objection (id, patient_id, scope_kind, scope, recorded_by, recorded_at) "
                "VALUES (:id, :p, :k, :s, :by, :at)"),
                {"id": oid, "p": patient_id, "k": scope_kind, "s": scope, "by": actor, "at": self.clock.now_ms()})
        return oid

    async def expired_unapplied(self, now_ms: int) -> dict[str, list[str]]:
        """The consents whose end date has come and whose expiry was not applied yet, by patient id (a consent
        withdrawn before was applied then)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT id, patient_id FROM consent WHERE expires_at IS NOT NULL AND expires_at <= :now "
                "AND expiry_applied_at IS NULL AND withdrawn_at IS NULL ORDER BY expires_at"), {"now": now_ms})).all()
        due: dict[str, list[str]] = {}
        for r in rows:
            due.setdefault(r.patient_id, []).append(r.id)
        return due

    async def mark_expiry_applied(self, consent_ids: list[str]) -> None:
        async with self.engine.begin() as conn:
            for cid in consent_ids:
                await conn.execute(text("UPDATE consent SET expiry_applied_at = :t WHERE id = :i "
                                        "AND expiry_applied_at IS NULL"), {"t": self.clock.now_ms(), "i": cid})

    async def lift_objections(self, patient_id: str, scope_kind: str, scope: str, actor: str) -> int:
        return await self._end("objection", "lifted", patient_id, scope_kind, scope, actor)

    async def _end(self, table: str, ended: str, patient_id: str, scope_kind: str, scope: str, actor: str) -> int:
        """Mark the records in force for this scope as ended (withdrawn or lifted): kept, never deleted."""
        async with self.engine.begin() as conn:
            done = await conn.execute(text(
                f"UPDATE {table} SET {ended}_at = :t, {ended}_by = :by WHERE patient_id = :p AND scope_kind = :k "
                f"AND scope = :s AND {ended}_at IS NULL"),
                {"t": self.clock.now_ms(), "by": actor, "p": patient_id, "k": scope_kind, "s": scope})
        return done.rowcount

    async def facts(self, patient_id: str) -> tuple[tuple[Consent, ...], tuple[Objection, ...]]:
        """Every record (in force or not): the policy core decides what is in force at `now`."""
        async with self.engine.connect() as conn:
            consents = (await conn.execute(text(
                "SELECT * FROM consent WHERE patient_id = :p ORDER BY recorded_at"), {"p": patient_id})).all()
            objections = (await conn.execute(text(
                "SELECT * FROM objection WHERE patient_id = :p ORDER BY recorded_at"), {"p": patient_id})).all()
        return (
            tuple(Consent(scope_kind=r.scope_kind, scope=r.scope, means=r.means, recorded_by=r.recorded_by,
                          recorded_at=_at(r.recorded_at), expires_at=_dt(r.expires_at),
                          withdrawn_at=_dt(r.withdrawn_at),
                          categories=frozenset(c for c in r.categories.split(",") if c),
                          notice_given=bool(r.notice)) for r in consents),
            tuple(Objection(scope_kind=r.scope_kind, scope=r.scope, recorded_at=_at(r.recorded_at),
                            lifted_at=_dt(r.lifted_at)) for r in objections),
        )
