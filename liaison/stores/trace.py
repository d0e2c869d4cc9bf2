"""The trace: an append-only, hash-chained log of every decision and share.

Each entry carries the hash of the one before, so an edited or deleted row breaks the
chain from that point; `verify` names the first entry that does not hold. Deleting the last
entries leaves a shorter chain that holds: the head anchored outside the table sees that
(liaison/trace_anchor.py). No content is ever written here: ids, categories, rules, actors.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from liaison.stores.retention import Retention
from liaison.stores.base import Store

GENESIS = "0" * 64
_FIELDS = ("seq", "at", "actor", "action", "subject", "patient_id", "pathway_id", "data_category",
           "allowed", "rule", "basis")


@dataclass(frozen=True)
class TraceEntry:
    seq: int
    at: int
    actor: str
    action: str
    subject: str
    patient_id: str | None
    pathway_id: str | None
    data_category: str | None
    allowed: bool
    rule: str
    basis: str
    prev_hash: str
    hash: str


def entry_hash(fields: dict, prev_hash: str) -> str:
    canonical = json.dumps({k: fields[k] for k in _FIELDS} | {"prev_hash": prev_hash},
                           sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Verification:
    entries: int
    first_bad: int | None   # seq of the first entry that does not hold

    @property
    def ok(self) -> bool:
        return self.first_bad is None


class Trace(Store):
    RETENTION = Retention(kept={"trace_entry": "the trace outlives the pathway (who decided, shared, saw what); "
                                               "ids and rules only, no content"})

    async def append(self, *, actor: str, action: str, subject: str, decision, patient_id: str | None = None,
                     pathway_id: str | None = None, data_category: str | None = None) -> int:
        """Append one entry; returns its sequence number (also the reference shown to users)."""
        for _attempt in range(10):   # two writers may read the same head: the primary key decides
            try:
                return await self._append(actor, action, subject, decision, patient_id, pathway_id, data_category)
            except IntegrityError:
                continue
        raise RuntimeError("trace: could not append after 10 attempts")

    async def _append(self, actor, action, subject, decision, patient_id, pathway_id, data_category) -> int:
        async with self.engine.begin() as conn:
            head = (await conn.execute(text("SELECT seq, hash FROM trace_entry ORDER BY seq DESC LIMIT 1"))).first()
            seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
            fields = {"seq": seq, "at": self.clock.now_ms(), "actor": actor, "action": action,
                      "subject": subject, "patient_id": patient_id, "pathway_id": pathway_id,
                      "data_category": data_category, "allowed": bool(decision.allowed), "rule": decision.rule,
                      "basis": decision.basis}
            await conn.execute(text(
                "INSERT INTO trace_entry (seq, at, actor, action, subject, patient_id, pathway_id, data_category, "
                "allowed, rule, basis, prev_hash, hash) VALUES (:seq, :at, :actor, :action, :subject, :patient_id, "
                ":pathway_id, :data_category, :allowed_int, :rule, :basis, :prev, :hash)"),
                {**fields, "allowed_int": int(fields["allowed"]), "prev": prev, "hash": entry_hash(fields, prev)})
        return seq

    async def entries(self, patient_id: str | None = None) -> list[TraceEntry]:
        query = "SELECT * FROM trace_entry" + (" WHERE patient_id = :p" if patient_id else "") + " ORDER BY seq"
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(query), {"p": patient_id})).all()
        return [TraceEntry(**{**r._mapping, "allowed": bool(r.allowed)}) for r in rows]

    async def head(self) -> tuple[int, str] | None:
        """The last entry's (seq, hash), or None for an empty trace."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT seq, hash FROM trace_entry ORDER BY seq DESC LIMIT 1"))).first()
        return (row.seq, row.hash) if row else None

    async def hash_at(self, seq: int) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT hash FROM trace_entry WHERE seq = :s"), {"s": seq})).scalar()

    async def verify(self) -> Verification:
        prev, expected_seq, count = GENESIS, 1, 0
        for e in await self.entries():
            fields = asdict(e)
            if e.seq != expected_seq or e.prev_hash != prev or entry_hash(fields, prev) != e.hash:
                return Verification(count, e.seq if e.seq == expected_seq else expected_seq)
            prev, expected_seq, count = e.hash, e.seq + 1, count + 1
        return Verification(count, None)
