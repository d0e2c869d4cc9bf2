"""Rows of the national directory written straight into `directory_person` / `directory_mailbox` (the schema of
liaison/migrations/0025 and 0026), without reading an extract: for the fast tests of the commands and for the bench,
which writes 500,000 of them with one `executemany` per table and chunk. Each row is made by the importer's own
`rows.person` (its folded search text, its digest), and the search index rebuilt as an import rebuilds it."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text

from liaison.directory import rows
from liaison.directory.search import rebuild_index
from policies.professions import luhn_check_digit

FIELDS = ("national_id", "civility", "last_name", "first_name", "profession_code", "profession_label", "structure",
          "postcode", "commune", "department", "specialty_label")
AT = {name: i for i, name in enumerate(FIELDS)}
PERSON = (f"INSERT INTO directory_person ({', '.join(rows.PERSON_COLUMNS)}, active, import_id, updated_at) "
          f"VALUES ({', '.join(':' + c for c in rows.PERSON_COLUMNS)}, 1, 1, 0)")
MAILBOX = ("INSERT INTO directory_mailbox (address, kind, national_id, civility, last_name, first_name, "
           "profession_code, profession_label, profession, specialty_label, structure, postcode, commune, department, "
           "active, import_id, updated_at) VALUES (:mailbox, 'PER', :national_id, :civility, :last_name, :first_name, "
           ":profession_code, :profession_label, :profession, :specialty_label, :structure, :postcode, :commune, "
           ":department, 1, 1, 0)")
IMPORT = ("INSERT INTO directory_import (id, kind, file_name, sha256, started_at, finished_at, state, read_rows, "
          "added) VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM directory_import), 'personnes', 'synthetique.txt', '', 0, 0, "
          "'done', :n, :n)")
CODES = {"medecin": ("10", "Médecin"), "pharmacien": ("21", "Pharmacien"), "infirmier": ("60", "Infirmier"),
         "masseur-kinesitherapeute": ("70", "Masseur-Kinésithérapeute")}


def rpps(n: int) -> str:
    """The n-th RPPS of the tests: ten digits and their key."""
    body = f"1{n:09d}"
    return body + str(luhn_check_digit(body))


@dataclass(frozen=True)
class Person:
    rpps: str
    civility: str
    first_name: str
    last_name: str
    profession: str                  # a key of CODES
    commune: str
    department: str
    structure: str = ""
    specialty: str | None = None
    mailbox: str | None = None

    def values(self) -> dict[str, object]:
        code, label = CODES[self.profession]
        cells = ["8" + self.rpps, self.civility, self.last_name, self.first_name, code, label, self.structure,
                 self.department + "000", self.commune, self.department, self.specialty or ""]
        stored = dict(zip(rows.PERSON_COLUMNS, rows.person(cells, AT)))
        return {**stored, "mailbox": self.mailbox}


async def seed(engine, people: Iterable[Person], chunk: int = 20_000) -> int:
    """Write `people` (and their mailboxes), `chunk` rows at a time, then rebuild the search index and record the
    import as done, in one transaction; how many were written."""
    written, left = 0, iter(people)
    async with engine.begin() as conn:
        while batch := [p.values() for _, p in zip(range(chunk), left)]:
            await conn.execute(text(PERSON), batch)
            boxes = list({b["mailbox"]: b for b in batch if b["mailbox"]}.values())   # one row per address
            if boxes:
                await conn.execute(text(MAILBOX), boxes)
            written += len(batch)
        await rebuild_index(conn)
        await conn.execute(text(IMPORT), {"n": written})
    return written
