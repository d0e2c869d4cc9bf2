"""Consents and objections of a patient, in the database, turned into the policy core's facts.

Each change is written with its trace entry (liaison/stores/facts.py), whose number the command gives; a row the
trace does not vouch for as it is reads cautiously: a consent as absent, an objection as in force.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, text

from liaison.stores import facts
from liaison.stores.facts import Altered
from liaison.stores.retention import Retention
from liaison.stores.base import Store
from policies.sharing import Consent, Objection


def _dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms is not None else None


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class Will:
    """The patient's consents and objections, every record (in force or not), read cautiously; `altered`: the rows
    the trace does not vouch for as they are (a consent among them is left out, an objection counts as in force)."""
    consents: tuple[Consent, ...]
    objections: tuple[Objection, ...]
    altered: tuple[Altered, ...] = ()


class ConsentStore(Store):
    RETENTION = Retention(kept={
        "consent": "the patient's consents: the patient's, not one pathway's, and the proof of each share",
        "objection": "the patient's objections: they hold for every pathway, archived or not"})

    async def add_consent(self, patient_id: str, *, scope_kind: str, scope: str, means: str, categories: list[str],
                          notice: str, actor: str, expires_at: int | None, pathway_id: str | None = None) -> int:
        """Record it, with its trace entry (the pathway it was typed in); that entry's number."""
        cid, at = uuid.uuid4().hex, self.clock.now_ms()
        async with self.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO consent (id, patient_id, scope_kind, scope, means, categories, notice, recorded_by, "
                "recorded_at, expires_at) VALUES (:id, :p, :k, :s, :m, :c, :n, :by, :at, :exp)"),
                {"id": cid, "p": patient_id, "k": scope_kind, "s": scope, "m": means, "c": ",".join(categories),
                 "n": notice, "by": actor, "at": at, "exp": expires_at})
            return await facts.record(conn, "consent", [cid], at=at, actor=actor, rule="consent.recorded",
                                      pathway_id=pathway_id, data_category=",".join(categories) or None)

    async def withdraw_consents(self, patient_id: str, scope_kind: str, scope: str, actor: str,
                                pathway_id: str | None = None) -> list[int]:
        """The trace entries of the consents withdrawn (none: none was in force)."""
        return await self._end("consent", "withdrawn", patient_id, scope_kind, scope, actor, pathway_id)

    async def add_objection(self, patient_id: str, *, scope_kind: str, scope: str, actor: str,
                            pathway_id: str | None = None) -> int | None:
        """Record it, with its trace entry: that entry's number; None when the same objection is already in force
        (nothing recorded twice)."""
        async with self.engine.begin() as conn:
            same = (await conn.execute(text(
                "SELECT id FROM objection WHERE patient_id = :p AND scope_kind = :k AND scope = :s "
                "AND lifted_at IS NULL"), {"p": patient_id, "k": scope_kind, "s": scope})).first()
            if same:
                return None
            oid, at = uuid.uuid4().hex, self.clock.now_ms()
            await conn.execute(text(
                "INSERT INTO objection (id, patient_id, scope_kind, scope, recorded_by, recorded_at) "
                "VALUES (:id, :p, :k, :s, :by, :at)"),
                {"id": oid, "p": patient_id, "k": scope_kind, "s": scope, "by": actor, "at": at})
            return await facts.record(conn, "objection", [oid], at=at, actor=actor, rule="objection.recorded",
                                      pathway_id=pathway_id)

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

    async def lift_objections(self, patient_id: str, scope_kind: str, scope: str, actor: str,
                              pathway_id: str | None = None) -> list[int]:
        """The trace entries of the objections lifted (none: none was in force)."""
        return await self._end("objection", "lifted", patient_id, scope_kind, scope, actor, pathway_id)

    async def _end(self, table: str, ended: str, patient_id: str, scope_kind: str, scope: str, actor: str,
                   pathway_id: str | None) -> list[int]:
        """Mark the records in force for this scope as ended (withdrawn or lifted): kept, never deleted; each with
        its trace entry."""
        rule, at = ("consent.withdrawn" if table == "consent" else "objection.lifted"), self.clock.now_ms()
        async with self.engine.begin() as conn:
            ids = [r.id for r in await conn.execute(text(
                f"SELECT id FROM {table} WHERE patient_id = :p AND scope_kind = :k AND scope = :s "
                f"AND {ended}_at IS NULL ORDER BY recorded_at, id"), {"p": patient_id, "k": scope_kind, "s": scope})]
            for row_id in ids:
                await conn.execute(text(f"UPDATE {table} SET {ended}_at = :t, {ended}_by = :by WHERE id = :i"),
                                   {"t": at, "by": actor, "i": row_id})
            # The entries last: appending takes the trace's lock, after which no row lock is waited for.
            return [await facts.record(conn, table, [row_id], at=at, actor=actor, rule=rule, pathway_id=pathway_id)
                    for row_id in ids]

    async def facts(self, patient_id: str) -> tuple[tuple[Consent, ...], tuple[Objection, ...]]:
        """Every record (in force or not), read cautiously (`will`): the policy core decides what is in force."""
        will = await self.will(patient_id)
        return will.consents, will.objections

    async def will(self, patient_id: str) -> Will:
        """Every record, each checked against the trace: a consent it does not vouch for is left out, such an
        objection counts as in force (lifted or not), and both are named in `altered`."""
        async with self.engine.connect() as conn:
            consents = (await conn.execute(text(
                "SELECT * FROM consent WHERE patient_id = :p ORDER BY recorded_at, id"), {"p": patient_id})).all()
            objections = (await conn.execute(text(
                "SELECT * FROM objection WHERE patient_id = :p ORDER BY recorded_at, id"), {"p": patient_id})).all()
            bad_consents = await facts.check(conn, "consent", consents, patient_id=patient_id)
            bad_objections = await facts.check(conn, "objection", objections, patient_id=patient_id)
        return _will(consents, objections, bad_consents, bad_objections)

    async def wills(self, patient_ids: Iterable[str]) -> dict[str, Will]:
        """`will` of several patients, read at once (a batch of decisions): the same reading, the same checks."""
        patients = sorted(set(patient_ids))
        if not patients:
            return {}
        async with self.engine.connect() as conn:
            rows = {}
            for table in ("consent", "objection"):
                rows[table] = (await conn.execute(text(
                    f"SELECT * FROM {table} WHERE patient_id IN :ps ORDER BY recorded_at, id").bindparams(
                        bindparam("ps", expanding=True)), {"ps": patients})).all()
            bad = {table: await facts.check_patients(conn, table, rows[table], patients) for table in rows}
        return {p: _will([r for r in rows["consent"] if r.patient_id == p],
                         [r for r in rows["objection"] if r.patient_id == p],
                         bad["consent"][p], bad["objection"][p]) for p in patients}


def _will(consents: Sequence[Any], objections: Sequence[Any], bad_consents: list[Altered],
          bad_objections: list[Altered]) -> Will:
    left_out, in_force = facts.altered_ids(bad_consents), facts.altered_ids(bad_objections)
    return Will(
        tuple(Consent(scope_kind=r.scope_kind, scope=r.scope, means=r.means, recorded_by=r.recorded_by,
                      recorded_at=_at(r.recorded_at), expires_at=_dt(r.expires_at),
                      withdrawn_at=_dt(r.withdrawn_at),
                      categories=frozenset(c for c in r.categories.split(",") if c),
                      notice_given=bool(r.notice)) for r in consents if r.id not in left_out),
        tuple(Objection(scope_kind=r.scope_kind, scope=r.scope, recorded_at=_at(r.recorded_at),
                        lifted_at=None if r.id in in_force else _dt(r.lifted_at)) for r in objections),
        tuple(bad_consents + bad_objections))
