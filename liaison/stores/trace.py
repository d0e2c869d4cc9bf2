"""The trace: an append-only, hash-chained log of every decision and share.

Each entry carries the hash of the one before, so an edited or deleted row breaks the
chain from that point; `verify` names the first entry that does not hold. Deleting the last
entries leaves a shorter chain that holds: the head anchored outside the table sees that
(liaison/trace_anchor.py). No content is ever written here: ids, categories, rules, actors.

An entry may also vouch for a fact (`Fact`): the row of a consent, an objection, the roster… as a change left it,
by its table, its key and a digest of its content (liaison/stores/facts.py), or a line written to the anchor file.
Such an entry is appended with `append_on`, on the connection of the transaction that changed the row: the row and
its entry are written together or not at all.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields as dataclass_fields
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from liaison.stores.retention import Retention
from liaison.stores.base import Store

GENESIS = "0" * 64
_FIELDS = ("seq", "at", "actor", "action", "subject", "patient_id", "pathway_id", "data_category",
           "allowed", "rule", "basis")
_FACT_FIELDS = ("fact_kind", "fact_id", "fact_digest")   # hashed when the entry vouches for a fact
_LOCK = 0x4C49414953_4F4E   # PostgreSQL: the advisory lock that makes appends take turns ("LIAISON")


@dataclass(frozen=True)
class Fact:
    """What an entry vouches for: a row (`kind` its table, `id` its key, `digest` its content's SHA-256), or a line of
    the anchor file (`kind` "anchor", `id` its number, `digest` the line's hash)."""
    kind: str
    id: str
    digest: str


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
    fact_kind: str | None = None
    fact_id: str | None = None
    fact_digest: str | None = None

    @property
    def fact(self) -> Fact | None:
        if self.fact_kind is None:
            return None
        return Fact(self.fact_kind, self.fact_id or "", self.fact_digest or "")

    def holds(self) -> bool:
        """Its own hash is that of its fields (it may still not follow the entry before: `Trace.verify`)."""
        return entry_hash(vars(self), self.prev_hash) == self.hash   # its flat fields (asdict copies deeply, slowly)


def entry_hash(fields: dict, prev_hash: str) -> str:
    """SHA-256 of the entry's fields and the previous hash; the fact's fields only when it vouches for one (the
    entries written before facts were chained keep their hash)."""
    chained = {k: fields[k] for k in _FIELDS}
    if fields.get("fact_kind") is not None:
        chained |= {k: fields[k] for k in _FACT_FIELDS}
    canonical = json.dumps(chained | {"prev_hash": prev_hash}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_of(row) -> TraceEntry:
    """A `trace_entry` row (SELECT *) as an entry."""
    values = {k: v for k, v in row._mapping.items() if k in _ENTRY_COLUMNS}
    return TraceEntry(**{**values, "allowed": bool(row.allowed)})


async def append_on(conn: AsyncConnection, *, at: int, actor: str, action: str, subject: str, decision,
                    patient_id: str | None = None, pathway_id: str | None = None, data_category: str | None = None,
                    fact: Fact | None = None) -> int:
    """Append one entry inside the caller's transaction (the row change it records commits with it, or neither
    does); its sequence number. Appends take turns: SQLite's transactions begin IMMEDIATE (one writer at a time),
    PostgreSQL's wait on one advisory lock, taken here, last in the transaction, until it ends."""
    [seq] = await append_many_on(conn, [{"actor": actor, "action": action, "subject": subject, "decision": decision,
                                         "patient_id": patient_id, "pathway_id": pathway_id,
                                         "data_category": data_category, "fact": fact}], at=at)
    return seq


async def append_many_on(conn: AsyncConnection, entries: Sequence[dict[str, Any]], *, at: int) -> list[int]:
    """`append_on` for several entries (each its keyword arguments but `at`), chained in order after one reading of
    the head, inserted together; their sequence numbers."""
    if not entries:
        return []
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    head = (await conn.execute(text("SELECT seq, hash FROM trace_entry ORDER BY seq DESC LIMIT 1"))).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
    rows, seqs = [], []
    for entry in entries:
        decision, fact = entry["decision"], entry.get("fact")
        fields = {"seq": seq, "at": at, "actor": entry["actor"], "action": entry["action"],
                  "subject": entry["subject"], "patient_id": entry.get("patient_id"),
                  "pathway_id": entry.get("pathway_id"), "data_category": entry.get("data_category"),
                  "allowed": bool(decision.allowed), "rule": decision.rule, "basis": decision.basis,
                  "fact_kind": fact.kind if fact else None, "fact_id": fact.id if fact else None,
                  "fact_digest": fact.digest if fact else None}
        digest = entry_hash(fields, prev)
        rows.append({**fields, "allowed_int": int(fields["allowed"]), "prev": prev, "hash": digest})
        seqs.append(seq)
        seq, prev = seq + 1, digest
    await conn.execute(text(
        "INSERT INTO trace_entry (seq, at, actor, action, subject, patient_id, pathway_id, data_category, "
        "allowed, rule, basis, prev_hash, hash, fact_kind, fact_id, fact_digest) VALUES (:seq, :at, :actor, :action, "
        ":subject, :patient_id, :pathway_id, :data_category, :allowed_int, :rule, :basis, :prev, :hash, :fact_kind, "
        ":fact_id, :fact_digest)"), rows)
    return seqs


@dataclass(frozen=True)
class Verification:
    entries: int
    first_bad: int | None   # seq of the first entry that does not hold

    @property
    def ok(self) -> bool:
        return self.first_bad is None


_ENTRY_COLUMNS = frozenset(f.name for f in dataclass_fields(TraceEntry))


class Trace(Store):
    RETENTION = Retention(kept={"trace_entry": "the trace outlives the pathway (who decided, shared, saw what); "
                                               "ids and rules only, no content"})

    async def append(self, *, actor: str, action: str, subject: str, decision, patient_id: str | None = None,
                     pathway_id: str | None = None, data_category: str | None = None, fact: Fact | None = None) -> int:
        """Append one entry; returns its sequence number (also the reference shown to users)."""
        for _attempt in range(10):   # two writers may read the same head: the primary key decides
            try:
                async with self.engine.begin() as conn:
                    return await append_on(conn, at=self.clock.now_ms(), actor=actor, action=action, subject=subject,
                                           decision=decision, patient_id=patient_id, pathway_id=pathway_id,
                                           data_category=data_category, fact=fact)
            except IntegrityError:
                continue
        raise RuntimeError("trace: could not append after 10 attempts")

    async def append_many(self, entries: Sequence[dict[str, Any]]) -> list[int]:
        """Append several entries (each the keyword arguments of `append`) in one transaction, in order, all at the
        same moment; their sequence numbers."""
        for _attempt in range(10):
            try:
                async with self.engine.begin() as conn:
                    return await append_many_on(conn, entries, at=self.clock.now_ms())
            except IntegrityError:
                continue
        raise RuntimeError("trace: could not append after 10 attempts")

    async def entries(self, patient_id: str | None = None) -> list[TraceEntry]:
        query = "SELECT * FROM trace_entry" + (" WHERE patient_id = :p" if patient_id else "") + " ORDER BY seq"
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(query), {"p": patient_id})).all()
        return [entry_of(r) for r in rows]

    async def head(self) -> tuple[int, str] | None:
        """The last entry's (seq, hash), or None for an empty trace."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT seq, hash FROM trace_entry ORDER BY seq DESC LIMIT 1"))).first()
        return (row.seq, row.hash) if row else None

    async def at(self, seq: int) -> TraceEntry | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT * FROM trace_entry WHERE seq = :s"), {"s": seq})).first()
        return entry_of(row) if row else None

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
