"""The national directory (Annuaire Santé extracts): who a professional is, by RPPS, by name, by MSSanté address.

Public data, no patient's: what a team searched is not (searches are never logged with their terms). The import is
liaison/directory/ (`liaison annuaire importer`); this store reads what it wrote, for `!annuaire`, for the commands
that name a professional, for the bridge's puppets and for the sharing decision's facts about an external address.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from liaison.db import fields
from liaison.stores.base import Store
from liaison.stores.retention import Retention
from policies.professions import Profession, find_profession

COUNTED = 1000   # a search counts its matches up to this: a broad query (« infirmier 59 ») would spend its time
#                  counting tens of thousands of rows no one reads
CIVILITIES = {"DR": "Dr", "PR": "Pr", "MME": "Mme", "M": "M.", "MLLE": "Mme"}


@dataclass(frozen=True)
class Entry:
    """A professional (or a service's mailbox) as the directory says it."""
    national_id: str | None         # 8 + RPPS, 0 + ADELI; None for an ORG mailbox
    rpps: str | None
    civility: str | None            # the extract's code: DR, PR, MME, M…
    last_name: str
    first_name: str | None
    profession: Profession | None   # one of policies/professions.py, when its code is one of ours
    profession_label: str | None    # the extract's label, always
    specialty: str | None           # savoir-faire (« Cardiologie et maladies vasculaires »)
    structure: str | None
    commune: str | None
    postcode: str | None
    department: str | None
    mailbox: str | None             # an MSSanté address
    active: bool = True

    @property
    def name(self) -> str:
        """« Dr Camille Lefebvre »."""
        title = CIVILITIES.get((self.civility or "").upper().strip("."), "")
        return " ".join(w for w in (title, self.first_name or "", self.last_name) if w)


@dataclass(frozen=True)
class ImportState:
    """One import, as `liaison annuaire etat` shows it."""
    id: int
    kind: str
    file_name: str
    started_at: int
    finished_at: int | None
    state: str
    read_rows: int
    added: int
    changed: int
    unchanged: int
    inactivated: int
    malformed: int
    problems: str | None


class Directory(Store):
    RETENTION = Retention(no_patient_data={
        "directory_person": "the national directory's professionals (public data)",
        "directory_mailbox": "the national directory's MSSanté mailboxes (public data)",
        "directory_import": "each directory import: file, date, counts, malformed line numbers",
        "directory_term": "the words of the directory's search index (for the typos)",
        **{f"directory_fts{part}": "the directory's search index (SQLite FTS5, public data)"
           for part in ("", "_data", "_idx", "_content", "_docsize", "_config")}})

    async def by_address(self, address: str) -> Entry | None:
        """The active mailbox `address` (any case), with its owner's profession, specialty and structure."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT * FROM directory_mailbox WHERE address = :a AND active = 1"),
                {"a": address.strip().lower()})).first()
            if row is None:
                return None
            person = None
            if row.national_id:
                person = (await conn.execute(text(
                    "SELECT * FROM directory_person WHERE national_id = :n AND active = 1 ORDER BY activity LIMIT 1"),
                    {"n": row.national_id})).first()
        return _mailbox_entry(row, person)

    async def by_id(self, rpps_or_national_id: str) -> list[Entry]:
        """The active activities of one professional, by RPPS (11 digits) or national id (8 + RPPS, 0 + ADELI),
        each with the person's MSSanté address when the directory has one."""
        national_id = national_id_of(rpps_or_national_id)
        if national_id is None:
            return []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT * FROM directory_person WHERE national_id = :n AND active = 1 ORDER BY activity"),
                {"n": national_id})).all()
            boxes = await mailboxes_of(conn, {national_id})
        return [person_entry(r, boxes.get(national_id)) for r in rows]

    async def search(self, query: str, *, limit: int = 10, offset: int = 0) -> tuple[list[Entry], int]:
        """The best matches of `query` (a name, an RPPS, a profession with a commune or a department, a
        savoir-faire), accent- and case-insensitive, a typo or two forgiven; and how many there are, counted up to
        COUNTED (COUNTED + 1: more than that)."""
        from liaison.directory.search import search
        return await search(self.engine, query, limit=limit, offset=offset)

    async def imports(self, limit: int = 10) -> list[ImportState]:
        """The last imports, the newest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT id, kind, file_name, started_at, finished_at, state, read_rows, added, changed, unchanged, "
                "inactivated, malformed, problems FROM directory_import ORDER BY id DESC LIMIT :l"),
                {"l": limit})).all()
        return [ImportState(*fields(r)) for r in rows]


async def new_import(conn: Any, kind: str, file_name: str, sha256: str, at: int) -> int:
    """A `running` import's row, its id computed (INTEGER PRIMARY KEY numbers itself on SQLite only): one importer
    at a time, so MAX + 1 in the import's own transaction is enough (a second would fail on the primary key)."""
    import_id = (await conn.execute(text("SELECT COALESCE(MAX(id), 0) + 1 FROM directory_import"))).scalar_one()
    await conn.execute(text(
        "INSERT INTO directory_import (id, kind, file_name, sha256, started_at, state) "
        "VALUES (:id, :k, :f, :h, :at, 'running')"), {"id": import_id, "k": kind, "f": file_name, "h": sha256, "at": at})
    return int(import_id)


