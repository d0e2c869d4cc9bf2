"""The facts behind sharing decisions, chained in the trace, so that a row changed behind Liaison's back is seen.

A consent, an objection, a member of the roster, what the coordination recorded of a correspondent, a member of a
patient's usual team, a correspondent of a pathway: each change is written by its store together with a trace entry
that vouches for the row as the change left it (`record`, on the same transaction): its table, its key, and the
SHA-256 of its columns (`FactTable.digest`; never the content, which may name people). A row the chain does not
vouch for as it is now was written outside Liaison: changed in place (`UPDATE objection SET lifted_at = …`), added
or deleted. `liaison trace verify` lists every such row (`altered_everywhere`); the stores' readings of a decision's
facts (`check`) take the cautious reading of each (an objection in force, no consent, no member, no correspondent)
and log an alert naming the table and the row; the decision is then refused (policies/sharing.py, facts.tampered).

The chain vouches only as well as it holds: an entry whose own hash is wrong, or that the next entry does not follow,
vouches for nothing. Someone who can write the database can still append a well-chained entry for a row they
changed: the change is then in the trace, dated, for `!trace` and the export to show, not unseen.

The digest is frozen with the entries it is in: changing a table's digested columns needs a migration that records
its rows again.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from liaison.logs import digest as log_digest
from liaison.stores.trace import Fact, append_on, entry_of
from policies.records import RECORDS

log = structlog.get_logger(__name__)

ABSENT = "-"   # what the chain records for a row that a change removed (a member left a patient's usual team)


@dataclass(frozen=True)
class FactTable:
    name: str
    key: tuple[str, ...]         # the columns naming a row (its fact id: their values joined by a space)
    content: tuple[str, ...]     # the columns digested (what a decision reads; bookkeeping left out)
    label: str                   # what it holds, in French (for a refusal's sentence)
    subject: str                 # the column a trace entry names as its subject
    patient: str | None = None   # the column naming the patient, if any
    pathway: str | None = None   # the column naming the pathway, if any
    by_address: bool = False     # keyed by a mail address: logged as a digest
    forgotten_with_pathway: bool = False   # a pathway's archive deletes its rows (liaison/stores/retention.py)

    def id_of(self, values: Mapping[Any, Any] | Sequence[Any]) -> str:
        """The fact id of a row (a mapping of its columns) or of its key's values."""
        parts = [values[k] for k in self.key] if isinstance(values, Mapping) else list(values)
        return " ".join(str(p) for p in parts)

    def digest(self, row: Mapping[Any, Any] | None) -> str:
        if row is None:
            return ABSENT
        canonical = json.dumps({"table": self.name, **{c: row[c] for c in self.content}}, sort_keys=True,
                               ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def where(self) -> str:
        return " AND ".join(f"{k} = :k{i}" for i, k in enumerate(self.key))

    def params(self, key: Sequence[Any]) -> dict[str, Any]:
        return {f"k{i}": v for i, v in enumerate(key)}


TABLES = {t.name: t for t in (
    FactTable("consent", ("id",), ("id", "patient_id", "scope_kind", "scope", "means", "categories", "notice",
                                   "recorded_by", "recorded_at", "expires_at", "withdrawn_at", "withdrawn_by"),
              "consentements", "scope", patient="patient_id"),
    FactTable("objection", ("id",), ("id", "patient_id", "scope_kind", "scope", "recorded_by", "recorded_at",
                                     "lifted_at", "lifted_by"),
              "oppositions", "scope", patient="patient_id"),
    FactTable("roster_member", ("user_id",), ("user_id", "display_name", "profession", "professional_id",
                                              "structure", "is_coordinator", "sex", "active"),
              "équipe de la structure", "user_id"),
    FactTable("external_contact", ("address",), ("address", "name", "profession", "structure", "active"),
              "correspondants enregistrés", "address", by_address=True),
    FactTable("patient_team", ("patient_id", "user_id"), ("patient_id", "user_id"),
              "équipe habituelle du patient", "user_id", patient="patient_id"),
    FactTable("mss_correspondent", ("pathway_id", "address"), ("pathway_id", "address", "first_at", "basis"),
              "correspondants du parcours", "address", pathway="pathway_id", by_address=True,
              forgotten_with_pathway=True),
)}

_HOW = {
    "changed": "modifiée hors de Liaison : elle ne correspond plus à ce que la trace en a enregistré",
    "unrecorded": "absente de la trace : écrite hors de Liaison",
    "deleted": "supprimée hors de Liaison : la trace l'enregistre",
    "entry": "l'entrée de la trace qui l'enregistre est altérée",
}


@dataclass(frozen=True)
class Altered:
    """A fact row the chain does not vouch for as it is: its table, its id, and how (a key of _HOW)."""
    table: str
    id: str
    kind: str

    @property
    def how(self) -> str:
        return _HOW[self.kind]

    @property
    def label(self) -> str:
        return TABLES[self.table].label

    @property
    def log_id(self) -> str:
        """The row's id as a log line may carry it (an address only as a digest)."""
        return log_digest(self.id) if TABLES[self.table].by_address else self.id


async def record(conn: AsyncConnection, table: str, key: Sequence[Any], *, at: int, actor: str, rule: str,
                 subject: str | None = None, patient_id: str | None = None, pathway_id: str | None = None,
                 data_category: str | None = None) -> int:
    """The trace entry vouching for this row as it is now in the transaction (`ABSENT`: removed), appended on
    the same connection, with the record `rule` of policies/records.py; its sequence number. Subject, patient and
    pathway are read in the row when not given."""
    t, r = TABLES[table], RECORDS[rule]
    row = (await conn.execute(text(f"SELECT * FROM {table} WHERE {t.where()}"), t.params(key))).first()
    values = row._mapping if row else None
    if values is not None:
        subject = subject if subject is not None else str(values[t.subject])
        pathway_id = pathway_id or (values[t.pathway] if t.pathway else None)
        patient_id = patient_id or await _patient_of(conn, t, values)
    return await append_on(conn, at=at, actor=actor, action=r.action, subject=subject or t.id_of(key),
                           decision=r.decision, patient_id=patient_id, pathway_id=pathway_id,
                           data_category=data_category, fact=Fact(table, t.id_of(key), t.digest(values)))


async def _patient_of(conn: AsyncConnection, t: FactTable, values: Mapping[Any, Any]) -> str | None:
    if t.patient:
        return values[t.patient]
    if t.pathway:
        return (await conn.execute(text("SELECT patient_id FROM pathway WHERE id = :p"),
                                   {"p": values[t.pathway]})).scalar()
    return None


async def vouched(conn: AsyncConnection, table: str, *, ids: Iterable[str] | None = None,
                  patient_id: str | None = None) -> dict[str, str | None]:
    """What the chain last recorded of each fact of `table` (of these ids, of this patient, or every one): its
    digest, `ABSENT` for a row removed, None when that entry does not hold (its own hash, or the next entry's link)."""
    query = ("SELECT t.*, n.prev_hash AS next_prev FROM trace_entry t LEFT JOIN trace_entry n ON n.seq = t.seq + 1 "
             "WHERE t.fact_kind = :kind")
    params: dict[str, Any] = {"kind": table}
    if ids is not None:
        params["ids"] = sorted(set(ids))
        if not params["ids"]:
            return {}
        query += " AND t.fact_id IN :ids"
    if patient_id is not None:
        query += " AND t.patient_id = :patient"
        params["patient"] = patient_id
    statement = text(query + " ORDER BY t.seq")
    if ids is not None:
        statement = statement.bindparams(bindparam("ids", expanding=True))
    latest: dict[str, str | None] = {}
    for row in (await conn.execute(statement, params)).all():
        entry = entry_of(row)
        holds = entry.holds() and (row.next_prev is None or row.next_prev == entry.hash)
        latest[entry.fact_id or ""] = entry.fact_digest if holds else None
    return latest


def compare(table: str, rows: Iterable[Mapping[Any, Any]], recorded: Mapping[str, str | None],
            ids: Iterable[str] | None = None) -> list[Altered]:
    """The rows (and the rows recorded, gone since) that differ from what the chain recorded; only `ids` if given."""
    t = TABLES[table]
    actual = {t.id_of(r): t.digest(r) for r in rows}
    scope = set(ids) if ids is not None else set(actual) | set(recorded)
    found = []
    for fact_id in sorted(scope):
        now, then = actual.get(fact_id, ABSENT), recorded.get(fact_id, "")
        if now == then:
            continue
        if fact_id in recorded and then is None:
            kind = "entry"
        elif then == "":
            kind = "unrecorded"
            if now == ABSENT:
                continue   # never written, never recorded: nothing
        elif now == ABSENT:
            kind = "deleted"
        else:
            kind = "changed"
        found.append(Altered(table, fact_id, kind))
    return found


async def check(conn: AsyncConnection, table: str, rows: Sequence[Any], *, ids: Iterable[str] | None = None,
                patient_id: str | None = None) -> list[Altered]:
    """The facts among `rows` (SELECT * rows of `table`, those of `ids` or of the patient) that the chain does not
    vouch for as they are, each logged as an alert (table and row id: never its content)."""
    ids = None if ids is None else list(ids)
    found = compare(table, [r._mapping for r in rows], await vouched(conn, table, ids=ids, patient_id=patient_id),
                    ids)
    for a in found:
        log.error("facts.tampered", table=a.table, row=a.log_id, how=a.kind)
    return found


async def check_patients(conn: AsyncConnection, table: str, rows: Sequence[Any],
                         patient_ids: Iterable[str]) -> dict[str, list[Altered]]:
    """`check` of the rows of several patients at once (a batch of decisions): one read of what the chain recorded,
    the same comparison patient by patient, each alert logged; what it found, by patient."""
    t, patients = TABLES[table], sorted(set(patient_ids))
    assert t.patient is not None, f"{table} is not kept by patient"
    recorded: dict[str, dict[str, str | None]] = {p: {} for p in patients}
    if patients:
        statement = text("SELECT t.*, n.prev_hash AS next_prev FROM trace_entry t LEFT JOIN trace_entry n "
                         "ON n.seq = t.seq + 1 WHERE t.fact_kind = :kind AND t.patient_id IN :patients "
                         "ORDER BY t.seq").bindparams(bindparam("patients", expanding=True))
        for row in (await conn.execute(statement, {"kind": table, "patients": patients})).all():
            entry = entry_of(row)
            holds = entry.holds() and (row.next_prev is None or row.next_prev == entry.hash)
            recorded[entry.patient_id or ""][entry.fact_id or ""] = entry.fact_digest if holds else None
    by_patient: dict[str, list[Mapping[Any, Any]]] = {p: [] for p in patients}
    for r in rows:
        by_patient.setdefault(r._mapping[t.patient], []).append(r._mapping)
    found: dict[str, list[Altered]] = {}
    for p in patients:
        found[p] = compare(table, by_patient[p], recorded.get(p, {}))
        for a in found[p]:
            log.error("facts.tampered", table=a.table, row=a.log_id, how=a.kind)
    return found


async def vouches(conn: AsyncConnection, table: str, key: Sequence[Any]) -> bool:
    """The chain vouches for this row as it is now in the transaction (no alert: the caller is about to write)."""
    t = TABLES[table]
    rows = (await conn.execute(text(f"SELECT * FROM {table} WHERE {t.where()}"), t.params(key))).all()
    fact_id = t.id_of(key)
    return not compare(table, [r._mapping for r in rows], await vouched(conn, table, ids=[fact_id]), [fact_id])


def altered_ids(found: Iterable[Altered]) -> set[str]:
    return {a.id for a in found}


async def altered_everywhere(engine: AsyncEngine) -> list[Altered]:
    """Every fact row of every table that the chain does not vouch for as it is (`liaison trace verify`). Rows a
    pathway's archive deleted are not missing."""
    found: list[Altered] = []
    async with engine.connect() as conn:
        archived = {r.id for r in await conn.execute(text("SELECT id FROM pathway WHERE status = 'archived'"))}
        for t in TABLES.values():
            rows = [r._mapping for r in await conn.execute(text(f"SELECT * FROM {t.name}"))]
            for a in compare(t.name, rows, await vouched(conn, t.name)):
                if not (a.kind == "deleted" and t.forgotten_with_pathway and a.id.split(" ")[0] in archived):
                    found.append(a)
    return found


async def record_unrecorded(conn: AsyncConnection, at: int) -> int:
    """Every fact row the chain does not vouch for at all gets its entry (facts.recorded), as it is: the upgrade
    that began chaining facts (liaison/migrations/0017_facts_recorded.py), once. How many."""
    count = 0
    for t in TABLES.values():
        recorded = await vouched(conn, t.name)
        for row in (await conn.execute(text(f"SELECT * FROM {t.name}"))).all():
            values = row._mapping
            if t.id_of(values) not in recorded:
                await record(conn, t.name, [values[k] for k in t.key], at=at, actor="mise à jour",
                             rule="facts.recorded")
                count += 1
    return count