def national_id_of(text_: str) -> str | None:
    """« Identification nationale PP » from an RPPS (11 digits), an ADELI (9 digits) or a national id as written
    (spaces, dots and hyphens ignored); None for anything else."""
    value = re.sub(r"[\s.\-]+", "", text_ or "")
    if len(value) == 11 and value.isdigit():
        return "8" + value
    if len(value) == 9 and value.isdigit():
        return "0" + value
    if (len(value) == 12 and value.startswith("8") and value.isdigit()) or (len(value) == 10 and value[0] == "0"):
        return value.upper()
    return None


def profession_key(key: str | None) -> Profession | None:
    return find_profession(key) if key else None


async def mailboxes_of(conn: Any, national_ids: set[str]) -> dict[str, str]:
    """Each person's MSSanté address (the first active PER mailbox, by address), by national id."""
    found: dict[str, str] = {}
    ids = sorted(i for i in national_ids if i)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join(f":n{i}" for i in range(len(chunk)))
        rows = (await conn.execute(text(
            f"SELECT national_id, MIN(address) AS address FROM directory_mailbox WHERE national_id IN ({marks}) "
            "AND active = 1 AND kind = 'PER' GROUP BY national_id"), {f"n{i}": v for i, v in enumerate(chunk)})).all()
        found.update({r.national_id: r.address for r in rows})
    return found


def person_entry(r: Any, mailbox: str | None) -> Entry:
    return Entry(r.national_id, r.rpps, r.civility, r.last_name, r.first_name, profession_key(r.profession),
                 r.profession_label, r.specialty_label, r.structure, r.commune, r.postcode, r.department, mailbox,
                 bool(r.active))


def _mailbox_entry(r: Any, person: Any | None) -> Entry:
    """A mailbox's entry; a PER mailbox's owner completes what the mailbox's row leaves blank."""
    rpps = person.rpps if person is not None else (r.national_id[1:] if (r.national_id or "").startswith("8")
                                                  and len(r.national_id) == 12 else None)
    def either(field: str) -> Any:
        mine = getattr(r, field, None)
        return mine if mine or person is None else getattr(person, field, None)
    return Entry(r.national_id, rpps, either("civility"), either("last_name") or r.structure or r.address,
                 either("first_name"), profession_key(either("profession")), either("profession_label"),
                 either("specialty_label"), either("structure"), either("commune"), either("postcode"),
                 either("department"), r.address, bool(r.active))
